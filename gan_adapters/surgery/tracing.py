"""Read a generator's graph to see every call of a normalisation: torch.fx where it traces,
torch.export (non-strict) where it does not, and where each failed, the file:line of why.

Both scans answer the same question: for each call of a site module and each functional
normalisation call, which module's forward made it (the owner) and in what order. Module
surgery needs that to tell a module called once (adapt it in place) from one called at
two sites or a batch_norm written inline (adapt the owner's graph).
"""

from __future__ import annotations

import logging
import traceback
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from gan_adapters.modules import attributes_restored
from gan_adapters.surgery.norms import NORM_FUNCTIONS

_TORCH_DIR = str(Path(torch.__file__).parent)


@dataclass(frozen=True)
class TraceFailure:
    """Why tracing a module's forward failed, and where in the user's code."""

    module: str
    class_name: str
    location: str
    message: str

    def __str__(self) -> str:
        where = self.module or "<root>"
        return f"{self.class_name} ({where}) at {self.location}: {self.message}"


@dataclass(frozen=True)
class Call:
    """One call seen in a graph: a site module called, or a functional norm op, inside `owner`."""

    owner: str
    target: str
    """Path of the called module relative to the owner, or the function's name."""
    index: int
    """Occurrence of this target among the owner's calls, in program order."""
    functional: bool
    channels: int | None = None

    @property
    def module_path(self) -> str:
        """Full path of the called module (module calls only)."""
        return join_path(self.owner, self.target)

    @property
    def site_id(self) -> str:
        """Stable name of this call site: owner::target#index."""
        return f"{self.owner}::{self.target}#{self.index}"


@dataclass
class GraphScan:
    """What a scan saw: every call, and the modules whose forward it could not read."""

    route: str
    calls: list[Call] = field(default_factory=list)
    failures: list[TraceFailure] = field(default_factory=list)
    traced: list[str] = field(default_factory=list)
    """Paths of the modules whose forward was traced."""


def join_path(prefix: str, name: str) -> str:
    """Join module path parts, the root being ''."""
    return f"{prefix}.{name}" if prefix and name else prefix or name


def get_attr_path(root: nn.Module, path: str) -> Any:
    """Follow a dotted attribute path from a module."""
    return reduce(getattr, path.split("."), root) if path else root


def failure_of(exc: BaseException, path: str, module: nn.Module) -> TraceFailure:
    """Summarise an exception by the innermost frame outside torch itself."""
    frames = traceback.extract_tb(exc.__traceback__)
    outside = [f for f in frames if not f.filename.startswith(_TORCH_DIR)]
    frame = (outside or frames or [None])[-1]
    if frame is None:
        location = "<unknown>"
    else:
        location = f"{'/'.join(Path(frame.filename).parts[-2:])}:{frame.lineno} in {frame.name}"
    message = (str(exc).strip().splitlines() or [type(exc).__name__])[0].split(". ")[0]
    return TraceFailure(path, type(module).__name__, location, message[:160])


def is_torch_module(module: nn.Module) -> bool:
    """Whether a module's class comes from torch itself (never traced into)."""
    return type(module).__module__.startswith("torch.")


class _SiteTracer(fx.Tracer):
    """FX tracer that keeps site modules (and any extra leaves) as single call_module nodes."""

    def __init__(self, is_leaf: Callable[[nn.Module], bool], all_children: bool = False) -> None:
        super().__init__()
        self._is_leaf = is_leaf
        self._all_children = all_children

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return self._all_children or self._is_leaf(m) or super().is_leaf_module(m, module_qualified_name)


def trace_owner(module: nn.Module, is_leaf: Callable[[nn.Module], bool]) -> fx.Graph:
    """Trace one module's own forward, every submodule a leaf (the graph surgery works on)."""
    with attributes_restored(module):
        return _SiteTracer(is_leaf, all_children=True).trace(module)


def norm_function_name(target: Any) -> str | None:
    """'batch_norm' / 'instance_norm' when a call target is one of those ops (torch or aten)."""
    name = getattr(target, "__name__", None) or str(target)
    return next((fn for fn in NORM_FUNCTIONS if fn in name), None)


def _stack_paths(node: fx.Node) -> list[tuple[str, str]]:
    """(key, module path) pairs of a node's module stack, outermost first."""
    stack = node.meta.get("nn_module_stack") or {}
    return [(key, value[0]) for key, value in stack.items()]


def _channels_from_attrs(root: nn.Module, node: fx.Node) -> int | None:
    for arg in list(node.args[1:5]) + list(node.kwargs.values()):
        if isinstance(arg, fx.Node) and arg.op == "get_attr":
            value = get_attr_path(root, str(arg.target))
            if isinstance(value, torch.Tensor) and value.dim() == 1:
                return value.shape[0]
    return None


def fx_scan(
    model: nn.Module, is_site: Callable[[nn.Module], bool], concrete_args: dict | None = None
) -> GraphScan:
    """Trace with torch.fx; where a forward fails, record why and trace its children instead."""
    scan = GraphScan(route="fx")

    def visit(path: str, module: nn.Module, concrete: dict | None) -> None:
        try:
            graph = _SiteTracer(is_site).trace(module, concrete_args=concrete)
        except Exception as exc:
            scan.failures.append(failure_of(exc, path, module))
            visit_children(path, module)
            return
        scan.traced.append(path)
        _collect_fx(graph, module, path, is_site, scan.calls)

    def visit_children(path: str, module: nn.Module) -> None:
        for name, child in module.named_children():
            child_path = join_path(path, name)
            if isinstance(child, (nn.ModuleList, nn.ModuleDict)):
                visit_children(child_path, child)  # containers have no forward of their own
            elif not is_site(child) and (isinstance(child, nn.Sequential) or not is_torch_module(child)):
                visit(child_path, child, None)

    visit("", model, concrete_args)
    return scan


def _collect_fx(graph: fx.Graph, root: nn.Module, prefix: str, is_site, calls: list[Call]) -> None:
    seen: Counter = Counter()
    for node in graph.nodes:
        stack = _stack_paths(node)
        if node.op == "call_module" and is_site(root.get_submodule(str(node.target))):
            owner_rel = stack[-2][1] if len(stack) >= 2 else ""
            owner = join_path(prefix, owner_rel)
            target = join_path(prefix, str(node.target))
            rel = target[len(owner) + 1 :] if owner else target
            calls.append(Call(owner, rel, seen[(owner, rel)], functional=False))
            seen[(owner, rel)] += 1
        elif node.op == "call_function" and (name := norm_function_name(node.target)):
            owner = join_path(prefix, stack[-1][1] if stack else "")
            channels = _channels_from_attrs(root, node)
            calls.append(Call(owner, name, seen[(owner, name)], functional=True, channels=channels))
            seen[(owner, name)] += 1


def export_scan(
    model: nn.Module,
    args: tuple,
    kwargs: dict | None,
    site_paths: set[str],
    skip_paths: set[str] = frozenset(),
) -> GraphScan:
    """Run torch.export (non-strict) on example inputs; read calls off each op's module stack.

    Ops inside `skip_paths` (excluded subtrees) are ignored."""
    torch_log = logging.getLogger("torch")
    level = torch_log.level
    torch_log.setLevel(logging.CRITICAL)  # export logs whole graphs when it fails
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.export.export(model, args, kwargs or {}, strict=False)
    finally:
        torch_log.setLevel(level)
    scan = GraphScan(route="export")
    seen_keys: dict[str, dict[str, str]] = {}
    seen: Counter = Counter()
    for node in program.graph.nodes:
        if node.op != "call_function":
            continue
        stack = _stack_paths(node)
        site_at = next((i for i, (_, path) in enumerate(stack) if path in site_paths), None)
        if site_at is None and any(path in skip_paths for _, path in stack):
            continue
        if site_at is not None:
            key, path = stack[site_at]
            owner = stack[site_at - 1][1] if site_at > 0 else ""
            if key not in seen_keys.setdefault(path, {}):
                seen_keys[path][key] = owner
                rel = path[len(owner) + 1 :] if owner else path
                scan.calls.append(Call(owner, rel, seen[(owner, rel)], functional=False))
                seen[(owner, rel)] += 1
        elif name := norm_function_name(node.target):
            owner = stack[-1][1] if stack else ""
            value = node.args[0].meta.get("val") if isinstance(node.args[0], fx.Node) else None
            channels = value.shape[1] if isinstance(value, torch.Tensor) else None
            scan.calls.append(Call(owner, name, seen[(owner, name)], functional=True, channels=channels))
            seen[(owner, name)] += 1
    return scan

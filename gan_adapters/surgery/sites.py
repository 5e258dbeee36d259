"""Find where adapters go: `find_norm_sites` walks a generator and returns its sites.

A site is a place whose output gets an adapter: a normalisation module called once (a
*module site*, adapted in place through a hook), or one call inside an owner's forward
(a *call site*: a batch_norm written inline, or one call of a module called at several
sites), adapted by rewriting that owner's graph with torch.fx. The route says how the
calls were seen: `fx` (the whole model traced), `export` (fx failed at the root, so
torch.export ran on the example inputs), or `module` (matching by module alone).
"""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from gan_adapters.errors import ConfigError, SiteError
from gan_adapters.modules import attributes_restored
from gan_adapters.surgery.channels import channel_evidence
from gan_adapters.surgery.norms import (
    condition_layer,
    condition_parameter,
)
from gan_adapters.surgery.selectors import (
    Target,
    as_list,
    check_every_entry_matches,
    describe_search,
    make_matcher,
    match_modules,
)
from gan_adapters.surgery.slots import AdapterSlot
from gan_adapters.surgery.tracing import (
    Call,
    TraceFailure,
    export_scan,
    failure_of,
    fx_scan,
    norm_function_name,
    trace_owner,
)


@dataclass(frozen=True)
class Site:
    """One place that gets an adapter."""

    id: str
    """Module path for a module site; owner::target#k for a call site."""
    class_name: str
    """Class of the normalisation module, or the functional op's name."""
    channels: int
    module_path: str | None = None
    """The normalisation module (None for a functional call)."""
    call: Call | None = None
    """For call sites: which call in which owner's forward."""
    condition: tuple[str, int] | None = None
    """The forward argument carrying the layer's condition (name, position)."""
    condition_features: int | None = None
    """Input size of the layer's own conditioning layer (None: unconditional)."""
    condition_is_label: bool = False

    @property
    def inserted_by(self) -> str:
        """'hook' (module adapted in place) or 'graph' (owner's forward rewritten)."""
        return "graph" if self.call is not None else "hook"

    def fingerprint(self) -> list:
        """What must match between a saved adapter and a base: id, channels, class."""
        return [self.id, self.channels, self.class_name]


@dataclass
class Discovery:
    """The sites of a model and how they were found."""

    sites: list[Site]
    route: str
    failures: list[TraceFailure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """How the sites were found (informational)."""
    warnings: list[str] = field(default_factory=list)
    """Where the result differs from what was asked: shared adapters, skipped calls."""
    matched_paths: list[str] = field(default_factory=list)


def _concrete_args(model: nn.Module, args: tuple, kwargs: dict) -> dict[str, Any]:
    """Python scalars among the example inputs, by parameter name (fx traces them as constants)."""
    try:
        names = list(inspect.signature(model.forward).parameters)
    except (TypeError, ValueError):
        return {}
    given = dict(zip(names, args, strict=False)) | kwargs
    return {k: v for k, v in given.items() if isinstance(v, (bool, int, float, str)) or v is None}


def _rewrite_blocker(model: nn.Module, call: Call, cache: dict[str, Any]) -> str | None:
    """None if the call's owner traces with torch.fx and its own forward holds this call, else why not.

    A container called at two places (an nn.Sequential reused at two depths) holds its inner
    call once: the two calls cannot be told apart in any one forward."""
    if call.owner not in cache:
        owner = model.get_submodule(call.owner)
        try:
            cache[call.owner] = trace_owner(owner, lambda m: True)
        except Exception as exc:
            cache[call.owner] = str(failure_of(exc, call.owner, owner))
    graph = cache[call.owner]
    if isinstance(graph, str):
        return graph
    held = sum(
        1
        for node in graph.nodes
        if (node.op == "call_function" and norm_function_name(node.target) == call.target)
        or (node.op == "call_module" and node.target == call.target and not call.functional)
    )
    if held <= call.index:
        return f"{call.owner or '<root>'} is itself called at several places, each calling {call.target} once"
    return None


def _probe_channels(
    model: nn.Module, modules: dict[str, nn.Module], args: tuple, kwargs: dict
) -> dict[str, int]:
    """Run the example inputs once and read each module's output width."""
    seen: dict[str, int] = {}
    handles = []
    for path, module in modules.items():

        def record(mod, inputs, output, path=path):
            if isinstance(output, torch.Tensor) and output.dim() >= 2:
                seen.setdefault(path, output.shape[1])

        handles.append(module.register_forward_hook(record))
    try:
        with torch.no_grad():
            model(*args, **kwargs)
    except Exception as exc:
        raise SiteError(
            f"the example inputs, run to measure the channels of {', '.join(modules)}, failed in "
            f"{type(model).__name__}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        ) from exc
    finally:
        for handle in handles:
            handle.remove()
    return seen


def find_norm_sites(
    model: nn.Module,
    targets: Sequence[Target] | Target | None = None,
    exclude: Sequence[Target] | Target | None = None,
    *,
    route: str = "auto",
    example_inputs: tuple | None = None,
    example_kwargs: dict | None = None,
    widths: dict[str, int] | None = None,
) -> Discovery:
    """Every site of `model` that gets an adapter, in model order, and how they were found.

    With `targets=None` the sites are the normalisation layers (see `is_normalization`) and
    inline batch_norm calls; otherwise the modules that `targets` selects. `example_inputs`
    enables torch.export where fx fails, and measures channel counts no attribute states;
    `widths` ({class name or path regex: C}) states them instead.
    """
    targets, exclude = as_list(targets), as_list(exclude)
    args = tuple(example_inputs) if example_inputs is not None else None
    kwargs = dict(example_kwargs or {})
    if route == "export" and args is None:
        raise ConfigError("route='export' needs example_inputs= (a tuple of the model's inputs)")
    check_every_entry_matches(model, targets, "targets=")
    check_every_entry_matches(model, exclude, "exclude=")
    matched, excluded = match_modules(model, targets, exclude)
    discovery = Discovery(sites=[], route="module", matched_paths=list(matched))
    calls: list[Call] = []
    with attributes_restored(model):  # tracing and measuring run forwards that may set attributes
        if route != "module":
            calls = _scan_calls(model, matched, excluded, args, kwargs, route, discovery)
        _build_sites(model, matched, calls, targets is None, args, kwargs, discovery, widths or {})
    if not discovery.sites:
        counts = Counter(type(m).__name__ for m in model.modules() if m is not model)
        common = ", ".join(f"{name} x{n}" for name, n in counts.most_common(6))
        raise SiteError(
            f"no adapter sites found in {type(model).__name__}: searched {describe_search(targets)}"
            + (f", excluding {exclude!r}" if exclude else "")
            + f". Choose layers with targets= (classes, class names or path regexes); "
            f"this model's most common module classes are: {common}"
        )
    return discovery


def _scan_calls(model, matched, excluded, args, kwargs, route, discovery) -> list[Call]:
    leaves = {id(m) for m in matched.values()} | {id(m) for m in excluded.values()}

    def is_leaf(m: nn.Module) -> bool:
        return id(m) in leaves or isinstance(m, AdapterSlot)

    concrete = _concrete_args(model, args, kwargs) if args is not None else None
    scan = fx_scan(model, is_leaf, concrete_args=concrete)
    discovery.failures = scan.failures
    root_failed = any(f.module == "" for f in scan.failures)
    if not root_failed:
        discovery.route = "fx"
        return scan.calls
    if route == "fx":
        raise SiteError(
            f"torch.fx cannot trace {type(model).__name__}: {scan.failures[0]}. "
            "Use route='auto' (falls back to torch.export or module matching)"
        )
    discovery.route = "fx-partial" if scan.traced else "module"
    if args is None:
        discovery.notes.append(
            "fx failed at the root and no example_inputs were given for torch.export: sites "
            "were matched by module and calls read from the submodules fx could trace"
        )
        return scan.calls
    try:
        exported = export_scan(model, args, kwargs, set(matched), set(excluded))
    except Exception as exc:
        first_line = (str(exc).strip().splitlines() or [""])[0][:160]
        discovery.notes.append(
            f"torch.export failed too ({type(exc).__name__}: {first_line}); sites matched by module"
        )
        return scan.calls
    discovery.route = "export"
    return exported.calls


def _given_width(path: str, module: nn.Module, widths: dict[str, int]) -> int | None:
    return next((width for key, width in widths.items() if make_matcher([key])(path, module)), None)


def _build_sites(model, matched, calls, default_targets, args, kwargs, discovery, widths) -> None:
    owner_graphs: dict[str, Any] = {}
    by_module: dict[str, list[Call]] = {}
    for call in calls:
        if not call.functional and call.module_path in matched:
            by_module.setdefault(call.module_path, []).append(call)
    given = {p: w for p, m in matched.items() if (w := _given_width(p, m, widths)) is not None}
    evidence = {p: channel_evidence(m) for p, m in matched.items()}
    unknown = {p: matched[p] for p, e in evidence.items() if e.channels is None and p not in given}
    measured = _probe_channels(model, unknown, args, kwargs) if unknown and args is not None else {}
    for path, module in matched.items():
        channels = given.get(path) or evidence[path].channels or measured.get(path)
        if channels is None:
            raise SiteError(
                f"cannot tell the channel count of {path!r} ({type(module).__name__}); looked at "
                f"{evidence[path].describe()}. Pass example_inputs= so it is measured, give it as "
                f"widths={{{type(module).__name__!r}: C}}, or register_norm_class(cls, channels='attribute')"
            )
        cond = condition_parameter(module)
        layer = condition_layer(module) if cond else None
        common = dict(
            class_name=type(module).__name__,
            channels=channels,
            module_path=path,
            condition=cond,
            condition_features=(
                layer.num_embeddings if isinstance(layer, nn.Embedding) else layer.in_features
            )
            if layer
            else None,
            condition_is_label=isinstance(layer, nn.Embedding),
        )
        module_calls = by_module.get(path, [])
        blocked = [e for c in module_calls if (e := _rewrite_blocker(model, c, owner_graphs))]
        if len(module_calls) > 1 and not blocked:
            discovery.sites.extend(Site(id=c.site_id, call=c, **common) for c in module_calls)
            continue
        if len(module_calls) > 1:
            discovery.warnings.append(
                f"{path} is called at {len(module_calls)} sites but its caller cannot be "
                f"rewritten ({blocked[0]}): one adapter is shared by all its calls"
            )
        discovery.sites.append(Site(id=path, **common))
    if default_targets:
        _add_functional_sites(model, calls, owner_graphs, discovery)


def _add_functional_sites(model, calls, owner_graphs, discovery) -> None:
    for call in calls:
        if not call.functional:
            continue
        where = f"{call.target} in {call.owner or '<root>'}.forward"
        error = _rewrite_blocker(model, call, owner_graphs)
        if error:
            discovery.warnings.append(f"skipped inline {where}: its forward cannot be rewritten ({error})")
        elif call.channels is None:
            discovery.warnings.append(f"skipped inline {where}: channel count unknown (pass example_inputs=)")
        else:
            cls = call.target
            discovery.sites.append(Site(id=call.site_id, class_name=cls, channels=call.channels, call=call))

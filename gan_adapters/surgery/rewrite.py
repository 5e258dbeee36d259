"""Graph surgery for call sites: an owner's forward becomes a torch.fx GraphModule with a slot node.

Only what a forward hook cannot express rewrites a forward: a batch_norm written inline, or
one of several calls of the same module. The GraphModule keeps every child, parameter and
buffer of the owner (so state_dict keys survive) and remembers the original for `unload`.
"""

from __future__ import annotations

import logging

import torch.fx as fx
from torch import nn

from gan_adapters.errors import SiteError
from gan_adapters.modules import swap_submodule
from gan_adapters.surgery.sites import Site
from gan_adapters.surgery.slots import AdapterSlot
from gan_adapters.surgery.tracing import norm_function_name, trace_owner

log = logging.getLogger(__name__)

ORIGINAL_ATTRIBUTE = "_gan_adapters_original"


def path_depth(path: str) -> int:
    """Depth of a module path (the root '' is 0)."""
    return path.count(".") + 1 if path else 0


def graph_slot_name(site: Site) -> str:
    """Attribute name of a call site's slot on its (rewritten) owner."""
    return f"gan_adapters_{site.call.target.replace('.', '_')}_{site.call.index}"


def as_graph_module(owner: nn.Module) -> fx.GraphModule:
    """The owner's forward as a GraphModule that keeps every child, parameter and buffer."""
    if isinstance(owner, fx.GraphModule) and ORIGINAL_ATTRIBUTE in owner.__dict__:
        return owner
    graph = trace_owner(owner, lambda m: True)
    gm = fx.GraphModule(owner, graph, class_name=type(owner).__name__)
    # GraphModule keeps only what forward touches; keep the rest so state_dict keys survive.
    for child_name, child in owner._modules.items():
        gm._modules[child_name] = child
    for param_name, param in owner._parameters.items():
        gm._parameters[param_name] = param
    for buffer_name, buffer in owner._buffers.items():
        gm.register_buffer(
            buffer_name, buffer, persistent=buffer_name not in owner._non_persistent_buffers_set
        )
    gm.train(owner.training)
    gm.__dict__[ORIGINAL_ATTRIBUTE] = owner
    return gm


def find_call_node(gm: fx.GraphModule, site: Site) -> fx.Node:
    """The graph node of a call site (the k-th call of its target in the owner's forward)."""
    seen = 0
    for node in gm.graph.nodes:
        hit = (
            (node.op == "call_function" and norm_function_name(node.target) == site.call.target)
            if site.call.functional
            else (node.op == "call_module" and node.target == site.call.target)
        )
        if hit:
            if seen == site.call.index:
                return node
            seen += 1
    raise SiteError(
        f"call site {site.id!r} was seen while scanning but not when tracing "
        f"{site.call.owner or '<root>'} on its own; exclude it with exclude="
    )


def prepare_owner(root: nn.Module, owner_path: str, sites: list[Site]) -> fx.GraphModule:
    """The owner's GraphModule with a slot node after each of its call sites (not yet placed).

    Nothing in `root` changes here, so a failure leaves the model untouched.
    """
    gm = as_graph_module(root.get_submodule(owner_path))
    for site in sites:
        if graph_slot_name(site) not in gm._modules:
            find_call_node(gm, site)  # fails before anything is inserted
    return gm


def rewrite_owner(
    root: nn.Module, owner_path: str, gm: fx.GraphModule, sites: list[Site], adapters, name: str
) -> nn.Module:
    """Insert the slot nodes into `gm`, fill them with `adapters`, and put `gm` in place."""
    owner = root.get_submodule(owner_path)
    for site in sites:
        slot_name = graph_slot_name(site)
        slot = gm._modules.get(slot_name)
        if slot is None:
            node = find_call_node(gm, site)
            slot = AdapterSlot(site.id, site.condition)
            gm.add_module(slot_name, slot)
            args = (node,) if site.call.functional else (node, tuple(node.args), dict(node.kwargs))
            with gm.graph.inserting_after(node):
                adapted = gm.graph.call_module(slot_name, args)
            node.replace_all_uses_with(adapted, delete_user_cb=lambda user, new=adapted: user is not new)
        slot[name] = adapters[site.id]
    gm.recompile()
    if gm is owner:
        return root
    if not owner_path:
        log.warning(
            "gan_adapters: the forward of %s itself holds a call site, so the returned model "
            "is a torch.fx GraphModule (same parameters and keys): use inject's return value",
            type(owner).__name__,
        )
        return gm
    swap_submodule(root, owner_path, gm)
    return root


def restore_owners(root: nn.Module, rewritten: list[str]) -> nn.Module:
    """Put every rewritten owner's original module back; returns the root to use."""
    # Shallowest first: an owner rewritten in an earlier inject may sit inside an original.
    for owner_path in sorted(rewritten, key=path_depth):
        original = root.get_submodule(owner_path).__dict__.get(ORIGINAL_ATTRIBUTE)
        if original is None:
            continue
        if not owner_path:
            root = original
        else:
            swap_submodule(root, owner_path, original)
    return root

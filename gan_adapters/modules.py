"""General nn.Module utilities the surgery and the training loop share: swap a submodule, and put
back every attribute a forward set."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


def swap_submodule(root: nn.Module, path: str, replacement: nn.Module) -> None:
    """Put `replacement` where the submodule at `path` (not the root) was."""
    parent_path, _, attr = path.rpartition(".")
    setattr(root.get_submodule(parent_path), attr, replacement)


_MODULE_DICTS = ("_parameters", "_buffers", "_modules")


@contextmanager
def attributes_restored(model: nn.Module) -> Iterator[None]:
    """Every module's attributes (and parameter, buffer and child tables) as they were when the block
    began, whatever a traced or measured forward set: a forward that does `self.weight = w / sigma`
    (a hand-written spectral norm) would otherwise leave a torch.fx Proxy in the user's model."""
    saved = [
        (module, dict(module.__dict__), {name: dict(module.__dict__[name]) for name in _MODULE_DICTS})
        for module in model.modules()
    ]
    try:
        yield
    finally:
        for module, attributes, tables in saved:
            for name in set(module.__dict__) - set(attributes):
                del module.__dict__[name]
            for name, value in attributes.items():
                if name not in _MODULE_DICTS and module.__dict__.get(name) is not value:
                    module.__dict__[name] = value
            for name, table in tables.items():
                current = module.__dict__[name]
                if current != table or any(current[k] is not v for k, v in table.items()):
                    current.clear()
                    current.update(table)

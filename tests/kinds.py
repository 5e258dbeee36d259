"""Every registered adapter kind, as inject() options for tests that loop over kinds."""

from __future__ import annotations


def every_kind(ratio: float = 4) -> list[dict]:
    """inject() options for every registered adapter kind (sized kinds at `ratio`): tests that
    loop over kinds take them from the registry, so a new kind is tested without editing them."""
    from gan_adapters import ADAPTER_KINDS

    return [
        dict(kind=k, ratio=ratio) if "ratio" in cls.settings.__dataclass_fields__ else dict(kind=k)
        for k, cls in sorted(ADAPTER_KINDS.items())
    ]

"""Which modules are normalisation layers, how wide they are, and where their condition comes from.

Detection is by behaviour, not only by type, because real generators write their own
conditional batch norms: a module counts as a normalisation layer when it is a torch
BatchNorm/InstanceNorm, when its class is in the registry of known conditional norms, or
when it calls batch_norm (or wraps a norm layer) and holds nothing heavier than the
linear/embedding layers that produce a conditional gain and bias.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from functools import cache

from torch import nn

from gan_adapters.surgery.slots import SLOT_ATTRIBUTE, AdapterSlot

NORM_FUNCTIONS = ("batch_norm", "instance_norm")
"""Names of the functional normalisation ops looked for in source code and traced graphs."""

CONDITION_NAMES = (
    "y",
    "ys",
    "cond",
    "condition",
    "condition_vector",
    "c",
    "label",
    "labels",
    "class_labels",
    "embed",
    "emb",
    "embedding",
    "latent_embed_vector",
    "affine",
)
"""Parameter names read as 'the condition' when a class is not in the registry."""


@dataclass(frozen=True)
class NormSpec:
    """How to read a known normalisation class: its condition argument and channel attribute."""

    condition: str | None = None
    """Name of the forward parameter carrying the condition (None: found by name, see
    CONDITION_NAMES; a layer without a linear/embedding inside is unconditional anyway)."""
    channels: str | None = None
    """Attribute holding the channel count (None: inferred)."""


NORM_CLASSES: dict[str, NormSpec] = {
    # ajbrock/BigGAN-PyTorch: ccbn(x, y) and its plain `bn` both call F.batch_norm inside.
    "ccbn": NormSpec(condition="y", channels="output_size"),
    "bn": NormSpec(channels="output_size"),
    # pytorch-pretrained-biggan: BigGANBatchNorm(x, truncation, condition_vector), hand-written.
    "BigGANBatchNorm": NormSpec(condition="condition_vector", channels="num_features"),
    # StudioGAN and many re-implementations: a BatchNorm2d(affine=False) plus a conditional affine.
    "ConditionalBatchNorm2d": NormSpec(),
    "CategoricalConditionalBatchNorm2d": NormSpec(),
}
"""Known normalisation classes by class name; extend with `register_norm_class`."""


def register_norm_class(
    cls: type | str, *, condition: str | None = None, channels: str | None = None
) -> None:
    """Teach detection a normalisation class: its condition parameter and channel attribute."""
    name = cls if isinstance(cls, str) else cls.__name__
    NORM_CLASSES[name] = NormSpec(condition=condition, channels=channels)


def norm_spec(module: nn.Module) -> NormSpec | None:
    """The registry entry for a module's class, if any."""
    return NORM_CLASSES.get(type(module).__name__)


@cache
def _forward_calls_norm_function(cls: type) -> bool:
    try:
        source = inspect.getsource(cls.forward)
    except (OSError, TypeError):
        return False
    return any(f"{name}(" in source for name in NORM_FUNCTIONS)


def _is_conditioning_layer(module: nn.Module) -> bool:
    return isinstance(module, (nn.Linear, nn.Embedding, nn.Identity))


def is_normalization(module: nn.Module) -> bool:
    """Whether a module is a normalisation layer that gets an adapter by default."""
    if isinstance(module, nn.modules.batchnorm._NormBase) or norm_spec(module) is not None:
        return True
    if type(module).__module__.startswith("torch.nn"):
        return False
    children = [c for c in module.children() if not isinstance(c, AdapterSlot)]
    wraps_norm = any(is_normalization(child) for child in children)
    if not (wraps_norm or _forward_calls_norm_function(type(module))):
        return False
    return all(is_normalization(c) or _is_conditioning_layer(c) for c in children)


KEYWORD_ONLY = -1
"""Position recorded for a condition that can only be passed by keyword."""


def condition_parameter(module: nn.Module) -> tuple[str, int] | None:
    """Name and position (0 = the input; KEYWORD_ONLY) of the forward argument carrying the condition."""
    try:
        params = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        return None
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    keyword = [p.name for p in params if p.kind == p.KEYWORD_ONLY]
    spec = norm_spec(module)
    if spec is not None and spec.condition is not None:
        if spec.condition in positional:
            return spec.condition, positional.index(spec.condition)
        return (spec.condition, KEYWORD_ONLY) if spec.condition in keyword else None
    for i, name in enumerate(positional[1:], start=1):
        if name in CONDITION_NAMES:
            return name, i
    named = [name for name in keyword if name in CONDITION_NAMES]
    if named:
        return named[0], KEYWORD_ONLY
    if len(positional) > 1:
        return positional[1], 1
    return (keyword[0], KEYWORD_ONLY) if keyword else None


def condition_layer(module: nn.Module) -> nn.Linear | nn.Embedding | None:
    """The layer that turns the condition into the norm's gain (its input size sizes ours)."""
    for name, sub in module.named_modules():
        if isinstance(sub, (nn.Linear, nn.Embedding)) and not name.startswith(SLOT_ATTRIBUTE):
            return sub
    return None

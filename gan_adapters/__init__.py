"""gan-adapters: adapt a pretrained GAN generator to a new domain from 25-100 images.

Identity-initialised adapters go after the batch norms (or the layers `targets=` names) of a
generator whose code this library has never seen; everything else is frozen, and a new domain fits
in a file of kilobytes. Start with `inject(model, kind="apgc", groups=8)`.

The surgery needs only torch: `train` (which needs accelerate) is imported on first use.
"""

from typing import Any

from gan_adapters.adapted.run import AdaptedRun, draw_latents, generate, load_run
from gan_adapters.errors import (
    AdapterStateError,
    ConfigError,
    GanAdaptersError,
    MismatchError,
    RunFolderError,
    SiteError,
    TrainingDivergedError,
)
from gan_adapters.generators.registry import GeneratorBundle, load_generator, register_generator
from gan_adapters.settings import setting
from gan_adapters.surgery import (
    ADAPTER_KINDS,
    Adapter,
    AdapterConfig,
    AdapterSummary,
    ClassScaleShift,
    Discovery,
    GroupedPointwiseConv,
    KindSettings,
    MergeReport,
    PointwiseConv,
    ScaleShift,
    Site,
    active_adapter,
    adapter_names,
    adapters_per_sample,
    blend,
    condition,
    delete_adapter,
    disable_adapters,
    find_norm_sites,
    inject,
    is_normalization,
    load_adapters,
    merge,
    register_adapter_kind,
    register_norm_class,
    register_pointwise,
    save_adapters,
    set_adapter,
    set_execution,
    summary,
    trainable_parameters,
    unload,
)
from gan_adapters.training.latents import sample_latents
from gan_adapters.training.recipe import TrainConfig

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # `train` pulls in accelerate; the surgery must not pay for it (PEP 562 lazy attribute).
    if name == "train":
        from gan_adapters.training.trainer import train

        return train
    raise AttributeError(f"module 'gan_adapters' has no attribute {name!r}")


__all__ = [
    "ADAPTER_KINDS",
    "AdaptedRun",
    "Adapter",
    "AdapterConfig",
    "AdapterStateError",
    "AdapterSummary",
    "ClassScaleShift",
    "ConfigError",
    "Discovery",
    "GanAdaptersError",
    "GeneratorBundle",
    "GroupedPointwiseConv",
    "KindSettings",
    "MergeReport",
    "MismatchError",
    "PointwiseConv",
    "RunFolderError",
    "ScaleShift",
    "Site",
    "SiteError",
    "TrainConfig",
    "TrainingDivergedError",
    "active_adapter",
    "adapter_names",
    "adapters_per_sample",
    "blend",
    "condition",
    "delete_adapter",
    "disable_adapters",
    "draw_latents",
    "find_norm_sites",
    "generate",
    "inject",
    "is_normalization",
    "load_adapters",
    "load_generator",
    "load_run",
    "merge",
    "register_adapter_kind",
    "register_generator",
    "register_norm_class",
    "register_pointwise",
    "sample_latents",
    "save_adapters",
    "set_adapter",
    "set_execution",
    "setting",
    "summary",
    "train",
    "trainable_parameters",
    "unload",
]

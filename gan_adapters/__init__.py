"""gan-adapters: adapt a pretrained GAN generator to a new domain from 25-100 images.

Identity-initialised adapters go after every normalisation layer of a generator whose code
this library has never seen; everything else is frozen, and a new domain fits in a file of
kilobytes. Start with `inject(model, kind="apgc", groups=8)`.
"""

from gan_adapters.config import AdapterConfig
from gan_adapters.errors import (
    AdapterStateError,
    ConfigError,
    GanAdaptersError,
    MismatchError,
    SiteError,
)
from gan_adapters.inject import inject
from gan_adapters.kinds import (
    ADAPTER_KINDS,
    Adapter,
    ClassScaleShift,
    GroupedPointwiseConv,
    PointwiseConv,
    ScaleShift,
    register_adapter_kind,
)
from gan_adapters.latents import sample_latents
from gan_adapters.manage import (
    active_adapter,
    adapter_names,
    condition,
    delete_adapter,
    disable_adapters,
    set_adapter,
    trainable_parameters,
    unload,
)
from gan_adapters.merge import MergeReport, merge
from gan_adapters.models import GeneratorBundle, load_generator
from gan_adapters.norms import is_normalization, register_norm_class
from gan_adapters.recipe import TrainConfig
from gan_adapters.runs import load_run
from gan_adapters.sampling import draw_latents, generate
from gan_adapters.saving import load_adapters, save_adapters
from gan_adapters.sites import Discovery, Site, find_norm_sites
from gan_adapters.summary import AdapterSummary, summary
from gan_adapters.trainer import train

__version__ = "0.1.0"

__all__ = [
    "ADAPTER_KINDS",
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
    "MergeReport",
    "MismatchError",
    "PointwiseConv",
    "ScaleShift",
    "Site",
    "SiteError",
    "TrainConfig",
    "active_adapter",
    "adapter_names",
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
    "register_norm_class",
    "sample_latents",
    "save_adapters",
    "set_adapter",
    "summary",
    "train",
    "trainable_parameters",
    "unload",
]

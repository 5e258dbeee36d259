"""Model surgery: find normalisation sites, insert identity adapters, manage, save and merge them.

This layer needs only torch (and safetensors for files): it is what a user imports into their own
training loop, with no training stack behind it. The names below are its whole surface: the package
root re-exports the public ones, and the layers above import only these (the training loop also
reads and writes adapter tensors and the state `inject` leaves on a model).
"""

from gan_adapters.surgery.adapters import (
    ClassScaleShift,
    ClassSettings,
    GroupedPointwiseConv,
    GroupedSettings,
    PointwiseConv,
    PointwiseSettings,
    ScaleShift,
)
from gan_adapters.surgery.base import ADAPTER_KINDS, Adapter, KindSettings, register_adapter_kind
from gan_adapters.surgery.config import AdapterConfig
from gan_adapters.surgery.domains import adapters_per_sample, blend
from gan_adapters.surgery.inject import inject
from gan_adapters.surgery.manage import (
    active_adapter,
    adapter_names,
    condition,
    delete_adapter,
    disable_adapters,
    set_adapter,
    set_execution,
    trainable_parameters,
    unload,
)
from gan_adapters.surgery.merge import MergeReport, merge
from gan_adapters.surgery.norms import is_normalization, register_norm_class
from gan_adapters.surgery.pointwise import register_pointwise
from gan_adapters.surgery.saving import (
    adapter_tensors,
    copy_adapter_tensors,
    load_adapters,
    read_extras,
    save_adapters,
)
from gan_adapters.surgery.sites import Discovery, Site, find_norm_sites
from gan_adapters.surgery.slots import is_adapter_key
from gan_adapters.surgery.state import has_adapters, require_state
from gan_adapters.surgery.summary import AdapterSummary, summary

__all__ = [
    "ADAPTER_KINDS",
    "Adapter",
    "AdapterConfig",
    "AdapterSummary",
    "ClassScaleShift",
    "ClassSettings",
    "Discovery",
    "GroupedPointwiseConv",
    "GroupedSettings",
    "KindSettings",
    "MergeReport",
    "PointwiseConv",
    "PointwiseSettings",
    "ScaleShift",
    "Site",
    "active_adapter",
    "adapter_names",
    "adapter_tensors",
    "adapters_per_sample",
    "blend",
    "condition",
    "copy_adapter_tensors",
    "delete_adapter",
    "disable_adapters",
    "find_norm_sites",
    "has_adapters",
    "inject",
    "is_adapter_key",
    "is_normalization",
    "load_adapters",
    "merge",
    "read_extras",
    "register_adapter_kind",
    "register_norm_class",
    "register_pointwise",
    "require_state",
    "save_adapters",
    "set_adapter",
    "set_execution",
    "summary",
    "trainable_parameters",
    "unload",
]

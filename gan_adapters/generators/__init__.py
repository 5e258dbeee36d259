"""Generators by name: the registry and its built-in entries (importing this registers them)."""

# Imported for their decorators: each module registers its generators.
from gan_adapters.generators import biggan, biggan_deep, cdcgan, dcgan, eyes, sources, stylegan2  # noqa: F401

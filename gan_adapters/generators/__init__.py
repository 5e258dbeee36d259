"""Generators by name: the registry and its built-in entries (importing this registers them)."""

from gan_adapters.generators import biggan_deep, biggan_emoji, dcgan, eyes, stylegan2  # noqa: F401 - they register

"""Using a finished run: load it (one domain or several on one base), draw latents, generate, blend."""

"""Model surgery: find normalisation sites, insert identity adapters, manage, save and merge them.

This layer needs only torch (and safetensors for files): it is what a user imports into
their own training loop, with no training stack behind it.
"""

"""A test hook for crash safety: SIGKILL the process at a named point, chosen by an environment
variable, so tests can kill a run deterministically mid-step or between a temporary file and its
rename, then prove that `--resume` finishes bit-identically. Unset, it does nothing."""

from __future__ import annotations

import os
import signal

KILL_VARIABLE = "GAN_ADAPTERS_KILL_AT"
"""Names one point: `step:N` (training step N, after backward, before the update) or
`rename:FILENAME` (an atomic write of that file, its data written but not yet renamed)."""


def kill_point(name: str) -> None:
    """SIGKILL this process if GAN_ADAPTERS_KILL_AT names this point."""
    if os.environ.get(KILL_VARIABLE) == name:
        os.kill(os.getpid(), signal.SIGKILL)

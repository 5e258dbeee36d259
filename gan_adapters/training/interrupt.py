"""Ctrl-C during a run: finish the step, checkpoint, and say how to go on (a second Ctrl-C stops at once)."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class StopRequest:
    """Set by the first Ctrl-C; the loop reads it between steps."""

    requested: bool = False


@contextmanager
def stop_between_steps(enabled: bool = True) -> Iterator[StopRequest]:
    """While the block runs, the first SIGINT asks the loop to stop at its next safe point (between
    steps) instead of raising mid-step; the second raises KeyboardInterrupt as usual. Only in the
    main thread of a single process: several processes must stop at one step, which a signal
    handler cannot promise."""
    stop = StopRequest()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handle(signum, frame) -> None:
        if stop.requested:
            raise KeyboardInterrupt
        stop.requested = True
        log.warning("stopping after this step, with a checkpoint (Ctrl-C again to stop at once)")

    previous = signal.signal(signal.SIGINT, handle)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)

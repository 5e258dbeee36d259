"""Logging to the experiment trackers users already use, through Accelerate (`--log-with`):
losses every step (the trainer calls `accelerator.log`), sample grids at `sample_every`."""

from __future__ import annotations

from typing import Any

import numpy as np
from accelerate import Accelerator
from PIL import Image

from gan_adapters.training.recipe import TrainConfig


def tracker_config(config: TrainConfig) -> dict[str, Any]:
    """The run's settings as the flat scalars trackers accept as hyperparameters."""
    flat = {k: v for k, v in config.to_dict().items() if isinstance(v, (bool, int, float, str))}
    adapter = {
        f"adapter_{k}": v
        for k, v in config.adapter.to_dict().items()
        if isinstance(v, (bool, int, float, str))
    }
    return flat | adapter


def log_images(accelerator: Accelerator, grid: Image.Image, step: int) -> None:
    """Send a sample grid to every tracker that takes images (main process only)."""
    if not accelerator.is_main_process:
        return
    pixels = np.asarray(grid)
    for tracker in accelerator.trackers:
        if tracker.name == "tensorboard":
            tracker.log_images({"samples": pixels[None]}, step=step, dataformats="NHWC")
        elif hasattr(tracker, "log_images"):
            tracker.log_images({"samples": [pixels]}, step=step)

"""The marks of every CUDA test: `-m cuda` selects them, and they skip, saying why, without a GPU."""

import pytest
import torch

CUDA_ONLY = [
    pytest.mark.cuda,
    pytest.mark.skipif(
        not torch.cuda.is_available(), reason="no CUDA GPU here: run `bench/gpu_queue.sh 2` on one"
    ),
]

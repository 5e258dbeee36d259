"""The trainer on a GPU: each precision, layout and mode against a reference it must match, the
GPU waits of a step, the adversarial recipe and the pretraining. Skipped where there is no GPU (CI
never has one): `bench/gpu_queue.sh 2` runs them in a GPU window.

How the comparisons can fail. After 4 Adam steps each adapter tensor has moved from its start
(zero deltas and latents, `latent_init = "zeros"`) by `movement`. An error is measured against it per tensor:
relative = |ours - reference| / |reference - start| (L2 norms). A zeroed adapter scores 1, a
sign-flipped one 2, one 10x off 9, so any tolerance under 1 catches them. The tolerances:
- fp32 with TF32 off against the CPU: 1e-3. Only the summation order differs (cuDNN's algorithms);
  on the CPU, two layouts (other conv kernels) differ by 8e-8 after 4 steps.
- TF32, bf16 and fp16 against the GPU's own fp32 run: 0.1 for the adapters, 0.5 for the latents.
  Measured on the CPU (bf16 autocast vs fp32, the same 4 steps): adapters 0.015 at most, latents
  0.136 (their gradients are small, and Adam's first steps move each element by about lr times the
  gradient's sign, which rounding flips for the smallest). TF32 and fp16 round to 10 bits, finer
  than bf16's 7.

Several processes: NCCL puts one rank per GPU and the device has one, so the two-process run is
tested with CPU processes (`tests/test_training_cli.py`) and NCCL itself is not tested here.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import warnings

import pytest
import torch
from cuda_only import CUDA_ONLY
from test_training import adapter_file_tensors, conv_dtypes, tiny_config

from gan_adapters.generators.sources import load_generator_file
from gan_adapters.training.trainer import train

pytestmark = CUDA_ONLY

STEPS = 4
AGAINST_CPU = 1e-3
AGAINST_GPU_FP32 = {"extra/latents": 0.5, "adapters": 0.1}
AUTOCAST_DTYPE = {"no": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
CASES = {
    # id: precision, tf32, channels_last, compiled, reference
    "fp32": ("no", False, False, False, "cpu"),
    "fp32-channels-last": ("no", False, True, False, "cpu"),
    "fp32-compiled": ("no", False, True, True, "cpu"),
    "tf32": ("no", True, True, False, "gpu"),
    "bf16": ("bf16", True, True, False, "gpu"),
    "bf16-contiguous": ("bf16", True, False, False, "gpu"),
    "bf16-compiled": ("bf16", True, True, True, "gpu"),
    "fp16": ("fp16", True, True, False, "gpu"),
}


def config(**overrides):
    run = tiny_config(steps=STEPS, sample_every=100, checkpoint_every=100, **overrides)
    assert run.latent_init == "zeros" and run.adapter.kind == "apgc", "what relative_errors counts from"
    return run


def relative_errors(ours: dict, reference: dict) -> dict[str, float]:
    """Each tensor's distance from the reference over the reference's movement from its start."""
    assert ours.keys() == reference.keys()
    errors = {}
    for key, expected in reference.items():
        movement = expected.float().norm()  # every tensor starts at zero
        assert movement > 0, f"{key} did not move: the comparison would say nothing"
        errors[key] = ((ours[key].float() - expected.float()).norm() / movement).item()
    return errors


@pytest.fixture(scope="module")
def references(tmp_path_factory) -> dict[str, dict]:
    """The fp32 run on the CPU (another process, no GPU visible) and on the GPU with TF32 off."""
    folder = tmp_path_factory.mktemp("references")
    script = (
        "import sys; sys.path[:0] = ['tests', 'tests/gpu']; from test_cuda_training import config; "
        "from gan_adapters.training.trainer import train; "
        f"train(config(tf32=False), {str(folder / 'cpu')!r})"
    )
    subprocess.run([sys.executable, "-c", script], check=True, env=os.environ | {"CUDA_VISIBLE_DEVICES": ""})
    gpu = train(config(tf32=False, channels_last=False), folder / "gpu")
    return {
        "cpu": adapter_file_tensors(folder / "cpu" / "adapters.safetensors"),
        "gpu": adapter_file_tensors(gpu.paths.adapters),
    }


@pytest.mark.parametrize("case", CASES)
def test_the_trainer_on_cuda_matches_its_reference(tmp_path, references, case):
    """Fails on: an adapter or latent update lost, sign-flipped or scaled on the GPU path (scores
    >= 1); autocast not applied (the conv dtype check); a compiled run that fell back to eager (the
    graph count). Passes on correct code at the tolerances the module docstring derives."""
    precision, tf32, channels_last, compiled, reference = CASES[case]
    import torch._dynamo as dynamo

    graphs = dynamo.utils.counters["stats"]["unique_graphs"]
    run = config(precision=precision, tf32=tf32, channels_last=channels_last, compile=compiled)
    result, dtypes = conv_dtypes(lambda: train(run, tmp_path / "run"))
    if compiled:
        assert dynamo.utils.counters["stats"]["unique_graphs"] > graphs, "the compiled run compiled nothing"
    else:  # compiled graphs run no module hooks
        assert dtypes == {AUTOCAST_DTYPE[precision]}, f"autocast ran the convs in {dtypes}"
    errors = relative_errors(adapter_file_tensors(result.paths.adapters), references[reference])
    for key, error in errors.items():
        tolerance = (
            AGAINST_CPU if reference == "cpu" else AGAINST_GPU_FP32.get(key, AGAINST_GPU_FP32["adapters"])
        )
        assert error <= tolerance, f"{key}: relative errors against the {reference} run: {errors}"


def test_a_training_step_waits_for_the_gpu_once(tmp_path):
    """A step reads its losses once (after backward is queued) and copies its draws from pinned
    memory without blocking. Fails on: a `.item()`/`.tolist()` or a pageable host-to-device copy
    added to the step (each is a synchronising operation that the sync debug mode reports)."""
    seen: list[int] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            train(config(steps=6), tmp_path / "run", on_step=lambda report: seen.append(len(caught)))
        finally:
            torch.cuda.set_sync_debug_mode(0)
    per_step = [after - before for before, after in itertools.pairwise(seen[1:])]
    where = [str(w.message)[:200] for w in caught[seen[1] : seen[2]]]
    assert max(per_step) <= 1, f"GPU waits per step (after the first): {per_step}; in step 3: {where}"


def test_the_adversarial_recipe_on_cuda_matches_the_cpu(tmp_path):
    """The projected discriminator (EfficientNet-Lite0 features: carry .whl-perceptual) and the
    critic's update on the GPU, fp32 without TF32, against the same run on the CPU. Tolerance 1e-2
    (looser than the supervised 1e-3: the hinge's kinks turn rounding into larger steps for the rare
    score at the margin); a lost, zeroed or flipped update scores >= 1."""
    run = dict(recipe="adversarial", steps=3, tf32=False, sample_every=100, checkpoint_every=100)
    script = (
        "import sys; sys.path.insert(0, 'tests'); from test_training import tiny_config; "
        "from gan_adapters.training.trainer import train; "
        f"train(tiny_config(**{run!r}), {str(tmp_path / 'cpu')!r})"
    )
    subprocess.run([sys.executable, "-c", script], check=True, env=os.environ | {"CUDA_VISIBLE_DEVICES": ""})
    result = train(tiny_config(**run), tmp_path / "gpu")
    cpu = adapter_file_tensors(tmp_path / "cpu" / "adapters.safetensors")
    errors = relative_errors(adapter_file_tensors(result.paths.adapters), cpu)
    assert max(errors.values()) <= 1e-2, errors


def test_pretraining_on_cuda_runs_resumes_and_ships(tmp_path):
    """Pretraining in bf16 on the GPU (it takes the GPU whenever there is one), resumed, and the EMA
    generator it ships loads on the CPU. Fails on a device or dtype mismatch anywhere in the GAN
    step, the EMA, the standing statistics, the checkpoint or the fp16 file."""
    from test_zoo import pretrain_resume_and_ship

    _, card = load_generator_file(pretrain_resume_and_ship(tmp_path, precision="bf16"))
    assert card["config"]["precision"] == "bf16" and card["steps"] == 5

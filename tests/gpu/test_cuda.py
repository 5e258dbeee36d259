"""The CUDA path: the trainer in every precision, layout and mode, identity exactness under
bf16/TF32, the adversarial recipe and the pretraining, on a GPU. Skipped where there is none
(CI never has one): `bench/gpu_queue.sh 2` runs them in a GPU window."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the CPU suite's helpers
from kinds import every_kind
from test_training import EMOJI, adapter_file_tensors, conv_dtypes, tiny_config
from test_training_cli import TINY, cli, env

import gan_adapters as ga
from gan_adapters.surgery.pointwise import POINTWISE_IMPLEMENTATIONS
from gan_adapters.training.trainer import train

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(
        not torch.cuda.is_available(), reason="no CUDA GPU here: run `bench/gpu_queue.sh 2` on one"
    ),
]

TOLERANCE = {"no": 2e-3, "bf16": 5e-2, "fp16": 5e-2}
"""Largest difference from the CPU run after 4 steps, per precision (TF32/bf16/fp16 rounding)."""
AUTOCAST_DTYPE = {"no": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@pytest.fixture(scope="module")
def cpu_reference(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cpu")
    script = (
        "import sys; sys.path.insert(0, 'tests'); from test_training import tiny_config; "
        "from gan_adapters.training.trainer import train; "
        f"train(tiny_config(steps=4), {str(folder)!r})"
    )
    subprocess.run([sys.executable, "-c", script], check=True, env=os.environ | {"CUDA_VISIBLE_DEVICES": ""})
    return adapter_file_tensors(folder / "adapters.safetensors")


@pytest.mark.parametrize("precision", ["no", "bf16", "fp16"])
@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("compiled", [False, True])
def test_trainer_on_cuda_matches_the_cpu(tmp_path, cpu_reference, precision, channels_last, compiled):
    config = tiny_config(steps=4, precision=precision, channels_last=channels_last, compile=compiled)
    result, dtypes = conv_dtypes(lambda: train(config, tmp_path / "run"))
    assert all(torch.isfinite(torch.tensor(v)) for v in result.final.values())
    if not compiled:  # compiled graphs run no module hooks
        assert dtypes == {AUTOCAST_DTYPE[precision]}, f"autocast ran the convs in {dtypes}"
    ours = adapter_file_tensors(result.paths.adapters)
    assert (
        ours["extra/latents"].abs().sum() > 0
        and max(v.abs().max() for k, v in ours.items() if "delta" in k) > 0
    )
    for key, value in cpu_reference.items():
        torch.testing.assert_close(ours[key], value, atol=TOLERANCE[precision], rtol=TOLERANCE[precision])


@pytest.mark.parametrize("options", every_kind(ratio=4), ids=str)
def test_inject_is_the_exact_identity_under_bf16_and_tf32(options):
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    bundle = ga.load_generator("dcgan-faces")
    model = bundle.model.cuda().to(memory_format=torch.channels_last)
    z = torch.randn(8, 100, 1, 1, device="cuda")
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        before = model(z)
        after = ga.inject(model, **options)(z)
    assert torch.equal(before, after)


def test_adversarial_recipe_and_pretraining_on_cuda(tmp_path):
    result = train(tiny_config(recipe="adversarial", steps=3, precision="bf16"), tmp_path / "adversarial")
    assert all(torch.isfinite(torch.tensor(v)) for v in result.final.values())
    from test_zoo import test_pretraining_runs_resumes_and_ships_an_fp16_generator

    test_pretraining_runs_resumes_and_ships_an_fp16_generator(tmp_path / "pretrain")


def test_two_processes_on_two_gpus_match_one(tmp_path):
    if torch.cuda.device_count() < 2:
        pytest.skip(
            "NCCL puts one rank per GPU and this machine has one: the 2-process run is tested on CPUs"
        )
    args = [str(EMOJI), *TINY, "--steps", "6", "--checkpoint-every", "3"]
    one = cli("finetune", *args, "-o", str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "gan_adapters",
               "finetune", *args, "-o", str(tmp_path / "two")]  # fmt: skip
    two = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env())
    assert two.returncode == 0, two.stderr
    assert json.loads((tmp_path / "two" / "run.json").read_text())["processes"] == 2
    a = adapter_file_tensors(tmp_path / "one" / "adapters.safetensors")
    b = adapter_file_tensors(tmp_path / "two" / "adapters.safetensors")
    for key in a:  # the halves' gradients averaged by NCCL: the full batch's up to summation order
        torch.testing.assert_close(a[key], b[key], rtol=1e-3, atol=1e-4)


PATH_TOLERANCE = {torch.float32: 2e-3, torch.bfloat16: 3e-2}
"""Relative to the output's largest value: TF32 (10-bit mantissa) and bf16 (8-bit) rounding."""


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("implementation", sorted(POINTWISE_IMPLEMENTATIONS))
@pytest.mark.parametrize("fold", ["never", "always"])
def test_every_path_computes_bn_then_the_adapter_on_cuda(dtype, implementation, fold):
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(0)
    norm = torch.nn.BatchNorm2d(64).eval()
    norm.running_mean.normal_()
    norm.running_var.uniform_(0.5, 2)
    adapter = ga.GroupedPointwiseConv(64, group_size=8, bias=True)
    with torch.no_grad():
        adapter.delta.normal_(std=0.1)
        adapter.bias.normal_(std=0.1)
    x = torch.randn(8, 64, 16, 16)
    with torch.no_grad():
        expected = adapter.double()(norm.double()(x.double()))
    site = torch.nn.Sequential(norm).float().cuda()
    site = ga.inject(site, kind="apgc", group_size=8, bias=True, fold=fold, pointwise_impl=implementation)
    installed = next(m for m in site.modules() if isinstance(m, ga.GroupedPointwiseConv))
    with torch.no_grad():
        installed.delta.copy_(adapter.delta)
        installed.bias.copy_(adapter.bias)
    gx = x.cuda().to(memory_format=torch.channels_last)
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
        out = site(gx)
    scale = expected.abs().max().item()
    torch.testing.assert_close(out.double().cpu(), expected, atol=PATH_TOLERANCE[dtype] * scale, rtol=0)

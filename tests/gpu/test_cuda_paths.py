"""The adapters' own computations on a GPU: the identity at injection under bf16 and TF32, and
every point-wise path (each implementation, folded or not, both layouts, several group counts)
against a float64 reference, in value and gradient. Skipped where there is no GPU (CI never has
one): `bench/gpu_queue.sh 2` runs them in a GPU window."""

from __future__ import annotations

import copy

import pytest
import torch
from cuda_only import CUDA_ONLY
from kinds import every_kind
from test_fold import count_adapter_calls

import gan_adapters as ga
from gan_adapters.surgery.pointwise import POINTWISE_IMPLEMENTATIONS

pytestmark = CUDA_ONLY

CHANNELS = 48
PATH_TOLERANCE = {torch.float32: 1e-5, torch.bfloat16: 3e-2}
"""Output error over the output's largest value. fp32 with TF32 off: summation order only (a few
ulps, 1e-7). bf16: inputs and weights rounded to 8 bits (4e-3 each) over a dot product of g terms.
A wrong path (groups mixed up by a transposed reshape, the norm's affine lost or applied twice, the
bias dropped) is off by the adapter's own effect, about 0.3 * sqrt(g) of the scale: 0.6 and up."""
GRADIENT_TOLERANCE = {torch.float32: 1e-4, torch.bfloat16: 5e-2}
"""Gradient error over the largest gradient: each entry sums 8 x 16 x 16 products, whose rounding
averages out (bf16: 4e-3 per product)."""


@pytest.fixture
def tf32(request):
    """Set TF32 for the test (its parameter), and put the process's flags back afterwards."""
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = request.param
    yield request.param
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


@pytest.mark.parametrize("tf32", [True], indirect=True)
@pytest.mark.parametrize("options", every_kind(ratio=4), ids=str)
def test_inject_is_the_exact_identity_under_bf16_and_tf32(tf32, options):
    """The shipped source (in the package, so on the device), bf16 autocast, TF32, channels_last:
    injected, it computes bit for bit what it did. Fails on an adapter that stores its weight as
    I (+ delta) instead of the delta alone: a TF32 or bf16 1x1 conv with I rounds the activations."""
    bundle = ga.load_generator("cdcgan-emoji-32")
    model = bundle.model.cuda().to(memory_format=torch.channels_last)
    inputs = [x.cuda() for x in bundle.example_inputs(batch=8)]
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        before = model(*inputs)
        after = ga.inject(model, **options)(*inputs)
    assert torch.equal(before, after)


def _reference(x: torch.Tensor, norm, delta, bias, weights: torch.Tensor) -> dict[str, torch.Tensor]:
    """Output, and the gradients of (output * weights).sum() in delta and bias, in float64 on the CPU."""
    adapter = ga.GroupedPointwiseConv(CHANNELS, group_size=delta.shape[1], bias=True).double()
    with torch.no_grad():
        adapter.delta.copy_(delta)
        adapter.bias.copy_(bias)
    out = adapter(copy.deepcopy(norm).double()(x.double()))
    (out * weights.double()).sum().backward()
    return {"out": out.detach(), "delta": adapter.delta.grad, "bias": adapter.bias.grad}


@pytest.mark.parametrize("tf32", [False], indirect=True)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("group_size", [4, 16], ids=lambda g: f"g{g}-groups{CHANNELS // g}")
@pytest.mark.parametrize("layout", [torch.channels_last, torch.contiguous_format], ids=str)
@pytest.mark.parametrize("implementation", sorted(POINTWISE_IMPLEMENTATIONS))
@pytest.mark.parametrize("fold", ["never", "always"])
def test_every_path_computes_bn_then_the_adapter_on_cuda(
    tf32, dtype, group_size, layout, implementation, fold
):
    """norm then adapter, each path as `pointwise_impl` and `fold` choose it, against float64. Group
    counts other than the group size and both layouts: a transposed (groups, size) reshape passes
    only where they are equal or the memory order hides it. The folded path is checked to have run
    (no adapter pass of its own), and the gradients in delta and bias are compared too."""
    torch.manual_seed(0)
    norm = torch.nn.BatchNorm2d(CHANNELS).eval()
    norm.running_mean.normal_()
    norm.running_var.uniform_(0.5, 2)
    delta, bias = torch.randn(CHANNELS, group_size) * 0.3, torch.randn(CHANNELS) * 0.3
    x, weights = torch.randn(8, CHANNELS, 16, 16), torch.randn(8, CHANNELS, 16, 16)
    expected = _reference(x, norm, delta, bias, weights)

    site = torch.nn.Sequential(norm).cuda()
    site = ga.inject(
        site, kind="apgc", group_size=group_size, bias=True, fold=fold, pointwise_impl=implementation
    )
    installed = next(m for m in site.modules() if isinstance(m, ga.GroupedPointwiseConv))
    with torch.no_grad():
        installed.delta.copy_(delta)
        installed.bias.copy_(bias)
    passes = count_adapter_calls(site)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
        out = site(x.cuda().contiguous(memory_format=layout))
    (out.float() * weights.cuda()).sum().backward()
    assert passes == [1 if fold == "never" else 0], "the folded path runs inside the norm's forward"
    found = {"out": out, "delta": installed.delta.grad, "bias": installed.bias.grad}
    for name, tolerance in (
        ("out", PATH_TOLERANCE[dtype]),
        ("delta", GRADIENT_TOLERANCE[dtype]),
        ("bias", GRADIENT_TOLERANCE[dtype]),
    ):
        scale = expected[name].abs().max().item()
        torch.testing.assert_close(found[name].double().cpu(), expected[name], atol=tolerance * scale, rtol=0)

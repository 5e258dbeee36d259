"""The project's own source models: BigGAN's shape and arithmetic, the lean conditional DCGAN, and
pretraining at a tiny size (resumed bit-exactly)."""

from __future__ import annotations

import gzip
import json
import math

import pytest
import torch
from kinds import every_kind
from PIL import Image
from safetensors.torch import save_file

import gan_adapters as ga
from gan_adapters.errors import DataError
from gan_adapters.evaluation.pretrain_report import report
from gan_adapters.generators.biggan import BigGANConfig, BigGANDiscriminator, BigGANGenerator
from gan_adapters.generators.cdcgan import CDCGANConfig, CDCGANDiscriminator, CDCGANGenerator
from gan_adapters.generators.sources import load_generator_file
from gan_adapters.pretraining.config import PretrainConfig
from gan_adapters.pretraining.loop import pretrain
from gan_adapters.training.augment import diff_augment
from gan_adapters.training.data import load_image_tensor


def test_biggan_128_shape_and_the_research_arithmetic():
    with torch.device("meta"):
        generator = BigGANGenerator(BigGANConfig(resolution=128, ch=96, z_dim=120, num_classes=1000))
    assert 70.3e6 < sum(p.numel() for p in generator.parameters()) < 70.5e6
    adapted = ga.inject(generator, kind="apgc", group_size=8, targets=["ConditionalBatchNorm2d"])
    report = ga.summary(adapted)
    assert len(report.rows) == 10 and report.adapter_parameters == 59_136
    assert report.route.startswith("torch.fx (whole model"), "this generator traces: it indexes its z chunks"


def test_conditional_bn_sites_get_the_condition():
    generator = BigGANGenerator(BigGANConfig(resolution=32, ch=4, z_dim=16, num_classes=5)).eval()
    z, labels = torch.randn(2, 16), torch.tensor([1, 3])
    with torch.no_grad():
        reference = generator(z, labels)
    adapted = ga.inject(generator, kind="ssa", conditional=True)
    rows = ga.summary(adapted).rows
    assert [r.layer for r in rows] == ["ConditionalBatchNorm2d"] * 6 + ["BatchNorm2d"]
    assert [r.conditional for r in rows] == [True] * 6 + [False]
    with torch.no_grad():
        assert torch.equal(adapted(z, labels), reference)


def test_discriminator_scores_and_diff_augment_is_differentiable():
    config = BigGANConfig(resolution=32, ch=4, num_classes=5)
    scores = BigGANDiscriminator(config)(torch.randn(3, 3, 32, 32), torch.tensor([0, 1, 4]))
    assert scores.shape == (3,)
    images = torch.rand(4, 3, 32, 32, requires_grad=True)
    augmented = diff_augment(images, "color,translation,cutout", torch.Generator().manual_seed(0))
    assert augmented.shape == images.shape
    augmented.sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    cut = diff_augment(torch.ones(2, 3, 32, 32), "cutout", torch.Generator().manual_seed(1))
    assert (cut == 0).float().mean().item() == pytest.approx(0.25)
    with pytest.raises(ValueError, match="unknown DiffAugment op"):
        diff_augment(images, "rotate")


def tiny_tensor(path):
    images = (torch.rand(12, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)
    save_file(
        {"images": images, "labels": torch.arange(12) % 3},
        str(path),
        metadata={"classes": json.dumps(["a", "b", "c"])},
    )
    return path


def tiny_pretrain_config(**overrides) -> PretrainConfig:
    base = dict(
        architecture="biggan",
        model=BigGANConfig(resolution=32, ch=4, z_dim=16),
        batch_size=4,
        steps=3,
        checkpoint_every=2,
        ema_start=1,
    )
    return PretrainConfig(**(base | overrides))


def pretrain_resume_and_ship(tmp_path, precision: str = "no"):
    """A tiny BigGAN pretrained for 3 steps, resumed to 5; its shipped EMA generator generates on
    the CPU and loads as the source model. The generator file's path (the GPU suite runs this too)."""
    data = tiny_tensor(tmp_path / "tiny.safetensors")
    config = tiny_pretrain_config(precision=precision)
    first = pretrain(config, data, tmp_path / "run")
    assert first["steps"] == 3 and all(torch.isfinite(torch.tensor(v)) for v in first["final"].values())
    config.steps = 5
    resumed = pretrain(config, data, tmp_path / "run", resume=True)
    assert resumed["steps"] == 5 and resumed["classes"] == ["a", "b", "c"]
    weights = tmp_path / "run" / "generator-ema.safetensors"
    generator, card = load_generator_file(weights)
    assert card["steps"] == 5
    with torch.no_grad():
        images = generator(torch.randn(2, 16), torch.tensor([0, 2]))
    assert images.shape == (2, 3, 32, 32) and bool(images.isfinite().all())
    bundle = ga.load_generator("biggan-emoji-64", weights=str(weights))
    assert bundle.class_embedding == "shared" and bundle.num_classes == 3
    return weights


def test_pretraining_runs_resumes_and_ships_an_fp16_generator(tmp_path):
    weights = pretrain_resume_and_ship(tmp_path)
    data = tmp_path / "tiny.safetensors"
    result = report(weights, data, tmp_path / "run", samples=6, per_class=2, real=10, card={"licence": "CC0"})
    assert result["generated"] == 6 and result["real"] == 10 and math.isfinite(result["fid"])
    assert result["kid_x1000"] != 0 and result["card"]["steps"] == 5
    _, shipped_card = load_generator_file(weights)
    assert shipped_card["licence"] == "CC0" and shipped_card["report"]["kid_x1000"] == result["kid_x1000"]
    with Image.open(tmp_path / "run" / "samples-per-class.png") as grid:
        assert grid.size == (2 * 34 + 2, 3 * 34 + 2), "a row of 2 samples per class, 3 classes"

    # What a GPU window brings back (files under 15 MB) lets the next window go on from step 5.
    shards = sorted(p.name for p in (tmp_path / "run").glob("weights-*.safetensors"))
    assert shards == ["weights-0.safetensors"]
    carried = pretrain(tiny_pretrain_config(steps=7), data, tmp_path / "next", init_from=tmp_path / "run")
    assert carried["steps"] == 7, "continued from the brought-back step"
    from gan_adapters.files import read_shards

    before, meta = read_shards(tmp_path / "run" / "weights")
    assert meta["step"] == "5" and {k.split("/")[0] for k in before} == {"generator", "discriminator"}


def test_shards_split_by_size_and_read_back(tmp_path):
    from gan_adapters.files import read_shards, write_shards

    tensors = {f"t{i}": torch.full((1000,), float(i)) for i in range(5)}  # 4 kB each
    paths = write_shards(tensors, tmp_path / "w", max_bytes=9000, metadata={"step": "3"})
    assert [p.name for p in paths] == ["w-0.safetensors", "w-1.safetensors", "w-2.safetensors"]
    back, meta = read_shards(tmp_path / "w")
    assert meta == {"step": "3"} and all(torch.equal(back[k], v) for k, v in tensors.items())


def test_missing_shipped_weights_say_how_to_train_them():
    with pytest.raises(ga.GanAdaptersError, match="gan-adapters pretrain"):
        ga.load_generator("biggan-emoji-64")


def test_the_training_tensor_reads_the_same_gzipped_and_a_damaged_one_is_refused(tmp_path):
    images = torch.randint(0, 256, (5, 3, 8, 8), dtype=torch.uint8)
    plain = tmp_path / "set.safetensors"
    save_file({"images": images, "labels": torch.arange(5) % 2}, plain, metadata={"classes": '["a", "b"]'})
    packed = tmp_path / "set.safetensors.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    for path in (plain, packed):
        got, labels, classes = load_image_tensor(path)
        assert torch.equal(got, images) and labels.tolist() == [0, 1, 0, 1, 0] and classes == ["a", "b"]
    broken = tmp_path / "broken.safetensors.gz"
    broken.write_bytes(packed.read_bytes()[: len(packed.read_bytes()) // 2])
    with pytest.raises(DataError, match="not a labelled image tensor file"):
        load_image_tensor(broken)


def test_the_lean_conditional_dcgan_has_conditional_bn_sites_and_stays_identical_at_init():
    config = CDCGANConfig(resolution=32, ch=4, z_dim=16, num_classes=5)
    generator = CDCGANGenerator(config).eval()
    z, labels = torch.randn(3, 16), torch.tensor([0, 2, 4])
    with torch.no_grad():
        reference = generator(z, labels)
    assert reference.shape == (3, 3, 32, 32) and reference.abs().max() <= 1
    adapted = ga.inject(generator, kind="apgc", ratio=2)
    rows = ga.summary(adapted).rows
    assert [r.layer for r in rows] == ["ConditionalBatchNorm2d"] * 3 + ["BatchNorm2d"]
    assert [r.channels for r in rows] == [16, 16, 8, 4]
    with torch.no_grad():
        assert torch.equal(adapted(z, labels), reference)
    scores = CDCGANDiscriminator(config)(reference, labels)
    assert scores.shape == (3,)
    flat = CDCGANGenerator(CDCGANConfig(resolution=64, ch=2, z_dim=10, hierarchical=False))
    assert flat(torch.randn(2, 10), torch.tensor([1, 2])).shape == (2, 3, 64, 64)


def test_a_tiny_pretraining_resumes_bit_exactly(tmp_path):
    """Stopped after 2 steps and resumed to 4, the networks, EMA and optimisers equal a straight run."""
    data = tiny_tensor(tmp_path / "tiny.safetensors")

    def config(steps):
        return PretrainConfig(model=CDCGANConfig(ch=4, z_dim=16), batch_size=4, steps=steps, ema_start=1)

    straight = pretrain(config(4), data, tmp_path / "straight")
    pretrain(config(2), data, tmp_path / "stopped")
    resumed = pretrain(config(4), data, tmp_path / "stopped", resume=True)
    assert resumed["final"] == straight["final"] and resumed["steps"] == 4
    one = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=True)
    two = torch.load(tmp_path / "stopped" / "checkpoint.pt", weights_only=True)
    for part in ("generator", "discriminator", "ema"):
        for key, value in one[part].items():
            assert torch.equal(value, two[part][key]), f"{part}.{key} differs after resuming"
    assert one["g_opt"]["state"][0]["exp_avg"].equal(two["g_opt"]["state"][0]["exp_avg"])
    generator, card = load_generator_file(tmp_path / "stopped" / "generator-ema.safetensors")
    assert isinstance(generator, CDCGANGenerator) and card["architecture"] == "cdcgan"
    assert card["classes"] == ["a", "b", "c"] and generator.config.num_classes == 3


def test_an_unknown_architecture_is_refused_with_the_known_ones():
    with pytest.raises(ga.GanAdaptersError, match="unknown source architecture 'stylegan'.*cdcgan"):
        PretrainConfig(architecture="stylegan")


def test_standing_statistics_give_the_eval_generator_its_own_batch_statistics():
    """An EMA generator inherits running statistics that its weights never produced; standing
    statistics average its own: eval mode then matches train mode's batch statistics."""
    from gan_adapters.pretraining.state import standing_statistics

    generator = CDCGANGenerator(CDCGANConfig(ch=4, z_dim=16, num_classes=5))
    with torch.no_grad():
        for module in generator.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.fill_(3.0)  # statistics of some other network
    standing = standing_statistics(generator, batches=16, batch_size=64)
    assert not standing.training and generator.output_bn.running_mean.eq(3.0).all(), (
        "the original is untouched"
    )
    z, labels = torch.randn(512, 16, generator=torch.Generator().manual_seed(5)), torch.arange(512) % 5
    with torch.no_grad():
        stale = generator.eval()(z, labels)
        own = standing(z, labels)
        batch_stats = generator.train()(z, labels)
    assert (own - batch_stats).abs().mean() < 0.25 * (stale - batch_stats).abs().mean()


@pytest.mark.parametrize("name", ["cdcgan-emoji-32", "cdcgan-emoji-32-projected"])
def test_the_shipped_sources_load_offline_by_name_with_their_cards(name):
    from gan_adapters.generators.sources import WEIGHTS

    path = WEIGHTS / f"{name}.safetensors"
    assert path.stat().st_size <= 10 * 2**20, "at most 10 MB inside the package"
    bundle = ga.load_generator(name)
    assert (bundle.num_classes, bundle.image_size, bundle.latent_shape) == (96, 32, (128,))
    _, card = load_generator_file(path)
    assert card["architecture"] == "cdcgan" and len(card["classes"]) == 96 and card["images"] == 3529
    assert not {"animal-mammal", "food-prepared", "face-concerned"} & set(card["classes"]), "held out"
    assert card["steps"] >= 10_000 and card["train_seconds"] > 0 and "Apache-2.0" in card["licence"]
    assert math.isfinite(card["report"]["kid_x1000"]) and math.isfinite(card["report"]["fid"])
    if name.endswith("projected"):  # the card of the default source holds every measure of issue #27
        assert card["config"]["discriminator"] == "projected"
        assert all(0 <= card["report"][m] <= 1 for m in ("precision", "recall", "coverage"))
        assert math.isfinite(card["report"]["density"]) and card["report"]["generated"] >= 1000
    with torch.no_grad():
        images = bundle.model(*bundle.forward_inputs(torch.randn(4, 128), torch.tensor([0, 10, 50, 95])))
    assert images.shape == (4, 3, 32, 32) and images.std() > 0.1, "real samples, not a constant"


@pytest.mark.parametrize("options", every_kind(ratio=8), ids=str)
def test_every_kind_is_the_identity_at_init_on_the_shipped_source(options):
    bundle = ga.load_generator("cdcgan-emoji-32-projected")
    z, labels = torch.randn(3, 128), torch.tensor([1, 40, 90])
    with torch.no_grad():
        before = bundle.model(z, labels)
    adapted = ga.inject(bundle.model, **options, example_inputs=bundle.example_inputs())
    rows = ga.summary(adapted).rows
    assert [r.layer for r in rows] == ["ConditionalBatchNorm2d"] * 3 + ["BatchNorm2d"]
    with torch.no_grad():
        assert torch.equal(adapted(z, labels), before)


def test_ctrl_c_stops_pretraining_with_a_checkpoint_and_resume_goes_on(tmp_path):
    import os
    import signal

    from gan_adapters.errors import RunInterruptedError
    from gan_adapters.files import read_checkpoint

    data = tiny_tensor(tmp_path / "tiny.safetensors")

    def interrupt_at_10(step, total, losses, seconds, rate) -> None:
        if step == 10:
            os.kill(os.getpid(), signal.SIGINT)

    config = tiny_pretrain_config(steps=30, checkpoint_every=100)
    with pytest.raises(RunInterruptedError, match="checkpoint.pt holds step 10") as stopped:
        pretrain(config, data, tmp_path / "run", on_step=interrupt_at_10)
    assert stopped.value.step == 10 and read_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] == 10
    assert pretrain(config, data, tmp_path / "run", resume=True)["steps"] == 30


def test_balanced_sampling_draws_every_class_alike():
    from gan_adapters.pretraining.loop import draw_indices

    labels = torch.tensor([0] * 90 + [1] * 9 + [2] * 1)
    gen = torch.Generator().manual_seed(0)
    balanced = torch.bincount(labels[draw_indices(labels, 6000, gen, balanced=True)], minlength=3) / 6000
    plain = torch.bincount(labels[draw_indices(labels, 6000, gen, balanced=False)], minlength=3) / 6000
    assert torch.allclose(balanced, torch.full((3,), 1 / 3), atol=0.03)
    assert torch.allclose(plain, torch.tensor([0.9, 0.09, 0.01]), atol=0.03)


def test_a_projected_discriminator_pretrains_a_class_conditional_source(tmp_path):
    from gan_adapters.generators.cdcgan import CDCGANConfig
    from gan_adapters.pretraining.state import build_gan

    data = tiny_tensor(tmp_path / "tiny.safetensors")
    config = tiny_pretrain_config(
        architecture="cdcgan",
        model=CDCGANConfig(resolution=32, ch=4, num_classes=3),
        discriminator="projected",
        disc_width=8,
        steps=2,
    )
    card = pretrain(config, data, tmp_path / "run")
    assert card["steps"] == 2 and all(math.isfinite(v) for v in card["final"].values())
    critic = build_gan(config, torch.device("cpu")).discriminator
    trained = {n for n, p in critic.named_parameters() if p.requires_grad}
    assert trained and all(n.startswith("heads.") for n in trained), "the feature network stays frozen"
    with torch.no_grad():
        for head in critic.heads:
            head.embed.weight.normal_()
        images = torch.rand(2, 3, 32, 32) * 2 - 1
        assert not torch.allclose(critic(images, torch.tensor([0, 0])), critic(images, torch.tensor([1, 2])))

"""Domains loaded from files side by side: their names, their blends (adapters and class
embeddings with the same weights), and conditional adapters blended part by part."""

from __future__ import annotations

import torch

import gan_adapters as ga
from gan_adapters.adapted.several import BLENDED, load_domains, use_domains
from tests.tiny_models import tiny_biggan_deep, tiny_dcgan

TINY_DCGAN, TINY_BIGGAN = "tiny_models:tiny_dcgan", "tiny_models:tiny_biggan_deep"


def trained_file(path, bundle, seed: int, kind: str = "ssa", embedding: bool = False, **options):
    """An adapter file as a run leaves it: random (trained-looking) adapters, a class embedding."""
    model = ga.inject(bundle.model, kind=kind, example_inputs=bundle.example_inputs(), **options)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in ga.trainable_parameters(model):
            param.add_(0.3 * torch.randn(param.shape, generator=gen))
    extras = {"class_embedding": torch.randn(8, generator=gen)} if embedding else None
    path.parent.mkdir(parents=True, exist_ok=True)
    return ga.save_adapters(model, path, extras=extras)


def scales(model, name):
    return [
        slot[name].scale.detach().clone() for slot in model.modules() if type(slot).__name__ == "AdapterSlot"
    ]


def test_domain_names_avoid_the_blend_name_and_clashes_between_folders(tmp_path):
    sources = [
        trained_file(tmp_path / d / "run.safetensors", tiny_dcgan(), seed) for d, seed in (("a", 1), ("b", 2))
    ]
    blended = trained_file(tmp_path / f"{BLENDED}.safetensors", tiny_dcgan(), 3)
    domains = load_domains([*sources, blended], TINY_DCGAN, trust_code=True)
    assert domains.names == ["run", "run-2", f"{BLENDED}-2"]
    run = use_domains(domains, {"run": 0.5, "run-2": 0.5})
    assert torch.isfinite(ga.generate(run, ga.draw_latents(run, 2))).all()
    # The domain named like the blend is still itself after a blend replaced the blend adapter.
    alone = scales(use_domains(domains, {f"{BLENDED}-2": 1.0}).bundle.model, f"{BLENDED}-2")
    again = scales(use_domains(domains, {"run": 0.3, f"{BLENDED}-2": 0.7}).bundle.model, f"{BLENDED}-2")
    assert all(torch.equal(x, y) for x, y in zip(alone, again, strict=True))


def test_a_one_name_blend_is_that_fraction_of_its_change(tmp_path):
    source = trained_file(tmp_path / "faces.safetensors", tiny_dcgan(), 1)
    other = trained_file(tmp_path / "animals.safetensors", tiny_dcgan(), 2)
    domains = load_domains([source, other], TINY_DCGAN, trust_code=True)
    model = use_domains(domains, {"faces": 0.5}).bundle.model
    for full, half in zip(scales(model, "faces"), scales(model, BLENDED), strict=True):
        torch.testing.assert_close(half, 1 + (full - 1) / 2, rtol=0, atol=1e-6)


def test_class_embeddings_blend_with_the_adapters_weights(tmp_path):
    files = [
        trained_file(tmp_path / f"{n}.safetensors", tiny_biggan_deep(), s, embedding=True)
        for n, s in (("faces", 1), ("animals", 2))
    ]
    domains = load_domains(files, TINY_BIGGAN, trust_code=True)
    first, second = (domains.embeddings[n] for n in ("faces", "animals"))
    run = use_domains(domains, {"faces": 0.25, "animals": 0.75})
    learned = run.bundle.model.get_submodule(run.bundle.class_embedding).embedding.detach()
    torch.testing.assert_close(learned, 0.25 * first + 0.75 * second, rtol=0, atol=1e-6)
    run = use_domains(domains, {"animals": 1.0})
    assert torch.equal(run.bundle.model.get_submodule(run.bundle.class_embedding).embedding.detach(), second)


def test_conditional_adapters_blend_their_conditioning_layers_too():
    bundle = tiny_biggan_deep()
    model = bundle.model
    for name, seed in (("faces", 1), ("animals", 2)):
        model = ga.inject(
            model, kind="ssa", conditional=True, adapter_name=name, example_inputs=bundle.example_inputs()
        )
        ga.set_adapter(model, name)
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for param in ga.trainable_parameters(model):
                param.add_(0.3 * torch.randn(param.shape, generator=gen))
    model = ga.blend(model, {"faces": 0.5, "animals": 0.5}, name="mix")
    slots = [m for m in model.modules() if type(m).__name__ == "AdapterSlot" and m["faces"].conditional]
    assert len(slots) == 20, "every class-conditional BN of BigGAN-deep's blocks"
    for slot in slots:
        faces, animals, mix = (slot[n].condition_fc for n in ("faces", "animals", "mix"))
        torch.testing.assert_close(mix.weight, (faces.weight + animals.weight) / 2, rtol=0, atol=1e-6)
        torch.testing.assert_close(mix.bias, (faces.bias + animals.bias) / 2, rtol=0, atol=1e-6)

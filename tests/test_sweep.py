"""eval and sweep: real Inception features, resumable cells, the research table and plot."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from test_training import EMOJI, tiny_config
from test_training_cli import cli, env

import gan_adapters as ga
from gan_adapters.evaluation.evaluator import EvalConfig, Evaluator
from gan_adapters.evaluation.grid import SweepConfig
from gan_adapters.evaluation.metrics import DEGENERATE_SPREAD
from gan_adapters.evaluation.sweep import run_sweep, trained_cells
from gan_adapters.training.trainer import train

SWEEP = """
[base]
model = "tiny_models:tiny_dcgan"
steps = 3
batch_size = 6
lr = 5e-3
perceptual = "none"
sample_every = 3
checkpoint_every = 3

[[domains]]
name = "faces"
data = "{data}"
real = "{real}"

[[methods]]
kind = "ssa"

[[methods]]
kind = "apgc"
ratio = 2
lr = 1e-2

[grid]
images = [6]
seeds = [0, 1]

[eval]
samples = 6
kid_subsets = 5
"""


class PooledPixels:
    """A cheap stand-in for Inception where a test checks the sweep's plumbing, not the metric:
    each image's 4 x 4 average-pooled pixels (48 features)."""

    name = "pooled-pixels"

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.adaptive_avg_pool2d(images.float(), 4).flatten(1)


def small_real_set(tmp_path: Path, count: int = 10) -> Path:
    """A few real images: Inception features cost about 0.15 s an image on 2 cores."""
    folder = tmp_path / "real"
    folder.mkdir()
    for path in sorted(EMOJI.glob("*.png"))[-count:]:
        Image.open(path).save(folder / path.name)
    return folder


def test_sweep_runs_every_cell_once_and_writes_table_and_plot(tmp_path):
    recipe = tmp_path / "sweep.toml"
    recipe.write_text(SWEEP.format(data=EMOJI, real=small_real_set(tmp_path)))
    config = SweepConfig.from_toml(recipe)
    assert [m.label for m in config.methods] == ["ssa", "apgc-ratio2"] and config.methods[1].train == {
        "lr": 1e-2
    }
    evaluator = Evaluator(cache=tmp_path / "cache")
    seen = []
    rows = run_sweep(
        config,
        tmp_path / "out",
        evaluator=evaluator,
        on_cell=lambda i, n, name, status: seen.append((name, status)),
        trust_code=True,
    )
    assert len(rows) == 4 and {r["method"] for r in rows} == {"ssa", "apgc-ratio2"}
    assert [s for _, s in seen].count("done") == 4
    ratios = {r["method"]: float(r["ratio"]) for r in rows}
    assert ratios == {"ssa": 1.0, "apgc-ratio2": 2.0}
    apgc_config = (tmp_path / "out" / "cells" / "faces-apgc-ratio2-n6-s1" / "config.toml").read_text()
    assert "lr = 0.01" in apgc_config and "seed = 1" in apgc_config
    table = (tmp_path / "out" / "results.md").read_text()
    assert (
        "| ssa | 1 |" in table and "| apgc-ratio2 | 2 |" in table and "6 images" in table and " ± " in table
    )
    with Image.open(tmp_path / "out" / "results.png") as plot:
        assert plot.size[0] > 500
    stamp = (tmp_path / "out" / "cells" / "faces-ssa-n6-s0" / "adapters.safetensors").stat().st_mtime_ns

    seen.clear()
    again = run_sweep(
        config,
        tmp_path / "out",
        evaluator=evaluator,
        on_cell=lambda i, n, name, status: seen.append(status),
        trust_code=True,
    )
    assert seen == ["skip"] * 4 and len(again) == 4
    assert (
        tmp_path / "out" / "cells" / "faces-ssa-n6-s0" / "adapters.safetensors"
    ).stat().st_mtime_ns == stamp


def test_eval_command_on_a_run_and_on_folders(tmp_path):
    real = small_real_set(tmp_path)
    run = train(tiny_config(steps=3), tmp_path / "run").paths.root
    result = cli(
        "eval",
        str(run),
        str(real),
        "-n",
        "8",
        "--kid-subsets",
        "5",
        "--cache",
        str(tmp_path / "cache"),
        "--trust-code",
    )
    assert result.returncode == 0, result.stderr
    assert "KID x1000" in result.stdout
    scores = json.loads((run / "eval.json").read_text())
    assert scores["generated"] == 8 and scores["real"] == 10
    again = Evaluator(cache=tmp_path / "cache").score_run(
        run, real, EvalConfig(samples=8, kid_subsets=5), trust_code=True
    )
    assert scores["kid"] == pytest.approx(again.kid) and scores["fid"] == pytest.approx(again.fid), (
        "the command scores what the library scores"
    )

    same = cli(
        "eval",
        str(real),
        str(real),
        "--cache",
        str(tmp_path / "cache"),
        "--json",
        str(tmp_path / "same.json"),
    )
    assert same.returncode == 0, same.stderr
    same_scores = json.loads((tmp_path / "same.json").read_text())
    assert abs(same_scores["fid"]) < 1e-3, "a set against itself"
    assert scores["kid"] > 10 * abs(same_scores["kid"])


def test_eval_unseen_scores_only_the_images_a_run_did_not_train_on(tmp_path):
    run = train(tiny_config(steps=3, images=40), tmp_path / "run").paths.root
    evaluator, config = Evaluator(PooledPixels(), cache=None), EvalConfig(samples=8, kid_subsets=5)
    whole = evaluator.score_run(run, EMOJI, config, trust_code=True)
    unseen = evaluator.score_run(run, EMOJI, config, trust_code=True, unseen=True)
    assert whole.real == len(list(EMOJI.glob("*.png"))) and unseen.real == whole.real - 40
    with pytest.raises(ga.ConfigError, match="the run trained on .*emoji-faces, not on .*real"):
        evaluator.score_run(run, small_real_set(tmp_path), config, trust_code=True, unseen=True)
    refused = cli("eval", str(EMOJI), str(EMOJI), "--unseen")
    assert refused.returncode == 2 and "is not a run folder" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_cached_real_features_are_reused(tmp_path):
    calls = []

    class Counting:
        name = "counting"

        def __call__(self, images):
            calls.append(len(images))
            return images.flatten(1)[:, :16]

    evaluator = Evaluator(Counting(), cache=tmp_path)
    run = train(tiny_config(steps=2), tmp_path / "run").paths.root
    config = EvalConfig(samples=5, kid_subsets=2)
    evaluator.score_run(run, EMOJI, config, trust_code=True)
    evaluator.score_run(run, EMOJI, config, trust_code=True)
    assert calls == [5, 100], "generated and real once; the second evaluation read both from the cache"


def test_cell_folders_never_leave_the_sweep_folder(tmp_path):
    from gan_adapters.evaluation.cells import cell_name
    from gan_adapters.evaluation.grid import Domain, Method

    name = cell_name(Domain(name="../../somewhere", data="x"), Method(ga.AdapterConfig(kind="ssa")), 6, 0)
    assert name == "somewhere-ssa-n6-s0" and "/" not in name


def test_a_planted_link_in_a_run_folder_is_refused(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (tmp_path / "outside").mkdir()
    (run / "samples").symlink_to(tmp_path / "outside")
    with pytest.raises(ga.ConfigError, match="leads outside"):
        train(tiny_config(steps=2), run, overwrite=True)
    assert not list((tmp_path / "outside").iterdir())


TUNED = """
[base]
model = "tiny_models:tiny_dcgan"
steps = 4
batch_size = 6
perceptual = "none"
sample_every = 4
checkpoint_every = 4

[[domains]]
name = "faces"
data = "{data}"
real = "{real}"
validation = "{validation}"

[[methods]]
kind = "ssa"
lrs = [1e-4, 3e-2]

[[methods]]
recipe = "adversarial"
kind = "ssa"
d_lr = 1e-3

[grid]
images = [6]
seeds = [0]

[tuning]
images = 6
steps = 3
samples = 6

[eval]
samples = 6
kid_subsets = 5
"""


def validation_set(tmp_path: Path) -> Path:
    """8 emoji the training folder's first images never include, as a validation folder."""
    validation = tmp_path / "validation"
    validation.mkdir()
    for path in sorted(EMOJI.glob("*.png"))[40:48]:
        Image.open(path).save(validation / path.name)
    return validation


def test_learning_rates_are_tuned_on_validation_images_and_recipes_are_rows(tmp_path):
    real, validation = small_real_set(tmp_path), validation_set(tmp_path)
    recipe = tmp_path / "sweep.toml"
    recipe.write_text(TUNED.format(data=EMOJI, real=real, validation=validation))
    config = SweepConfig.from_toml(recipe)
    assert [m.label for m in config.methods] == ["ssa", "adversarial-ssa"]
    rows = run_sweep(config, tmp_path / "out", evaluator=Evaluator(cache=tmp_path / "cache"), trust_code=True)
    tuning = list(csv.DictReader((tmp_path / "out" / "tuning.csv").open()))
    assert [(r["method"], r["lr"]) for r in tuning] == [("ssa", "0.0001"), ("ssa", "0.03")]
    assert sum(r["chosen"] == "yes" for r in tuning) == 1
    chosen = next(r for r in tuning if r["chosen"] == "yes")
    by_method = {r["method"]: r for r in rows}
    assert by_method["ssa"]["lr"] == chosen["lr"], "the cell trained with the tuned learning rate"
    assert by_method["adversarial-ssa"]["recipe"] == "adversarial"
    for row in rows:  # the flag follows the measured spread (a random tiny generator is often uniform)
        assert (float(row["spread"]) < DEGENERATE_SPREAD) == bool(row["degenerate"]), row
    assert "| adversarial-ssa |" in (tmp_path / "out" / "results.md").read_text()
    assert "| adversarial-ssa |" in (tmp_path / "out" / "yardstick.md").read_text()
    grid = Image.open(tmp_path / "out" / "samples-per-row-faces.png")
    size = ga.load_run(tmp_path / "out" / "cells" / rows[0]["cell"], trust_code=True).bundle.image_size
    assert grid.height == 2 * 2 * (size + 4), "a row of samples per method, drawn twice as large"


def test_a_row_tuned_once_on_one_domain_trains_every_domain_at_its_rate(tmp_path):
    real, validation = small_real_set(tmp_path), validation_set(tmp_path)
    body = TUNED.format(data=EMOJI, real=real, validation=validation)
    second = f'[[domains]]\nname = "faces-untuned"\ndata = "{EMOJI}"\nreal = "{real}"\n\n[[methods]]'
    body = body.replace("[[methods]]", second, 1).replace(
        "samples = 6\n", 'samples = 6\ndomain = "faces"\n', 1
    )
    recipe = tmp_path / "sweep.toml"
    recipe.write_text(body)
    config = SweepConfig.from_toml(recipe)
    rows = run_sweep(config, tmp_path / "out", evaluator=Evaluator(cache=tmp_path / "cache"), trust_code=True)
    tuning = list(csv.DictReader((tmp_path / "out" / "tuning.csv").open()))
    assert {r["domain"] for r in tuning} == {"faces"}, "only the named domain tunes"
    chosen = next(r for r in tuning if r["chosen"] == "yes" and r["method"] == "ssa")
    assert {r["domain"] for r in rows} == {"faces", "faces-untuned"}
    assert all(r["lr"] == chosen["lr"] for r in rows if r["method"] == "ssa"), "one rate a row"
    recipe.write_text(body.replace('domain = "faces"', 'domain = "nope"'))
    with pytest.raises(ga.ConfigError, match="domain = 'nope' is none of the sweep's domains: faces"):
        SweepConfig.from_toml(recipe)


def test_degenerate_cells_are_flagged_in_the_table_and_the_plot(tmp_path):
    from gan_adapters.evaluation.metrics import score
    from gan_adapters.evaluation.results import plot_results, results_table

    real = torch.randn(20, 8)
    constant = score(torch.ones(20, 8), real, kid_subsets=3)
    varied = score(torch.randn(20, 8), real, kid_subsets=3)
    assert constant.spread_generated == 0 and "0% as varied" in constant.degenerate
    assert varied.degenerate == "" and varied.spread_generated > 0.5 * varied.spread_real
    row = dict(domain="d", ratio="1", kid="0.1", kmmd="0.2", images="25", recipe="supervised", lr="0.001")
    rows = [
        row | dict(method="ssa", seed="0", degenerate=""),
        row | dict(method="apc", seed="0", degenerate=constant.degenerate),
    ]
    table = results_table(rows)
    assert "| apc | 1 | 0.001 | 100.0 ± 0.0 / 0.2000 ± 0.0000 ⚠ 1/1 degenerate |" in table
    assert "| ssa | 1 | 0.001 | 100.0 ± 0.0 / 0.2000 ± 0.0000 |" in table
    assert plot_results(rows, tmp_path / "plot.png").exists()


def test_two_shards_at_once_give_the_table_of_one(tmp_path):
    recipe = tmp_path / "sweep.toml"
    one_cell_each = SWEEP.replace("seeds = [0, 1]", "seeds = [0]")  # 2 cells: one per shard
    recipe.write_text(one_cell_each.format(data=EMOJI, real=small_real_set(tmp_path)))
    common = ["--trust-code"]
    one = cli("sweep", str(recipe), "-o", str(tmp_path / "one"), *common)
    assert one.returncode == 0, one.stderr
    shards = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gan_adapters",
                "sweep",
                str(recipe),
                "-o",
                str(tmp_path / "two"),
                "--shard",
                f"{i}/2",
                *common,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env(),
        )
        for i in range(2)
    ]
    for process in shards:
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr
    key = ("cell", "kid", "kmmd", "fid", "lr", "ratio")
    ours = [tuple(r[k] for k in key) for r in csv.DictReader((tmp_path / "two" / "results.csv").open())]
    theirs = [tuple(r[k] for k in key) for r in csv.DictReader((tmp_path / "one" / "results.csv").open())]
    assert len(theirs) == 2 and ours == theirs, "the same cells, the same numbers, one merged table"
    assert not list((tmp_path / "two").rglob("lock")), "every lock released"
    bad = cli("sweep", str(recipe), "-o", str(tmp_path / "three"), "--shard", "2/2")
    assert bad.returncode == 2 and "0 <= i < N" in bad.stderr


def test_a_lock_held_by_a_live_process_is_respected_and_a_dead_ones_taken_over(tmp_path):
    import os

    from gan_adapters.evaluation.cells import claim

    assert claim(tmp_path / "cell") and not claim(tmp_path / "cell"), "held by this (live) process"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    lock = tmp_path / "cell" / "lock"
    lock.write_text(f"{os.uname().nodename} {dead.stdout.strip()}")
    assert claim(tmp_path / "cell"), "a dead process's lock is stale"


def test_a_gpu_window_trains_within_its_time_and_the_cpu_scores_later(tmp_path):
    recipe = tmp_path / "sweep.toml"
    recipe.write_text(
        SWEEP.replace("seeds = [0, 1]", "seeds = [0]").format(data=EMOJI, real=small_real_set(tmp_path))
    )
    config, out, seen = SweepConfig.from_toml(recipe), tmp_path / "out", []
    record = lambda i, n, name, status: seen.append(status)  # noqa: E731
    rows = run_sweep(config, out, stage="train", time_limit=0.0, on_cell=record, trust_code=True)
    assert rows == [] and seen == ["train", "done", "time"], "the first cell runs; the next would not fit"
    first, second = (out / "cells" / name for name in ("faces-ssa-n6-s0", "faces-apgc-ratio2-n6-s0"))
    assert (first / "adapters.safetensors").exists() and not (first / "result.json").exists()
    assert not (second / "adapters.safetensors").exists() and not list(out.rglob("lock"))
    assert trained_cells(config, out) == config.cells()[:1]
    evaluator, seen[:] = Evaluator(PooledPixels(), cache=None), []
    rows = run_sweep(config, out, stage="score", evaluator=evaluator, on_cell=record, trust_code=True)
    assert seen == ["train", "done", "untrained"] and [r["cell"] for r in rows] == ["faces-ssa-n6-s0"]
    stamp = (first / "adapters.safetensors").stat().st_mtime_ns
    run_sweep(config, out, stage="train", trust_code=True)
    rows = run_sweep(config, out, stage="score", evaluator=evaluator, trust_code=True)
    assert [r["cell"] for r in rows] == ["faces-ssa-n6-s0", "faces-apgc-ratio2-n6-s0"]
    assert (first / "adapters.safetensors").stat().st_mtime_ns == stamp, "scoring trains nothing again"
    config.methods[0].lrs = [1e-3, 1e-2]
    with pytest.raises(ga.ConfigError, match="cannot do: give them a fixed lr"):
        run_sweep(config, tmp_path / "tuned", stage="train", trust_code=True)


def test_a_cell_scored_at_another_rate_than_it_would_train_at_now_is_trained_again(tmp_path):
    """Widening a row's rate grid can change the rate tuning picks; a cell kept from before would
    mix two tunings in one row, so it trains again, and the cells still at their rate are kept."""
    recipe = tmp_path / "sweep.toml"
    recipe.write_text(
        SWEEP.replace("seeds = [0, 1]", "seeds = [0]").format(data=EMOJI, real=small_real_set(tmp_path))
    )
    config, out, seen = SweepConfig.from_toml(recipe), tmp_path / "out", []
    evaluator = Evaluator(PooledPixels(), cache=None)
    first = run_sweep(config, out, evaluator=evaluator, trust_code=True)
    assert [r["lr"] for r in first] == ["0.005", "0.01"]
    kept = out / "cells" / "faces-apgc-ratio2-n6-s0" / "adapters.safetensors"
    stamp = kept.stat().st_mtime_ns
    config.methods[0].train["lr"] = 2e-3  # the ssa row's rate changed since its cell ran
    rows = run_sweep(
        config,
        out,
        evaluator=evaluator,
        on_cell=lambda i, n, name, status: seen.append(status),
        trust_code=True,
    )
    assert seen == ["train", "done", "skip"]
    assert [r["lr"] for r in rows] == ["0.002", "0.01"]
    assert "lr = 0.002" in (out / "cells" / "faces-ssa-n6-s0" / "config.toml").read_text()
    assert kept.stat().st_mtime_ns == stamp, "a cell at its rate is not trained again"

    kept.unlink()  # a result kept without its weights (bench/results keeps few): no row to draw
    assert len(run_sweep(config, out, evaluator=evaluator, trust_code=True)) == 2
    size = ga.load_run(out / "cells" / "faces-ssa-n6-s0", trust_code=True).bundle.image_size
    assert Image.open(out / "samples-per-row-faces.png").height == 2 * (size + 4), "one row drawn"


def test_by_size_runs_the_first_training_set_size_for_every_seed_and_domain_first(tmp_path):
    recipe = tmp_path / "sweep.toml"
    body = SWEEP.format(data=EMOJI, real=EMOJI).replace("images = [6]", "images = [6, 8]")
    second = f'[[domains]]\nname = "more"\ndata = "{EMOJI}"\n\n[[methods]]'
    recipe.write_text(body.replace("[[methods]]", second, 1).replace("[grid]", '[grid]\norder = "by-size"'))
    config = SweepConfig.from_toml(recipe)
    cells = [(d.name, m.label, n, s) for d, m, n, s in config.cells()]
    assert len(cells) == 2 * 2 * 2 * 2 and len(set(cells)) == len(cells)
    assert [n for _, _, n, _ in cells] == [6] * 8 + [8] * 8, "every 6-image cell before any 8-image one"
    assert cells[:4] == [
        ("faces", "ssa", 6, 0),
        ("faces", "apgc-ratio2", 6, 0),
        ("more", "ssa", 6, 0),
        ("more", "apgc-ratio2", 6, 0),
    ], "within a size: seed, then domain, then the rows"
    recipe.write_text(recipe.read_text().replace("by-size", "by-luck"))
    with pytest.raises(ga.ConfigError, match="order must be one of by-domain, by-seed, by-size"):
        SweepConfig.from_toml(recipe)


def test_the_research_recipe_on_the_shipped_source_dry_runs_two_cells(tmp_path):
    """recipes/research-emoji-cdcgan-cpu.toml as written (a toy source in place of the shipped
    weights, 2 steps): its domains resolve, the 25-image face-concerned cells are left out as
    unscorable, and each cell is scored on the subgroup's images it did not train on."""
    from gan_adapters.generators.cdcgan import CDCGANConfig, CDCGANGenerator
    from gan_adapters.generators.sources import save_generator_file

    recipe = Path(__file__).resolve().parents[1] / "recipes" / "research-emoji-cdcgan-cpu.toml"
    config = SweepConfig.from_toml(recipe)
    assert [(d.name, n, left) for d, n, left in config.unscorable()] == [("face-concerned", 25, 1)]
    cells = config.cells()
    assert len(cells) == 7 * 3 * 5, "7 methods x 3 seeds x (3 domains x 2 sizes, less one)"
    assert {(c[0].name, c[2]) for c in cells} == {
        ("animal-mammal", 10),
        ("animal-mammal", 25),
        ("food-prepared", 10),
        ("food-prepared", 25),
        ("face-concerned", 10),
    }
    weights = save_generator_file(
        CDCGANGenerator(CDCGANConfig(ch=16, num_classes=96)), tmp_path / "toy.safetensors"
    )
    config.base.model_options = {"weights": str(weights)}
    config.base.steps, config.base.perceptual, config.eval.samples = 2, "none", 6
    config.seeds, config.images = [0], [10, 25]
    config.domains = [d for d in config.domains if d.name == "food-prepared"]
    config.methods = [m for m in config.methods if m.label in ("ssa (Noguchi-Harada)", "apgc ratio 8")]
    for method in config.methods:
        method.lrs = None  # tuning is tested above; here the grid's plumbing
    rows = run_sweep(config, tmp_path / "out", evaluator=Evaluator(PooledPixels(), cache=None))
    assert [(r["method"], r["images"], r["real_images"]) for r in rows] == [
        ("ssa (Noguchi-Harada)", "10", "24"),
        ("apgc ratio 8", "10", "24"),
        ("ssa (Noguchi-Harada)", "25", "9"),
        ("apgc ratio 8", "25", "9"),
    ], "34 food-prepared images: scored on the 24 (or 9) not trained on"

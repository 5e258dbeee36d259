"""`sweep`: every cell of a grid (domains x methods x training-set sizes x seeds) fine-tuned and
scored, resumable and shardable: a finished cell leaves result.json, a cell interrupted mid-run
resumes from its checkpoint, and N processes split the grid with `shard=(i, N)`. The recipe's
data model is in `grid.py`; one cell in `cells.py`; learning-rate tuning in `tuning.py`.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gan_adapters.adapted.run import load_run
from gan_adapters.errors import ConfigError
from gan_adapters.evaluation.cells import (
    LOCK_FILE,
    cell_config,
    cell_name,
    claim,
    finished_training,
    read_result,
    run_cell,
    train_cell,
)
from gan_adapters.evaluation.evaluator import Evaluator
from gan_adapters.evaluation.grid import SweepConfig
from gan_adapters.evaluation.results import plot_results, read_results, results_table, write_results
from gan_adapters.evaluation.tuning import tune_learning_rates
from gan_adapters.evaluation.yardstick import plot_fidelity_diversity, samples_per_row, yardstick_table
from gan_adapters.files import inside, slug, write_text_atomically
from gan_adapters.generators.registry import refuse_untrusted_code
from gan_adapters.training.recipe import TrainConfig
from gan_adapters.training.runs import RunPaths

log = logging.getLogger(__name__)


def parse_shard(text: str) -> tuple[int, int]:
    """'i/N' (0 <= i < N) as (i, N): this process runs every N-th cell, starting at the i-th."""
    index, _, count = text.partition("/")
    try:
        shard = int(index), int(count)
    except ValueError:
        shard = (-1, 0)
    if not 0 <= shard[0] < shard[1]:
        raise ConfigError(f"--shard takes i/N with 0 <= i < N (for example 0/4), got {text!r}")
    return shard


STAGES = ("all", "train", "score")
"""`all`: train and score each cell. `train`: train only (a GPU box without the scoring network;
no result yet). `score`: score the cells already trained, train none (the CPU, afterwards)."""


def run_sweep(
    config: SweepConfig,
    out: str | Path,
    *,
    evaluator: Evaluator | None = None,
    on_cell: Callable[[int, int, str, str], None] | None = None,
    on_step=None,
    trust_code: bool = False,
    shard: tuple[int, int] = (0, 1),
    stage: str = "all",
    time_limit: float | None = None,
    cell_seconds: float | None = None,
) -> list[dict[str, str]]:
    """Tune learning rates where asked, then run every cell of this shard not yet finished;
    write the merged table and plot; return the rows finished so far (in grid order).

    `on_cell(index, total, name, status)` reports progress ('skip', 'train', 'done'; 'busy'
    when another process holds the cell; 'untrained' in the score stage; 'time' when a cell
    would not finish within `time_limit` seconds, judged by the mean of this call's cells, or
    `cell_seconds` before the first has run).
    Cell folders are always inside `out/cells`.
    """
    refuse_untrusted_code(config.base.model, Path("the sweep recipe"), trust_code)
    _check_stage(config, stage)
    out, began, durations = Path(out), time.monotonic(), [] if cell_seconds is None else [cell_seconds]
    chosen = {}
    if stage != "train":
        evaluator = evaluator or Evaluator()
        chosen = tune_learning_rates(config, out, evaluator, on_step=on_step, trust_code=trust_code)
    cells = config.cells()
    for index, cell in enumerate(cells):
        name, folder = cell_name(*cell), inside(out, "cells", cell_name(*cell))
        lr = chosen.get((cell[0].name, cell[1].label))
        train_config = cell_config(config, *cell, **({"lr": lr} if lr is not None else {}))
        status = _status(train_config, folder, index % shard[1] == shard[0], stage)
        if status == "train" and time_limit is not None and durations:
            status = "time" if time.monotonic() - began + statistics.mean(durations) > time_limit else status
        if status == "train" and not claim(folder):
            status = "busy"
        if on_cell:
            on_cell(index, len(cells), name, status)
        if status != "train":
            continue
        started = time.monotonic()
        _run_one(config, cell, folder, stage, train_config, evaluator, on_step, trust_code)
        if stage != "train":
            _write_tables(out, cells)
        durations.append(time.monotonic() - started)
        if on_cell:
            on_cell(index, len(cells), name, "done")
    if stage != "train":
        _write_samples(config, out, trust_code)
    return _write_tables(out, cells)


def _run_one(
    config: SweepConfig,
    cell: tuple,
    folder: Path,
    stage: str,
    train_config: TrainConfig,
    evaluator: Evaluator | None,
    on_step,
    trust_code: bool,
) -> None:
    """Train one claimed cell (and score it, unless this is the train stage); release its lock."""
    domain, method, images, seed = cell
    fresh = _stale(read_result(folder), train_config.lr)  # the old result stays until replaced
    if stage == "train":
        train_cell(train_config, folder, on_step)
        (folder / LOCK_FILE).unlink(missing_ok=True)
        return
    row = {
        "cell": cell_name(*cell),
        "domain": domain.name,
        "method": method.label,
        "kind": method.adapter.kind,
        "images": images,
        "seed": seed,
    }
    run_cell(
        train_config,
        folder,
        domain.scored_set(images),
        evaluator,
        config.eval,
        row,
        on_step,
        trust_code,
        fresh=fresh,
    )


def _check_stage(config: SweepConfig, stage: str) -> None:
    if stage not in STAGES:
        raise ConfigError(f"stage must be one of {', '.join(STAGES)}, got {stage!r}")
    tuned = [m.label for m in config.methods if m.lrs]
    if stage == "train" and tuned:
        raise ConfigError(
            f"methods {', '.join(tuned)} tune their lr by scoring short runs, which the train stage "
            "cannot do: give them a fixed lr for a train-only sweep, or run the whole sweep"
        )


def _status(train_config: TrainConfig, folder: Path, mine: bool, stage: str) -> str:
    """What this process does with a cell before claiming it: 'skip', 'untrained' or 'train'
    (a cell scored at another learning rate than the one it would train at now is trained again)."""
    result = read_result(folder)
    if not mine or (result is not None and not _stale(result, train_config.lr)):
        return "skip"
    trained = finished_training(folder, train_config.steps) is not None
    if stage == "train" and trained:
        return "skip"
    if stage == "score" and not trained:
        return "untrained"
    return "train"


def _stale(result: dict[str, Any] | None, lr: float) -> bool:
    """Whether a cell's result was trained at another rate than `lr` (the recipe's rates changed
    since, and tuning now chooses differently): its row would mix two tunings."""
    return result is not None and result.get("lr") != f"{lr:g}"


def trained_cells(config: SweepConfig, out: str | Path) -> list[tuple]:
    """The cells of `config` whose training finished in `out` (scored or not), in grid order."""
    return [
        cell
        for cell in config.cells()
        if finished_training(Path(out) / "cells" / cell_name(*cell), cell_config(config, *cell).steps)
    ]


def _write_tables(out: Path, cells: list) -> list[dict[str, str]]:
    """results.csv, results.md and results.png from every finished cell's result.json."""
    rows = [r for cell in cells if (r := read_result(out / "cells" / cell_name(*cell))) is not None]
    write_results(out / "results.csv", rows)
    rows = read_results(out / "results.csv")  # as strings, the way every reader sees them
    if rows:
        write_text_atomically(out / "results.md", results_table(rows))
        plot_results(rows, out / "results.png")
        write_text_atomically(out / "yardstick.md", yardstick_table(rows))
        plot_fidelity_diversity(rows, out / "fidelity-diversity.png")
    return rows


def _write_samples(config: SweepConfig, out: Path, trust_code: bool) -> None:
    """samples-per-row-DOMAIN.png: per domain, 8 samples of each row's scored cell at the smallest
    training set and the first seed (the same latents for every row); a cell whose result was
    kept without its weights (to save space) is left out."""
    images, seed = min(config.images), min(config.seeds)
    for domain in config.domains:
        runs = {}
        for method in config.methods:
            folder = out / "cells" / cell_name(domain, method, images, seed)
            if read_result(folder) is None:
                continue
            if not RunPaths(folder).adapters.exists():  # a result kept without its weights
                log.info(
                    "%s: no %s to draw samples from; its row is left out",
                    folder,
                    RunPaths(folder).adapters.name,
                )
                continue
            runs[method.label] = load_run(folder, trust_code=trust_code)
        samples_per_row(runs, out / f"samples-per-row-{slug(domain.name)}.png")

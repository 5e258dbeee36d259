"""`sweep`: every cell of a grid (domains x methods x training-set sizes x seeds) fine-tuned and
scored, resumable and shardable: a finished cell leaves result.json, a cell interrupted mid-run
resumes from its checkpoint, and N processes split the grid with `shard=(i, N)`. The recipe's
data model is in `grid.py`; one cell in `cells.py`; learning-rate tuning in `tuning.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gan_adapters.errors import ConfigError
from gan_adapters.evaluation.cells import cell_config, cell_name, claim, read_result, run_cell
from gan_adapters.evaluation.evaluator import Evaluator
from gan_adapters.evaluation.grid import SweepConfig
from gan_adapters.evaluation.results import plot_results, read_results, results_table, write_results
from gan_adapters.evaluation.tuning import tune_learning_rates
from gan_adapters.files import inside, write_text_atomically
from gan_adapters.training.adapted import refuse_untrusted_code


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


def run_sweep(
    config: SweepConfig,
    out: str | Path,
    *,
    evaluator: Evaluator | None = None,
    on_cell: Callable[[int, int, str, str], None] | None = None,
    on_step=None,
    trust_code: bool = False,
    shard: tuple[int, int] = (0, 1),
) -> list[dict[str, str]]:
    """Tune learning rates where asked, then run every cell of this shard not yet finished;
    write the merged table and plot; return the rows finished so far (in grid order).

    `on_cell(index, total, name, status)` reports progress ('skip', 'train', 'done'; 'busy'
    when another process holds the cell). Cell folders are always inside `out/cells`.
    """
    refuse_untrusted_code(config.base.model, Path("the sweep recipe"), trust_code)
    out = Path(out)
    evaluator = evaluator or Evaluator()
    chosen = tune_learning_rates(config, out, evaluator, on_step=on_step, trust_code=trust_code)
    cells = config.cells()
    for index, cell in enumerate(cells):
        name, folder = cell_name(*cell), inside(out, "cells", cell_name(*cell))
        mine = index % shard[1] == shard[0]
        status = (
            "skip" if read_result(folder) is not None or not mine else "train" if claim(folder) else "busy"
        )
        if on_cell:
            on_cell(index, len(cells), name, status)
        if status != "train":
            continue
        domain, method, images, seed = cell
        lr = chosen.get((domain.name, method.label))
        train_config = cell_config(config, *cell, **({"lr": lr} if lr is not None else {}))
        row = {"cell": name, "domain": domain.name, "method": method.label, "kind": method.adapter.kind,
               "images": images, "seed": seed}  # fmt: skip
        run_cell(
            train_config, folder, domain.real or domain.data, evaluator, config.eval, row, on_step, trust_code
        )
        _write_tables(out, cells)
        if on_cell:
            on_cell(index, len(cells), name, "done")
    return _write_tables(out, cells)


def _write_tables(out: Path, cells: list) -> list[dict[str, str]]:
    """results.csv, results.md and results.png from every finished cell's result.json."""
    rows = [r for cell in cells if (r := read_result(out / "cells" / cell_name(*cell))) is not None]
    write_results(out / "results.csv", rows)
    rows = read_results(out / "results.csv")  # as strings, the way every reader sees them
    if rows:
        write_text_atomically(out / "results.md", results_table(rows))
        plot_results(rows, out / "results.png")
    return rows

"""The field's view of a sweep: the fidelity/diversity table computed as by hand, the plot's
panels, and the labelled sample grid."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from gan_adapters.evaluation.yardstick import plot_fidelity_diversity, summarise, with_pooled, yardstick_table
from gan_adapters.images import labelled_rows


def row(method: str, seed: int, **measures: str) -> dict[str, str]:
    base = dict(domain="mammals", images="10", method=method, seed=str(seed), recipe="adversarial")
    base |= dict(adapter_parameters="704", degenerate="", kid="0.1", precision="0.5", recall="0.2")
    base |= dict(coverage="0.3", intra_cluster_diversity="")
    return base | measures


ROWS = [
    row("ssa", 0, kid="0.100", precision="0.4"),
    row("ssa", 1, kid="0.120", precision="0.6", degenerate="copies"),
    row("full", 0, adapter_parameters="421000", recall="0.5", intra_cluster_diversity="0.25"),
]


def test_means_and_spreads_over_seeds_as_by_hand():
    table = summarise(ROWS)
    ssa = table[("mammals", 10, "ssa")]
    assert ssa["cells"] == 2 and ssa["degenerate"] == 1 and ssa["trained"] == 704
    assert ssa["kid"] == pytest.approx((110.0, (2 * 10.0**2) ** 0.5))  # x1000, sample std
    assert ssa["precision"] == pytest.approx((0.5, (2 * 0.1**2) ** 0.5))
    assert ssa["intra_cluster_diversity"] is None, "a measure no seed has is not invented"
    assert table[("mammals", 10, "full")]["recall"] == (0.5, 0.0)


def test_the_table_says_what_trained_each_measure_and_the_degenerate_seeds():
    text = yardstick_table(ROWS)
    assert "### mammals, 10 images" in text
    assert (
        "| ssa | 704 | 2 ⚠ 1 degenerate | 110.0 ± 14.1 | 0.50 ± 0.14 | 0.20 ± 0.00 | 0.30 ± 0.00 | - |"
        in text
    )
    assert (
        "| full | 421,000 | 1 | 100.0 ± 0.0 | 0.50 ± 0.00 | 0.50 ± 0.00 | 0.30 ± 0.00 | 0.25 ± 0.00 |" in text
    )


def test_every_domain_together_opens_the_table_when_several_ran_a_size():
    other = [r | {"domain": "food", "kid": "0.300"} for r in ROWS[:1]]
    text = yardstick_table(ROWS + other)
    pooled, mammals = text.index("### all 2 domains, 10 images"), text.index("### mammals, 10 images")
    assert pooled < mammals, "the overview first"
    assert "(mean ± std over domains and seeds)" in text and "### all 2 domains, 25" not in text
    ssa = summarise(with_pooled(ROWS + other))[("all 2 domains", 10, "ssa")]
    assert ssa["cells"] == 3 and ssa["kid"] == pytest.approx(
        (1000 * (0.1 + 0.12 + 0.3) / 3, 110.15141), rel=1e-5
    )
    assert ssa["degenerate"] == 1
    assert "### all" not in yardstick_table(ROWS), "one domain: nothing to pool"


def test_the_plot_has_a_row_of_panels_per_domain_and_size(tmp_path):
    one = plot_fidelity_diversity(ROWS, tmp_path / "one.png")
    two = plot_fidelity_diversity(ROWS + [r | {"images": "25"} for r in ROWS], tmp_path / "two.png")
    height_one, height_two = Image.open(one).height, Image.open(two).height
    assert height_two == pytest.approx(2 * height_one, rel=0.05)


def test_labelled_rows_put_each_row_of_images_beside_its_label():
    red = -torch.ones(3, 3, 4, 4)
    red[:, 0] = 1.0
    grid = labelled_rows({"a long label": red, "b": -torch.ones(3, 3, 4, 4)}, scale=2, padding=2)
    row_height = 2 * (4 + 2 + 2)
    assert grid.height == 2 * row_height
    pixels = grid.load()
    x = grid.width - 2 * (2 + 2)  # inside the last image of each row
    assert pixels[x, row_height // 2] == (255, 0, 0) and pixels[x, row_height + row_height // 2] == (0, 0, 0)

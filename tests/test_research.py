"""The research comparisons run end to end at a tiny scale and write their tables."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from cnn_jax.research import nielsen, why_cnn
from cnn_jax.research.nielsen_report import plot_curves, table_markdown
from cnn_jax.research.tables import mean_std, percent_mean_std

ROOT = Path(__file__).resolve().parents[1]
TINY = dataclasses.replace(
    nielsen.QUICK, dataset="synthetic", validation_size=50, train_size=100, test_size=60,
    epochs=1, expanded_epochs=None, ensemble_size=2, plots=False,  # figures: test_plots
)


def test_plurality_vote_hand_example():
    predictions = np.array([[1, 2, 3, 0], [1, 2, 0, 1], [2, 0, 3, 2]])
    # columns: {1,1,2} → 1; {2,2,0} → 2; {3,0,3} → 3; {0,1,2} tie → lowest class 0
    assert nielsen.plurality_vote(predictions, 4).tolist() == [1, 2, 3, 0]


def test_mean_std_and_formatting():
    assert mean_std([0.5, 0.7]) == pytest.approx((0.6, 0.1414213), rel=1e-5)
    assert percent_mean_std([0.9871]) == "98.71%"
    assert percent_mean_std([0.98, 0.99]) == "98.50% ± 0.71"
    assert percent_mean_std([]) == "–"


def test_quick_scale_gives_every_row_the_same_steps():
    steps = {row.number: nielsen.row_config(row, nielsen.QUICK, 0).num_epochs * (5 if row.expand
                                                                                else 1)
             for row in nielsen.ROWS}
    assert set(steps.values()) == {15}


def test_rows_follow_the_book():
    assert [row.book for row in nielsen.ROWS] == [
        0.9780, 0.9878, 0.9906, 0.9923, 0.9937, 0.9943, 0.9960, 0.9967]
    row7 = nielsen.ROWS[6]
    config = nielsen.row_config(row7, nielsen.BOOK, seed=0)
    assert (config.batch_size, config.learning_rate, config.num_epochs) == (10, 0.03, 40)
    assert config.expand and config.model.init == "nielsen" and config.validation_size == 10_000


def test_nielsen_table_tiny_with_ensemble(tmp_path):
    """Rows 7 and 8 (row 1 runs in test_readme, through the script)."""
    results = nielsen.run_table(tmp_path, TINY, rows=[7, 8])
    assert [r.row.number for r in results] == [7, 8]
    assert nielsen.row_config(results[0].row, nielsen.BOOK, 0).plots  # TINY turns them off
    assert not list(results[0].run_dirs[0].rglob("*.png"))
    for result in results:
        assert len(result.accuracies) == 1 and 0.0 <= result.accuracies[0] <= 1.0
    assert [p.name for p in results[1].run_dirs] == ["seed0", "seed1"]
    assert results[0].run_dirs[0] == results[1].run_dirs[0]  # row 8 reuses row 7's runs
    table = table_markdown(results, TINY, "cpu")
    assert "| 8 | ensemble of 2 (book: 5) networks of row 7" in table and "99.67%" in table
    assert plot_curves(results, tmp_path / "curves.png").stat().st_size > 0


def why_cnn_closed_forms(maps: int) -> tuple[list[int], list[int]]:
    """(first-layer parameters, all parameters) of the four why-CNNs networks, by hand: 784·30+30
    fully connected; 24·24 positions × (25+1) × maps unshared; (25+1) × maps shared; then 10
    logits on 30 units, 24·24·maps or (pooled) 12·12·maps values."""
    return ([784 * 30 + 30, 24 * 24 * 26 * maps, 26 * maps, 26 * maps],
            [23_550 + 30 * 10 + 10, 24 * 24 * 26 * maps + 24 * 24 * maps * 10 + 10,
             26 * maps + 24 * 24 * maps * 10 + 10, 26 * maps + 12 * 12 * maps * 10 + 10])


@pytest.mark.parametrize("maps", [2, 20])
def test_why_cnn_parameters_equal_closed_forms(maps):
    """Counted from the networks' initialised shapes (test_readme checks the table the script
    writes after training, at 2 maps, against the same formulas)."""
    import math

    import jax

    from cnn_jax.network import Network
    from cnn_jax.summary import shape_table

    first_layer, totals = [], []
    for variant in why_cnn.variants(maps=maps):
        network = Network.from_layers(variant.layers)
        first_layer.append(shape_table(network, (28, 28, 1))[0].params)
        shapes = jax.eval_shape(lambda net=network: net.init(jax.random.key(0), (28, 28, 1)))
        totals.append(sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(shapes)))
    assert (first_layer, totals) == why_cnn_closed_forms(maps)


def test_expanded_epochs_apply_to_the_expanded_rows_also_at_the_books_epochs():
    scale = dataclasses.replace(nielsen.BOOK, expanded_epochs=4)
    epochs = {row.number: nielsen.row_config(row, scale, 0).num_epochs for row in nielsen.ROWS}
    assert epochs == {1: 60, 2: 60, 3: 60, 4: 60, 5: 4, 6: 4, 7: 4, 8: 4}
    assert scale.label.endswith("book epochs (4 on expanded data)")

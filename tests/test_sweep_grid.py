"""Sweep grids: dotted keys, products and zips, trial ids, refused configs, and the presets'
expansion and size plans (no training)."""

from __future__ import annotations

import pytest
from conftest import SWEEPS, load_config_file, sweep_of

from cnn_jax.config import schema_defaults
from cnn_jax.presets import preset
from cnn_jax.sweep import SweepError, canonical_key, load_sweep, parse_key, set_value
from cnn_jax.sweep.plan import plan_all


def test_dotted_keys_with_indices_in_both_spellings():
    assert parse_key("model.layers[0].kernel") == ("model", "layers", 0, "kernel")
    assert parse_key("model.layers.0.kernel") == ("model", "layers", 0, "kernel")
    assert parse_key("a.b[2][3]") == ("a", "b", 2, 3)
    assert canonical_key("model.layers.2.window") == "model.layers[2].window"
    for bad in ("", "a..b", "[0].x", "a.b[x]", "a-b"):
        with pytest.raises(SweepError):
            parse_key(bad)


def test_a_key_into_a_preset_copies_its_layers_first():
    config = schema_defaults()
    config.model.preset = "nielsen_cp2_fc100_relu"
    set_value(config, "model.layers.2.kernel", 3)
    expected = preset("nielsen_cp2_fc100_relu")
    expected[2]["kernel"] = 3
    assert config.model.layers == expected
    set_value(config, "learning_rate", 0.5)
    assert config.learning_rate == 0.5
    for key in ("model.layers[9].kernel", "model.nope", "learning_rate.x"):
        with pytest.raises(SweepError):
            set_value(config, key, 1)


def test_product_with_seeds_outermost_and_the_first_key_slowest():
    axes = [{"product": {"model.layers.0.kernel": [3, 5],
                         "model.layers[1].pool_type": ["max", "avg"]}}]
    sweep = load_sweep(sweep_of(axes, seeds=[0, 1]))
    ids = [t.id for t in sweep.trials()]
    assert ids == ["k3-pmax-seed0", "k3-pavg-seed0", "k5-pmax-seed0", "k5-pavg-seed0",
                   "k3-pmax-seed1", "k3-pavg-seed1", "k5-pmax-seed1", "k5-pavg-seed1"]
    trial = sweep.trials()[6]
    assert trial.group == "k5-pmax" and trial.seed == 1 and trial.config.seed == 1
    assert trial.config.model.layers[0]["kernel"] == 5
    assert trial.values == {"model.layers[0].kernel": 5, "model.layers[1].pool_type": "max"}
    assert [d.name for d in sweep.dimensions] == ["k", "p"]


def test_zip_changes_its_keys_together_and_combines_with_a_product():
    config = sweep_of([{"zip": {"model.layers[0].kernel": [3, 5, 7],
                                "model.layers[0].stride": [1, 1, 2]}},
                       {"product": {"learning_rate": [0.1, 0.01]}}])
    trials = load_sweep(config).trials()
    assert len(trials) == 6
    pairs = {(t.config.model.layers[0]["kernel"], t.config.model.layers[0]["stride"])
             for t in trials}
    assert pairs == {(3, 1), (5, 1), (7, 2)}
    assert trials[0].id == "k3-s1-lr0.1-seed0"
    dims = load_sweep(config).dimensions
    assert [d.name for d in dims] == ["k+s", "lr"] and dims[0].point_label((7, 2)) == "k7,s2"


def test_ids_depend_on_values_so_an_extended_grid_keeps_the_old_trials():
    one = load_sweep(sweep_of([{"product": {"learning_rate": [0.1, 0.3], "l2": [0.0, 1.0]}}]))
    two = load_sweep(sweep_of([{"product": {"learning_rate": [1.0, 0.3, 0.1], "l2": [1.0, 0.0]}}],
                              seeds=[0, 1]))
    one, two = one.trials(), two.trials()
    ids_one = {t.id: t.values for t in one}
    ids_two = {t.id: t.values for t in two}
    assert "lr0.1-lam0-seed0" in ids_one
    assert len(ids_two) == 12 and all(ids_two[i] == values for i, values in ids_one.items())


def test_clashing_labels_get_the_layer_index_and_trials_do_not_share_configs():
    sweep = load_sweep(sweep_of([{"product": {"model.layers[0].features": [2, 3],
                                              "model.layers[2].features": [4]}}]))
    trials = sweep.trials()
    assert trials[0].id == "f0_2-f2_4-seed0"
    trials[0].config.model.layers[0]["features"] = 99
    assert trials[1].config.model.layers[0]["features"] == 3
    assert sweep.base.model.layers[0]["features"] == 4


@pytest.mark.parametrize("axes, message", [
    ([{"product": {"seed": [1, 2]}}], "config.seeds"),
    ([{"zip": {"learning_rate": [0.1, 0.2], "l2": [0.0]}}], "differ in length"),
    ([{"product": {"learning_rate": []}}], "non-empty"),
    ([{"grid": {"learning_rate": [0.1]}}], "product"),
    ([{"product": {"learning_rate": [0.1]}}, {"zip": {"learning_rate": [0.2]}}], "twice"),
    ([{"product": {"model.layers[0].colour": [1]}}], "no field 'colour'"),
    ([{"product": {"model.optimiser": ["sgd"]}}], "no such config key"),
])
def test_bad_sweep_configs_are_refused(axes, message):
    with pytest.raises(SweepError, match=message):
        load_sweep(sweep_of(axes))


@pytest.mark.parametrize("name, trials, invalid", [
    ("tiny", 8, 1), ("filter_size", 20, 0), ("stride", 15, 5), ("feature_maps", 25, 0),
    ("pooling", 40, 0), ("full_product", 360, 140), ("lr_seed", 20, 0),
])
def test_preset_sweeps_expand_and_plan(name, trials, invalid):
    sweep = load_sweep(load_config_file(SWEEPS / f"{name}.py"))
    plans = plan_all(sweep.trials())
    assert len(plans) == trials
    assert sum(not p.valid for p in plans) == invalid
    assert len({p.trial.id for p in plans}) == trials

"""The formulation grid's candidates follow what each network's layers can take."""

from __future__ import annotations

from conftest import run_script

from cnn_jax.bench.formulation_grid import candidates, network_layers, scan_candidates
from cnn_jax.network import Network


def plans_of(name: str):
    return Network.from_layers(network_layers(name)).plan((28, 28, 1))


def labels(formulations):
    return [(f.get("conv"), f.get("pool"), f["microbatches"]) for f in formulations]


def test_candidates_per_network():
    course = labels(candidates(10, plans_of("course_3maps")))
    assert ("offsets", "reshape", 1) in course and ("im2col", "lax", 1) in course
    assert (None, None, 2) in course and (None, None, 4) not in course  # 10 / 4 is no integer
    nielsen = labels(candidates(128, plans_of("nielsen_cp2_fc100_relu")))
    assert not any(conv == "offsets" for conv, _, _ in nielsen)  # 20 maps: outside the regime
    assert [m for conv, _, m in nielsen if conv is None] == [2, 4, 8]
    dense_only = labels(candidates(10, plans_of("nielsen_fc100")))
    assert dense_only == [("lax", "lax", 1), (None, None, 2)]
    assert len(network_layers("configs/mnist_fast.py")) == 6


def test_scan_candidates_pair_strategies_with_gradient_forms():
    scans = scan_candidates(candidates(10, plans_of("nielsen_cp2_fc100_relu")), 1)
    assert [(f["strategy"], f["conv"], f["pool"]) for f in scans] == [
        ("step", "lax", "reshape"), ("step", "canonical", "reshape"),
        ("scan", "lax", "reshape"), ("scan", "canonical", "reshape")]


def test_bad_flags_are_one_error_line():
    for flag in ("--batch_sizes=10,x", "--networks=alexnet"):
        done = run_script(flag, module="experiments.formulation_grid", timeout=120)
        assert done.returncode == 2 and done.stderr.startswith("error: "), done.stderr

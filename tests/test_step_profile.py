"""The step profile maps the traced XLA ops of the project's own step back to JAX operations."""

from __future__ import annotations

import pytest
from conftest import run_script

from cnn_jax.bench import step_profile
from cnn_jax.bench.worker import jax_experiment

pytestmark = pytest.mark.usefixtures("train_env")

HLO = "\n".join([
    '  %ynn_fusion.7 = f32[20,5,5,40]{3,2,1,0} fusion(%a, %b), kind=kCustom, calls=%f, '
    'metadata={op_name="jit(run)/transpose(jvp())/conv_general_dilated" stack_frame_id=41}',
    '  %dot.3 = f32[16,100]{1,0} dot(%c, %d), metadata={op_name="jit(run)/jvp()/dot_general"}',
    "  %param = f32[3] parameter(0)",
])


def test_hlo_metadata_names_the_operation_and_the_pass():
    ops = step_profile.hlo_ops(HLO)
    assert set(ops) == {"ynn_fusion.7", "dot.3"}
    assert ops["ynn_fusion.7"].jax_op == "conv_general_dilated" and ops["ynn_fusion.7"].backward
    assert ops["dot.3"].jax_op == "dot_general" and not ops["dot.3"].backward


def test_a_traced_step_is_mostly_convolutions_and_the_table_says_so():
    experiment = jax_experiment({"network": "nielsen_cp2_fc100_relu", "batch_size": 16,
                                 "steps": 8, "strategy": "step"})
    profile = step_profile.profile_experiment(experiment, steps=4)
    assert profile["steps"] == 4 and profile["wall_ms_per_step"] > 0
    operations = {key: share for key, _, share in profile["by_op"]}
    assert "forward conv_general_dilated" in operations
    assert "backward conv_general_dilated" in operations
    assert sum(operations.values()) == pytest.approx(1.0)
    text = step_profile.markdown("nielsen batch 16", profile)
    assert "| forward | conv_general_dilated |" in text


def test_the_script_refuses_an_unknown_network():
    result = run_script("--network=alexnet", module="experiments.profile_step")
    assert result.returncode == 2 and "alexnet" in result.stderr

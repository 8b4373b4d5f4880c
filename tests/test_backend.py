"""cnn_jax.backend: the XLA:CPU options, in a fresh process (XLA reads XLA_FLAGS once)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cnn_jax import backend

REPO = Path(__file__).resolve().parent.parent
OPTION = "xla_cpu_experimental_ynn_fusion_type"

# Compiles a convolution and reports XLA_FLAGS and the YNNPACK fusions in the compiled program.
PROBE = """
import json, os, re, sys
import cnn_jax, jax, jax.numpy as jnp
x, k = jnp.ones((8, 28, 28, 1)), jnp.ones((5, 5, 1, 20))
f = jax.jit(lambda x, k: jnp.tanh(jax.lax.conv_general_dilated(
    x, k, (1, 1), 'VALID', dimension_numbers=('NHWC', 'HWIO', 'NHWC'))).sum())
text = f.lower(x, k).compile().as_text()
print(json.dumps({"flags": os.environ.get("XLA_FLAGS", ""),
                  "ynn": sorted(set(re.findall(r"ynn_fusion", text)))}))
"""


def probe(**env: str) -> tuple[dict, str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", backend.OPT_OUT)}
    environ.update(env, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, "-c", PROBE], env=environ, capture_output=True,
                          text=True, timeout=120, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


measured = pytest.mark.skipif(
    not (backend._jaxlib_version() or "").startswith(backend.MEASURED_JAXLIB),
    reason="this jaxlib is not one the options were measured on")


@measured
def test_import_puts_the_option_in_effect():
    seen, stderr = probe()
    assert f"--{OPTION}=" in seen["flags"].split()
    assert seen["ynn"] == []  # no YNNPACK fusion left in the compiled convolution
    assert "Unsupported fusion type" not in stderr


def test_opt_out_leaves_xla_flags_alone():
    seen, _ = probe(**{backend.OPT_OUT: "0"})
    assert seen["flags"] == ""
    assert seen["ynn"] == ["ynn_fusion"]  # XLA's default: the convolution is a YNNPACK fusion


def test_a_users_own_value_is_kept():
    user = f"--{OPTION}=dot --xla_cpu_enable_fast_math=false"
    seen, _ = probe(XLA_FLAGS=user)
    assert seen["flags"] == user


@measured
def test_other_user_flags_are_kept_and_the_option_added(monkeypatch):
    monkeypatch.setattr(backend, "_backend_exists", lambda: False)  # as before any computation
    environ = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    added = backend.configure(environ)
    assert added == [f"--{OPTION}="]
    assert environ["XLA_FLAGS"] == f"--xla_force_host_platform_device_count=2 --{OPTION}="


def test_unmeasured_jaxlib_adds_nothing_and_says_why(monkeypatch):
    monkeypatch.setattr(backend, "_jaxlib_version", lambda: "9.9.9")
    monkeypatch.setattr(backend, "_said", set())
    environ: dict[str, str] = {}
    with pytest.warns(RuntimeWarning, match="not adding them"):
        assert backend.configure(environ) == []
    assert "XLA_FLAGS" not in environ


@measured
def test_a_backend_created_first_is_reported_once():
    code = ("import warnings, jax; jax.numpy.ones(1).block_until_ready()\n"
            "warnings.simplefilter('always')\n"
            "import cnn_jax; from cnn_jax import backend; backend.configure()\n")
    environ = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", backend.OPT_OUT)}
    environ.update(PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True,
                          text=True, timeout=120, check=True)
    assert done.stderr.count("backend was created before cnn_jax was imported") == 1


def test_provenance_records_the_flags_in_effect():
    from cnn_jax.provenance import flat, provenance

    record = provenance(device="cpu")
    assert record["xla_flags"] == os.environ.get("XLA_FLAGS", "")
    assert flat(record)["xla_flags"] == record["xla_flags"]
    if (backend._jaxlib_version() or "").startswith(backend.MEASURED_JAXLIB) and not os.environ.get(
            backend.OPT_OUT):
        assert f"--{OPTION}=" in record["xla_flags"].split()


# he_normal draws as lecun_normal does (a truncated normal), with another scale
@pytest.mark.parametrize("scheme", ["lecun_normal", "glorot_uniform", "nielsen"])
def test_parameters_compiled_to_run_once_are_those_of_xlas_default_compile(scheme):
    """`jit_run_once` (LLVM level 1 on CPU) draws every layer kind's parameters bit for bit as
    XLA's default optimisation level does (truncated normal, uniform and normal draws)."""
    import jax
    import numpy as np

    from cnn_jax.network import Network
    from cnn_jax.train.state import init_params

    network = Network.from_layers(
        [{"type": "conv", "features": 3, "kernel": 3}, {"type": "pool", "pool_type": "max"},
         {"type": "local", "features": 2, "kernel": 2},
         {"type": "dense", "features": 10, "activation": "identity"}], init_scheme=scheme)
    key, shape = jax.random.key(11), (12, 12, 1)
    fast = init_params(network, key, shape)
    default = jax.jit(lambda k: network.init(k, shape))(key)
    assert jax.tree_util.tree_structure(fast) == jax.tree_util.tree_structure(default)
    for ours, reference in zip(jax.tree_util.tree_leaves(fast), jax.tree_util.tree_leaves(default),
                               strict=True):
        np.testing.assert_array_equal(ours, reference)

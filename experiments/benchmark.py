"""Training/evaluation throughput, compile time and memory of the project against PyTorch.

    python -m experiments.benchmark [--device=cpu|gpu] [--out=BENCHMARKS.md]
        [--batch_sizes=10,128,1024] [--steps=N] [--repeats=R] [--quick]

PyTorch is optional (requirements-bench.txt); without it only the JAX side runs. The logic lives
in `cnn_jax.bench`; the table is printed and written between markers into --out.
"""

from __future__ import annotations

import os

from absl import flags

from cnn_jax import cli
from cnn_jax.markdown import write_section
from cnn_jax.presets import PRESETS

_DEVICE = flags.DEFINE_enum("device", "cpu", ["cpu", "gpu"], "where to run")
_OUT = flags.DEFINE_string("out", "", "Markdown file to write the table into ('' → print only)")
_BATCHES = flags.DEFINE_list("batch_sizes", ["10", "128", "1024"], "batch sizes")
_NETWORKS = flags.DEFINE_list("networks", ["course_3maps", "nielsen_cp2_fc100_relu"], "presets")
_STEPS = flags.DEFINE_integer("steps", 0, "training steps per repetition (0 → ~2,000 images)",
                              lower_bound=0)
_REPEATS = flags.DEFINE_integer("repeats", 5, "alternated repetitions per participant",
                                lower_bound=1)
_QUICK = flags.DEFINE_bool("quick", False, "3 repetitions, ~500 images each, no baseline")
_BASELINE = flags.DEFINE_bool("baseline", True, "also time the layers' own formulation")
_VMAP = flags.DEFINE_integer("vmap_models", 0, "models in the vmap measurement (gpu; 0 → 64)",
                             lower_bound=0)
_CACHE = flags.DEFINE_bool("compile_cache", True, "measure cold/warm persistent-cache compile")



def batch_sizes() -> tuple[int, ...]:
    """--batch_sizes as positive ints; a bad value is a usage error."""
    try:
        sizes = tuple(int(text) for text in _BATCHES.value)
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        cli.fail(f"--batch_sizes={','.join(_BATCHES.value)} is not allowed: positive integers, "
                 "e.g. --batch_sizes=10,128,1024")
    return sizes


def main(argv):
    if len(argv) > 1:
        cli.fail(f"unexpected arguments {argv[1:]}; options are flags such as --repeats=3")
    sizes = batch_sizes()
    unknown = [name for name in _NETWORKS.value if name not in PRESETS]
    if unknown:
        cli.fail(f"--networks={','.join(_NETWORKS.value)} is not allowed: {unknown[0]} is not "
                 f"a preset; choose from {sorted(PRESETS)}")
    if _DEVICE.value == "cpu":
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
    from cnn_jax.bench import BenchSettings, run_benchmark
    from cnn_jax.bench.report import markdown

    quick = _QUICK.value
    settings = BenchSettings(
        device=_DEVICE.value, networks=tuple(_NETWORKS.value),
        batch_sizes=sizes,
        steps=_STEPS.value or 0,
        repeats=3 if quick and _REPEATS.value == 5 else _REPEATS.value,
        baseline=_BASELINE.value and not quick, compile_cache=_CACHE.value,
        vmap_models=(_VMAP.value or 64) if _DEVICE.value == "gpu" else _VMAP.value,
    )
    if quick:
        settings.images, settings.eval_size = 500, 1000
    report = run_benchmark(settings)
    text = markdown(report)
    print(text)
    if _OUT.value:
        write_section(_OUT.value, text)


if __name__ == "__main__":
    cli.run(main)

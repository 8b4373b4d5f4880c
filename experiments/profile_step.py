"""Where the training step's time goes, by operation: a `jax.profiler` trace of the project's own
step (cnn_jax/bench/step_profile.py).

    python -m experiments.profile_step --network=nielsen_cp2_fc100_relu --batch_size=128
    python -m experiments.profile_step --config=configs/mnist_fast.py
    python -m experiments.profile_step --network=course_3maps --batch_size=10 \
        --formulation=lax,lax,1
"""

from absl import flags

from cnn_jax import cli
from cnn_jax.presets import PRESETS

NETWORK = flags.DEFINE_string("network", "nielsen_cp2_fc100_relu", "A preset (ignored with "
                              "--config).")
CONFIG = cli.define_config_file("config", None, "A training config: its network, batch and "
                                "formulation.")
BATCH = flags.DEFINE_integer("batch_size", 128, "Examples per step (ignored with --config).",
                             lower_bound=1)
STEPS = flags.DEFINE_integer("steps", 20, "Traced steps.", lower_bound=1)
FORMULATION = flags.DEFINE_list("formulation", [], "conv,pool,microbatches (default: auto).")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        cli.fail(f"unexpected arguments {argv[1:]}")
    from cnn_jax.bench import step_profile as profile
    from cnn_jax.bench.worker import jax_experiment

    # one jitted step per batch (the profile is of one step, also where 'auto' would scan)
    spec = {"batch_size": BATCH.value, "steps": STEPS.value + 2, "strategy": "step"}
    if CONFIG.value is not None:
        from cnn_jax.config import layer_dicts, validate_config

        validate_config(CONFIG.value)
        spec.update(layers=layer_dicts(CONFIG.value), batch_size=CONFIG.value.batch_size,
                    formulation=CONFIG.value.formulation.to_dict())
        title = f"config batch {CONFIG.value.batch_size}"
    else:
        if NETWORK.value not in PRESETS:
            cli.fail(f"--network={NETWORK.value} is not allowed: one of {sorted(PRESETS)}")
        spec["network"] = NETWORK.value
        title = f"{NETWORK.value} batch {BATCH.value}"
    if FORMULATION.value:
        if len(FORMULATION.value) != 3:
            cli.fail(f"--formulation={','.join(FORMULATION.value)} is not allowed: "
                     "conv,pool,microbatches, e.g. lax,reshape,8")
        conv, pool, micro = FORMULATION.value
        spec["formulation"] = {"conv": conv, "pool": pool, "microbatches": int(micro)}
    experiment = jax_experiment(spec)
    print(profile.markdown(title, profile.profile_experiment(experiment, STEPS.value)))


if __name__ == "__main__":
    cli.run(main)

"""Exports a trained run as a portable program: serialized `jax.export` (StableHLO) with the
parameters embedded, runnable with plain JAX and without cnn_jax.

    python -m experiments.export --workdir=runs/default            # runs/default/model.jax_export
    python -m experiments.export --workdir=runs/default --out=net.jax_export --checkpoint=latest

Load it anywhere (images float32 (N, 28, 28, 1) scaled as in training; any N):

    import jax
    program = jax.export.deserialize(bytearray(open("net.jax_export", "rb").read()))
    logits = program.call(images)

Beside the file, FILE.json records the input shape, pixel scale, classes, step and JAX version.
Exit codes: 0 written, 2 bad flags or run folder (one `error:` line).
"""

from __future__ import annotations

from absl import flags

from cnn_jax import cli

WORKDIR, CHECKPOINT = cli.define_run_flags()
OUT = flags.DEFINE_string("out", None, "File to write (default: WORKDIR/model.jax_export).")
PLATFORMS = flags.DEFINE_list("platforms", ["cpu"], "Platforms the program is lowered for "
                              "(cpu, cuda, rocm, tpu); one file can hold several.")


def main(argv: list[str]) -> None:
    cli.require_run_folder(argv, WORKDIR.value)
    from cnn_jax.export import export_run, read_facts

    checkpoint = CHECKPOINT.value
    try:
        path = export_run(WORKDIR.value, OUT.value, platforms=tuple(PLATFORMS.value),
                          checkpoint=int(checkpoint) if checkpoint.isdigit() else checkpoint)
    except OSError as error:
        cli.fail(f"cannot write {OUT.value or WORKDIR.value}: {error.strerror or error}")
    facts = read_facts(path)
    print(f"{path}: logits of images {tuple(facts['input']['shape'])} float32 "
          f"({facts['input']['scaling']}), step {facts['step']}, for {facts['platforms']}")


if __name__ == "__main__":
    cli.run(main)

"""Compares training runs side by side: config differences, metrics, learning curves, provenance.

    python -m experiments.compare runs/a runs/b
    python -m experiments.compare sweeps/tiny/trials/k5-s1-pmax-seed0 \
        sweeps/tiny/trials/k9-s1-pmax-seed0 --out=compare/k5_k9

Prints a Markdown comparison (cnn_jax/compare.py); with --out also writes OUT/compare.md and the
overlaid learning curves OUT/curves.png. Exit codes: 0 done, 2 fewer than two runs or a folder
that is not a run (one `error:` line).
"""

from __future__ import annotations

from absl import flags

from cnn_jax import cli

OUT = flags.DEFINE_string("out", None, "Folder for compare.md and curves.png (optional).")


def main(argv: list[str]) -> None:
    from cnn_jax.compare import compare_runs

    try:
        text = compare_runs(argv[1:], out=OUT.value)
    except OSError as error:
        cli.fail(f"cannot write {OUT.value}: {error.strerror or error}")
    print(text, end="")
    if OUT.value:
        print(f"\nwritten: {OUT.value}/compare.md, {OUT.value}/curves.png")


if __name__ == "__main__":
    cli.run(main)

"""Time to 99% test accuracy on MNIST, compile and data included, against what users run instead.

    python -m experiments.time_to_accuracy                       # 5 participants × 3 seeds
    python -m experiments.time_to_accuracy --participants=project-fast,pytorch-fast --seeds=0,1,2
    python -m experiments.time_to_accuracy --out=BENCHMARKS.md   # the table into BENCHMARKS.md

Participants (cnn_jax/bench/time_to_accuracy.py): project-fast (configs/mnist_fast.py),
pytorch-fast (the same in PyTorch), project-nielsen and pytorch-nielsen (the book's row 4),
pytorch-examples (pytorch/examples mnist/main.py's network and defaults). Each run is a fresh
process; runs alternate seed by seed. PyTorch is a benchmark extra (requirements-bench.txt).
"""

from absl import flags

from cnn_jax import cli
from cnn_jax.bench import time_to_accuracy as tta
from cnn_jax.markdown import write_section

PARTICIPANTS = flags.DEFINE_list("participants", list(tta.PARTICIPANTS), "Who runs.")
SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds (each participant, each seed).")
TARGET = flags.DEFINE_float("target", 0.99, "Target test accuracy.", lower_bound=0.0,
                            upper_bound=1.0)
EVERY = flags.DEFINE_integer("eval_every", 25_000, "Training images between evaluations of "
                             "the 10,000 test images.", lower_bound=1)
DEVICE = flags.DEFINE_enum("device", "cpu", ["cpu", "gpu"], "Where to run.")
THREADS = flags.DEFINE_integer("torch_threads", 0, "PyTorch threads (0: its default).",
                               lower_bound=0)
OUT = flags.DEFINE_string("out", "", "Markdown file to write the table into ('' → print only).")
TRAIN_IMAGES = flags.DEFINE_integer("train_images", 0, "Smoke runs: train on that many images "
                                    "(0: all 50,000).", lower_bound=0)
MAX_EPOCHS = flags.DEFINE_integer("max_epochs", 0, "Smoke runs: at most that many epochs "
                                  "(0: each participant's own).", lower_bound=0)
BEGIN, END = "<!-- time-to-accuracy:begin -->", "<!-- time-to-accuracy:end -->"


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        cli.fail(f"unexpected arguments {argv[1:]}; options are flags such as --seeds=0,1")
    unknown = [name for name in PARTICIPANTS.value if name not in tta.PARTICIPANTS]
    if unknown or not PARTICIPANTS.value:
        cli.fail(f"--participants={','.join(PARTICIPANTS.value)} is not allowed: choose from "
                 f"{list(tta.PARTICIPANTS)}")
    try:
        seeds = tuple(int(seed) for seed in SEEDS.value)
    except ValueError:
        seeds = ()
    if not seeds or min(seeds) < 0:
        cli.fail(f"--seeds={','.join(SEEDS.value)} is not allowed: integers >= 0, e.g. 0,1,2")
    if any(tta.PARTICIPANTS[name].framework == "torch" for name in PARTICIPANTS.value):
        from cnn_jax.bench.runner import torch_available

        if not torch_available():
            cli.fail("PyTorch is not installed: pip install -r requirements-bench.txt, or "
                     "--participants=project-fast,project-nielsen")
    settings = tta.Settings(participants=tuple(PARTICIPANTS.value), seeds=seeds,
                            target=TARGET.value, eval_every=EVERY.value, device=DEVICE.value,
                            torch_threads=THREADS.value, train_images=TRAIN_IMAGES.value,
                            max_epochs=MAX_EPOCHS.value)
    report = tta.run(settings)
    text = tta.markdown(report)
    print(text)
    if OUT.value:
        write_section(OUT.value, text, BEGIN, END)


if __name__ == "__main__":
    cli.run(main)

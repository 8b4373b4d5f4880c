"""Builds the explorer: one offline web page of a sweep, a training run or a config.

    python -m experiments.explore --workdir=sweeps/filter     # sweeps/filter/explorer/index.html
    python -m experiments.explore --run=runs/default          # runs/default/explorer/index.html
    python -m experiments.explore --config=configs/course_3maps.py    # geometry only
    python -m experiments.explore --workdir=sweeps/filter --serve     # and serve it locally

Open index.html in any browser (no server, no network needed). On the page: a control per swept
axis (per-layer geometry controls for --config), the network to scale, the shape table with the
size formula, the receptive field of one unit on a test digit, the measured accuracy (mean and
95% CI over seeds), costs and learning curve, kernels, feature maps, the effective receptive
field, and every trial's accuracy against cost. Exit codes: 0 written, 2 bad flags or folder.
"""

import sys
import time
from pathlib import Path

from absl import flags

from cnn_jax import cli

WORKDIR = flags.DEFINE_string("workdir", None, "A sweep folder (sweep.json, trials/).")
RUN = flags.DEFINE_string("run", None, "A training run folder (config.json, checkpoints/).")
CONFIG = cli.define_config_file("config", None, "A training config: geometry only.")
OUT = flags.DEFINE_string(
    "out", None, "Folder of index.html (default: WORKDIR/explorer, RUN/explorer, or "
    "explorer/<config name> for --config).")
VIEWS = flags.DEFINE_bool(
    "views", True, "Load checkpoints for kernels, feature maps and effective receptive fields.")
SERVE = flags.DEFINE_bool("serve", False, "Then serve the page on http://127.0.0.1:PORT/.")
PORT = flags.DEFINE_integer("port", 8000, "Port of --serve.", lower_bound=0, upper_bound=65535)


def collect():
    """(data, default output folder) for the one source given."""
    from cnn_jax.explorer import config_data, run_data, sweep_data

    given = [name for name, value in (("--workdir", WORKDIR.value), ("--run", RUN.value),
                                      ("--config", CONFIG.value)) if value]
    if len(given) != 1:
        cli.fail("give exactly one of --workdir=SWEEP, --run=RUN or --config=FILE"
                 + (f" (got {', '.join(given)})" if given else ""))
    if WORKDIR.value:
        folder = Path(WORKDIR.value)
        if not (folder / "sweep.json").is_file():
            cli.fail(f"--workdir={folder}: not a sweep folder (no sweep.json); a single run's "
                     "folder goes with --run")
        return sweep_data(folder, views=VIEWS.value), folder / "explorer"
    if RUN.value:
        return run_data(RUN.value, views=VIEWS.value), Path(RUN.value) / "explorer"
    config = CONFIG.value
    if "axes" in config and "base" in config:  # a sweep config: its base network
        config = config.base
    from ml_collections import config_flags

    name = Path(config_flags.get_config_filename(flags.FLAGS["config"])).stem
    return config_data(config), Path("explorer") / name


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        cli.fail(f"unexpected arguments {argv[1:]}; options are flags such as --workdir=...")
    from cnn_jax.compilation_cache import enable_compilation_cache
    from cnn_jax.explorer import serve, write_page

    start = time.perf_counter()
    cache = Path(WORKDIR.value) / "jax_cache" if WORKDIR.value else None
    enable_compilation_cache(str(cache) if cache and cache.is_dir() else None)
    data, folder = collect()
    path = write_page(data, OUT.value or folder)
    size = path.stat().st_size
    print(f"{path}: {len(data['configs'])} configurations, {size / 1e6:.2f} MB, built in "
          f"{time.perf_counter() - start:.1f} s")
    if SERVE.value:
        serve(path.parent, PORT.value)
    sys.exit(0)


if __name__ == "__main__":
    cli.run(main)

"""Where a result came from: package versions, the git commit (and whether the tree had
uncommitted changes), the machine and device, XLA's options and the command line. Written into
every results.json, every sweep row and every benchmark report."""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "tensorflow-datasets", "numpy",
            "ml_collections")
REPOSITORY = Path(__file__).resolve().parent.parent


@functools.cache
def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_state(folder: Path = REPOSITORY) -> dict[str, Any] | None:
    """{'commit', 'dirty'} of the checkout cnn_jax runs from; None outside a git checkout (an
    installed copy) or without git. Dirty: tracked files differ from the commit."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}


def provenance(device: str | None = None) -> dict[str, Any]:
    """The record of this process: versions, git state, device, XLA_FLAGS, command line, Python,
    host."""
    if device is None:
        device = describe_devices()
    from cnn_jax.backend import effective_xla_flags

    return {"packages": package_versions(), "git": git_state(), "device": device,
            "xla_flags": effective_xla_flags(),
            "command": shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else "",
            "python": platform.python_version(), "host": platform.node()}


def flat(record: dict[str, Any] | None) -> dict[str, Any]:
    """The columns a results table shows of a provenance record."""
    record = record or {}
    git = record.get("git") or {}
    packages = record.get("packages") or {}
    return {"git_commit": git.get("commit"), "git_dirty": git.get("dirty"),
            "jax_version": packages.get("jax"), "device": record.get("device"),
            "xla_flags": record.get("xla_flags"),
            "command": record.get("command")}


def cpu_model() -> str:
    """The processor's name, e.g. 'AMD EPYC 7B13' (from /proc/cpuinfo where there is one)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def describe_devices() -> str:
    """JAX's local devices: '1 × CPU (AMD EPYC 7B13, 2 cores)', '1 × NVIDIA H100 80GB HBM3'."""
    import jax

    devices = jax.local_devices()
    if devices[0].platform == "cpu":
        return f"{len(devices)} × CPU ({cpu_model()}, {os.cpu_count()} cores)"
    return f"{len(devices)} × {devices[0].device_kind}"


def machine_info(device: str = "cpu") -> dict[str, Any]:
    """The benchmark's machine: CPU model and cores, Python, JAX/jaxlib/PyTorch versions and
    threads, the accelerator (device != 'cpu') and XLA_FLAGS."""
    import jax

    info: dict[str, Any] = {
        "cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
        "jax": jax.__version__, "platform": platform.platform(),
    }
    try:
        import jaxlib

        info["jaxlib"] = jaxlib.__version__
    except ImportError:
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        info["torch"] = None
    if device != "cpu":
        devices = jax.devices()
        info["accelerator"] = f"{len(devices)} × {devices[0].device_kind}"
    info["xla_flags"] = os.environ.get("XLA_FLAGS", "")
    return info

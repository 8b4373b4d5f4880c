"""Using a trained model: load a run's checkpoint in one call, predict labels of images.

    model = load_run("runs/default")                 # the best-validation checkpoint
    labels, probabilities = model.predict(images)    # images float32 (N, H, W, C), scaled as
                                                     # in training (pixel / model.pixel_scale)
    image = read_image("digit.png", model)           # (H, W, C), converted and checked

The network and config come from workdir/config.json; the image shape, classes and pixel scale
from the data set registry, or, for data sets whose facts depend on their files ('idx', an
unlisted 'tfds:<name>'), from the shape table that starts workdir/metrics.jsonl.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np

from cnn_jax.config import build_network, with_defaults
from cnn_jax.data.registry import dataset_info
from cnn_jax.errors import DataError, RunError, ShapeError
from cnn_jax.network import Network, Params
from cnn_jax.train.checkpoints import Checkpointer, read_error
from cnn_jax.train.logs import read_jsonl
from cnn_jax.train.state import create_state
from cnn_jax.train.workdir import LOCK_NAME

CHUNK_SIZE = 1000  # images per compiled call
GREY_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601 luma, as PIL's "L"
IMAGE_SUFFIXES = (".png", ".npy")


@functools.partial(jax.jit, static_argnums=0)
def _forward(network: Network, params: Params, images: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(logits, softmax probabilities), both (N, classes), of images (N, H, W, C)."""
    logits = network.apply(params, images)
    return logits, jax.nn.softmax(logits, axis=-1)


@dataclasses.dataclass(frozen=True)
class TrainedModel:
    """A run's network with the parameters of one checkpoint.

    image_shape is (H, W, C); images given to the methods are float32 (N, H, W, C) scaled as in
    training (uint8 pixels divided by `pixel_scale`). Each method compiles one program per
    chunk size and evaluates chunks of at most `batch_size` images (the last one padded).
    """

    network: Network
    params: Params
    config: ml_collections.ConfigDict
    step: int
    image_shape: tuple[int, int, int]
    num_classes: int
    pixel_scale: float
    workdir: Path | None = None

    def logits(self, images: Any, *, batch_size: int = CHUNK_SIZE) -> np.ndarray:
        """Logits (N, classes) of images (N, H, W, C)."""
        return self._outputs(images, batch_size)[0]

    def probabilities(self, images: Any, *, batch_size: int = CHUNK_SIZE) -> np.ndarray:
        """Softmax probabilities (N, classes) of images (N, H, W, C)."""
        return self._outputs(images, batch_size)[1]

    def predict(self, images: Any, *, batch_size: int = CHUNK_SIZE
                ) -> tuple[np.ndarray, np.ndarray]:
        """(labels (N,) int32, probabilities (N, classes)) of images (N, H, W, C)."""
        probabilities = self._outputs(images, batch_size)[1]
        return np.argmax(probabilities, axis=-1).astype(np.int32), probabilities

    def _outputs(self, images: Any, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        images = np.asarray(images, np.float32)
        if images.ndim != 4 or images.shape[1:] != self.image_shape:
            raise ShapeError(f"images of shape {images.shape}; the model takes "
                             f"(N, {', '.join(map(str, self.image_shape))})")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        size = len(images)
        if size == 0:
            empty = np.zeros((0, self.num_classes), np.float32)
            return empty, empty.copy()
        chunk = min(batch_size, size)
        logits, probabilities = [], []
        for start in range(0, size, chunk):
            part = images[start:start + chunk]
            padding = chunk - len(part)
            if padding:
                part = np.concatenate([part, np.zeros((padding, *self.image_shape), np.float32)])
            outputs = jax.device_get(_forward(self.network, self.params, part))
            logits.append(outputs[0][:chunk - padding])
            probabilities.append(outputs[1][:chunk - padding])
        return np.concatenate(logits), np.concatenate(probabilities)


def load_run(workdir: str | Path, *, checkpoint: str | int = "best") -> TrainedModel:
    """The model of the run in `workdir` at one of its checkpoints.

    Args:
      workdir: a training run's folder (config.json, checkpoints/, metrics.jsonl).
      checkpoint: "best" (the best-validation checkpoint, `Checkpointer.best_step`), "latest",
        or a step number.
    Raises:
      RunError: not a run folder, no checkpoint, a step it does not hold, a checkpoint that cannot
        be read, or a run still training in that folder.
      ConfigError: a config.json this version of cnn_jax does not understand.
    """
    workdir = Path(workdir)
    config = read_config(workdir)
    network = build_network(config)
    image_shape, num_classes, pixel_scale = run_facts(workdir, config)
    wanted = _checkpoint_request(checkpoint)
    if not (workdir / "checkpoints").is_dir():
        raise RunError(f"{workdir} holds no checkpoint (no checkpoints/ folder): the run saved "
                       "none yet")
    template = create_state(network, config, image_shape, steps_per_epoch=1)
    with _not_training(workdir):
        checkpointer = Checkpointer(workdir, keep=config.checkpoint_keep)
        try:
            steps = checkpointer.all_steps()
            if not steps:
                raise RunError(f"{workdir} holds no checkpoint (checkpoints/ is empty)")
            step = {"best": checkpointer.best_step, "latest": checkpointer.latest_step}.get(
                wanted, lambda: wanted)()
            if step not in steps:
                raise RunError(f"{workdir} holds no checkpoint of step {step}; its checkpoints "
                               f"are at steps {', '.join(map(str, steps))}")
            step, state = _restore(checkpointer, template, step, steps,
                                   fall_back=isinstance(wanted, str))
        finally:
            checkpointer.close()
    return TrainedModel(
        network=network, params=jax.device_put(state.params), config=config, step=int(step),
        image_shape=image_shape, num_classes=num_classes, pixel_scale=pixel_scale,
        workdir=workdir)


def _restore(checkpointer: Checkpointer, template: Any, step: int, steps: list[int], *,
             fall_back: bool) -> tuple[int, Any]:
    """(step, state) of checkpoint `step`; if it cannot be read and `fall_back` (a "best" or
    "latest" request), the newest other checkpoint that can, after a one-line warning on
    stderr. Reads only: a corrupt folder is left where it is (a resumed run moves it aside)."""
    try:
        return step, checkpointer.restore(template, step)
    except Exception as error:  # noqa: BLE001 - Orbax/TensorStore raise many kinds
        failure = f"{checkpointer.directory / str(step)} cannot be read ({read_error(error)})"
    if fall_back:
        for other in sorted((s for s in steps if s != step), reverse=True):
            try:
                state = checkpointer.restore(template, other)
            except Exception:  # noqa: BLE001, S112 - try the next older one
                continue
            print(f"warning: {failure}; using the newest intact checkpoint, step {other}",
                  file=sys.stderr)
            return other, state
    raise RunError(failure)


def read_config(workdir: str | Path) -> ml_collections.ConfigDict:
    """workdir/config.json on top of the defaults; `RunError` if `workdir` is not a run folder."""
    workdir = Path(workdir)
    if not workdir.is_dir():
        raise RunError(f"{workdir} is not a run folder: " + (
            "it does not exist" if not workdir.exists() else "not a directory"))
    path = workdir / "config.json"
    if not path.is_file():
        raise RunError(f"{workdir} is not a run folder (no config.json): pass the --workdir of "
                       "a training run")
    try:
        saved = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunError(f"{path} cannot be read: {error}") from None
    if not isinstance(saved, dict):
        raise RunError(f"{path} does not hold a config (a JSON object)")
    return with_defaults(saved)


def run_facts(workdir: str | Path, config: ml_collections.ConfigDict
              ) -> tuple[tuple[int, int, int], int, float]:
    """(image shape (H, W, C), classes, pixel scale) of the run: the registry's facts of its data
    set, else the shape table of workdir/metrics.jsonl (its first record)."""
    info = dataset_info(config.dataset)
    shape = None if info is None else info.image_shape
    classes = None if info is None else info.classes
    if shape is None or classes is None:
        rows = _shape_rows(Path(workdir))
        try:
            shape = shape or tuple(int(d) for d in rows[0]["input_shape"])
            classes = classes or int(rows[-1]["output_shape"][-1])
        except (KeyError, IndexError, TypeError, ValueError):
            raise RunError(f"{Path(workdir) / 'metrics.jsonl'}: its shape table has no "
                           "input_shape/output_shape") from None
    pixel_scale = 255.0 if info is None else float(info.pixel_scale)
    return tuple(shape), int(classes), pixel_scale


def _shape_rows(workdir: Path) -> list[dict[str, Any]]:
    records = read_jsonl(workdir / "metrics.jsonl")
    if not records or records[0].get("kind") != "shapes" or not records[0].get("table"):
        raise RunError(f"{workdir}: the image shape of data set config.dataset is known only from "
                       "the shape table that starts metrics.jsonl, and there is none")
    return records[0]["table"]


def _checkpoint_request(checkpoint: str | int) -> str | int:
    if isinstance(checkpoint, str) and checkpoint.strip().isdigit():
        return int(checkpoint)
    if checkpoint in ("best", "latest") or (
            isinstance(checkpoint, int | np.integer) and not isinstance(checkpoint, bool)
            and checkpoint >= 0):
        return checkpoint if isinstance(checkpoint, str) else int(checkpoint)
    raise RunError(f"checkpoint must be 'best', 'latest' or a step number, got {checkpoint!r}")


@contextlib.contextmanager
def _not_training(workdir: Path) -> Iterator[None]:
    """Holds a shared lock on workdir/.lock (a training run holds it exclusively), without
    writing: opening Orbax's manager removes unfinished (temporary) checkpoints, which would be
    the one a running training is saving; and no training starts while it is held."""
    try:
        file = open(workdir / LOCK_NAME)  # closed below
    except OSError:
        yield  # no lock file: no training ever ran here, or the folder is read-only
        return
    try:
        try:
            fcntl.flock(file, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = file.read().strip() or "unknown"
            raise RunError(f"{workdir} is in use by a training run (pid {owner}); evaluate it "
                           "once it has finished or stopped") from None
        yield
    finally:
        file.close()


def read_image(path: str | Path, model: TrainedModel) -> np.ndarray:
    """The image in a PNG or NPY file as the model takes it: float32 (H, W, C).

    Grey (H, W) or (H, W, 1), grey+alpha, RGB or RGBA; alpha is dropped, RGB becomes grey
    (ITU-R 601 luma) for a 1-channel model and grey is repeated for a 3-channel one. Values:
    uint16 (16-bit PNG) is divided by 65535; floats in [0, 1] are taken as they are; other values
    0..255 (uint8, or floats above 1) are pixels, divided by `model.pixel_scale`. A size other
    than the model's is a `DataError` (images are never resized).
    """
    path = Path(path)
    return _image_from_array(path, _read_array(path), model)


def read_images(path: str | Path, model: TrainedModel) -> tuple[list[str], np.ndarray]:
    """(names, images (N, H, W, C) float32) of a PNG or NPY image, an NPY stack of images
    ((N, H, W) or (N, H, W, C) at the model's size; names `file.npy[i]`), or a folder of such
    files (its .png and .npy files, sorted by name). Each image is read as `read_image` reads
    one; a `DataError` names the file (and the index) of the first bad one."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir()
                       if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataError(f"{path}: a folder without .png or .npy files")
        parts = [read_images(file, model) for file in files]
        return [name for names, _ in parts for name in names], np.concatenate(
            [images for _, images in parts])
    array = _read_array(path)
    height, width, _ = model.image_shape
    if array.ndim == 4 or (array.ndim == 3 and array.shape[1:] == (height, width)):
        if len(array) == 0:
            raise DataError(f"{path}: an empty stack of images")
        names = [f"{path}[{index}]" for index in range(len(array))]
        return names, np.stack([_image_from_array(Path(name), item, model)
                                for name, item in zip(names, array, strict=True)])
    return [str(path)], _image_from_array(path, array, model)[None]


def inverted_hint(names: list[str], images: np.ndarray) -> str:
    """A one-line hint if images look dark-on-light (mean value above half the range), unlike
    the light-on-dark digits of MNIST the models are trained on; '' otherwise."""
    means = images.reshape(len(images), -1).mean(axis=1) if len(images) else np.zeros(0)
    light = [name for name, mean in zip(names, means, strict=True) if mean > 0.5]
    if not light:
        return ""
    shown = ", ".join(light[:3]) + (f" and {len(light) - 3} more" if len(light) > 3 else "")
    return (f"hint: {shown} look{'s' if len(light) == 1 else ''} inverted (dark digit on a light "
            f"background, mean value above half the range); the model was trained on light "
            f"digits on black: invert them (255 − pixels) for a meaningful prediction")


def _image_from_array(path: Path, array: np.ndarray, model: TrainedModel) -> np.ndarray:
    stored = array.shape
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 2, 3, 4):
        raise DataError(f"{path}: an array of shape {stored} is not an image (H, W) or "
                        f"(H, W, C) with C in 1..4; the model takes "
                        f"{_shape_text(model.image_shape)} images")
    pixels = _scaled(path, array, model.pixel_scale)
    if pixels.shape[-1] in (2, 4):
        pixels = pixels[..., :-1]  # alpha
    height, width, channels = model.image_shape
    if pixels.shape[:2] != (height, width):
        raise DataError(f"{path}: image of shape {_shape_text(stored)}, the model takes "
                        f"{_shape_text(model.image_shape)} images (resize it first: images are "
                        "not resized here)")
    if pixels.shape[-1] == 3 and channels == 1:
        pixels = pixels @ GREY_WEIGHTS[:, None]
    elif pixels.shape[-1] == 1 and channels == 3:
        pixels = np.repeat(pixels, 3, axis=-1)
    if pixels.shape[-1] != channels:
        raise DataError(f"{path}: image of shape {_shape_text(stored)}, the model takes "
                        f"{_shape_text(model.image_shape)} images")
    return np.ascontiguousarray(pixels, np.float32)


def _read_array(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise DataError(f"{path}: not a PNG or NPY file (the name must end in .png or .npy)")
    try:
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        return _read_png(path)
    except (OSError, ValueError, SyntaxError) as error:  # PIL raises SyntaxError for some files
        raise DataError(f"{path} cannot be read as {suffix[1:].upper()}: {error}") from None


def _read_png(path: Path) -> np.ndarray:
    """The PNG's stored values (uint8/uint16 through PIL; floats in [0, 1] through matplotlib
    when PIL is not installed)."""
    try:
        from PIL import Image
    except ImportError:
        import matplotlib.image

        return np.asarray(matplotlib.image.imread(path, format="png"))
    with Image.open(path) as image:
        image.load()
        if image.format != "PNG":
            raise ValueError(f"a {image.format} image")
        if image.mode == "P":
            image = image.convert("RGBA")
        elif image.mode == "1":
            image = image.convert("L")
        return np.asarray(image)


def _scaled(path: Path, array: np.ndarray, pixel_scale: float) -> np.ndarray:
    """Values as in training: [0, 1) for pixels 0..255 divided by `pixel_scale`."""
    if array.dtype == bool:
        return array.astype(np.float32)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise DataError(f"{path}: values of dtype {array.dtype} are not pixels")
    values = array.astype(np.float64)
    if values.size == 0 or not np.all(np.isfinite(values)):
        raise DataError(f"{path}: the image is empty or holds NaN/inf")
    low, high = float(values.min()), float(values.max())
    if array.dtype == np.uint16:
        return (values / 65535).astype(np.float32)
    if np.issubdtype(array.dtype, np.floating) and low >= 0 and high <= 1:
        return values.astype(np.float32)
    if low >= 0 and high <= 255:
        return (values / pixel_scale).astype(np.float32)
    raise DataError(f"{path}: values in [{low:g}, {high:g}]; expected pixels 0..255 or floats in "
                    "[0, 1]")


def _shape_text(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape))


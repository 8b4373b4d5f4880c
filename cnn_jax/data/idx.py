"""Reading and writing IDX files, the format of MNIST, Fashion-MNIST and KMNIST.

An IDX file is a 4-byte magic number ``0x00 0x00 <dtype code> <ndim>``, then ``ndim`` big-endian
uint32 dimensions, then the data in C order, big-endian. Files whose name ends with ``.gz`` are
gzip-compressed.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib

import numpy as np

from cnn_jax.errors import DataError

# IDX type code -> big-endian numpy dtype.
_CODE_TO_DTYPE: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_KIND_TO_CODE: dict[tuple[str, int], int] = {
    (dt.kind, dt.itemsize): code for code, dt in _CODE_TO_DTYPE.items()
}


def _read_bytes(path: str) -> bytes:
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                return f.read()
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError as e:
        raise DataError(f"{path}: file not found") from e
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise DataError(f"{path}: corrupt or truncated gzip data ({e})") from e


def _parse_header(path: str, raw: bytes) -> tuple[np.dtype, tuple[int, ...], int]:
    """Validates the header at the start of ``raw``: returns (dtype, shape, header size)."""
    if len(raw) < 4:
        raise DataError(f"{path}: too short for an IDX header ({len(raw)} bytes)")
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in _CODE_TO_DTYPE:
        raise DataError(
            f"{path}: wrong magic number 0x{raw[:4].hex()}; an IDX file starts with 00 00, "
            f"then a type code in {sorted(hex(c) for c in _CODE_TO_DTYPE)}, then ndim"
        )
    ndim = raw[3]
    if ndim == 0:
        raise DataError(f"{path}: wrong dimensions: the header declares 0 dimensions")
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise DataError(f"{path}: truncated header ({len(raw)} < {header_size} bytes)")
    shape = struct.unpack(f">{ndim}I", raw[4:header_size])
    return _CODE_TO_DTYPE[raw[2]], shape, header_size


def _check_ndim(path: str, shape: tuple[int, ...], expected_ndim: int | None) -> None:
    if expected_ndim is not None and len(shape) != expected_ndim:
        raise DataError(
            f"{path}: wrong dimensions: expected {expected_ndim}, the header declares "
            f"{len(shape)} {shape}"
        )


def read_idx_shape(path: str | os.PathLike, *, expected_ndim: int | None = None) -> tuple[int, ...]:
    """Reads only the header of an IDX file: its shape, e.g. ``(N, H, W)``."""
    path = os.fspath(path)
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            head = f.read(4)
            head += f.read(4 * head[3]) if len(head) == 4 else b""
    except FileNotFoundError as e:
        raise DataError(f"{path}: file not found") from e
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise DataError(f"{path}: corrupt or truncated gzip data ({e})") from e
    _, shape, _ = _parse_header(path, head)
    _check_ndim(path, shape, expected_ndim)
    return shape


def read_idx(path: str | os.PathLike, *, expected_ndim: int | None = None) -> np.ndarray:
    """Reads an IDX file (plain or ``.gz``) into a native-endian numpy array.

    Args:
      path: the file.
      expected_ndim: if given, the number of dimensions the file must have (3 for images
        ``(N, H, W)``, 1 for labels ``(N,)``).

    Returns:
      An array with the shape stored in the header, e.g. uint8 ``(N, H, W)``.

    Raises:
      DataError: the file is missing, has a wrong magic number, unexpected dimensions, or its data
        size does not match its header (truncated or trailing bytes).
    """
    path = os.fspath(path)
    raw = _read_bytes(path)
    dtype, shape, header_size = _parse_header(path, raw)
    _check_ndim(path, shape, expected_ndim)
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(raw) - header_size
    if actual < expected:
        raise DataError(
            f"{path}: truncated: header shape {shape} needs {expected} data bytes, "
            f"file has {actual}"
        )
    if actual > expected:
        raise DataError(
            f"{path}: {actual - expected} unexpected trailing bytes after data of shape {shape}"
        )
    array = np.frombuffer(raw, dtype=dtype, offset=header_size).reshape(shape)
    return array if dtype.isnative else array.astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Writes ``array`` (uint8, int8, int16, int32, float32 or float64) as an IDX file.

    The file is gzip-compressed when ``path`` ends with ``.gz``.
    """
    path = os.fspath(path)
    array = np.asarray(array)
    code = _KIND_TO_CODE.get((array.dtype.kind, array.dtype.itemsize))
    if code is None or array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"cannot write dtype {array.dtype} with {array.ndim} dims as IDX")
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = np.ascontiguousarray(array, dtype=_CODE_TO_DTYPE[code]).tobytes()
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + data)


def read_idx_pair(
    images_path: str | os.PathLike, labels_path: str | os.PathLike, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Reads and cross-checks one split: images uint8 ``(N, H, W)``, labels uint8 ``(N,)``.

    Raises:
      DataError: any problem of :func:`read_idx`, a dtype other than uint8, a count mismatch
        between the two files, or a label outside ``[0, num_classes)``.
    """
    images = read_idx(images_path, expected_ndim=3)
    labels = read_idx(labels_path, expected_ndim=1)
    for path, array in ((images_path, images), (labels_path, labels)):
        if array.dtype != np.uint8:
            raise DataError(f"{os.fspath(path)}: expected uint8 data, found {array.dtype}")
    if len(images) != len(labels):
        raise DataError(
            f"count mismatch: {os.fspath(images_path)} has {len(images)} images but "
            f"{os.fspath(labels_path)} has {len(labels)} labels"
        )
    if len(labels) and labels.max() >= num_classes:
        bad = int(np.argmax(labels >= num_classes))
        raise DataError(
            f"{os.fspath(labels_path)}: label {int(labels[bad])} at index {bad} is outside "
            f"[0, {num_classes})"
        )
    return images, labels

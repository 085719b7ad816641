"""Robust image decoding for ``tf.data``: every readable image becomes RGB uint8, the rest
is skipped, warned about once per file and counted.

Mechanism (chosen by measurement, see ``bench/pairs.py`` and BUILD.md): OpenCV's
``cv2.imdecode`` inside ``tf.numpy_function`` in a parallel ``Dataset.map``, one call per
file (``tf_load_crop_resize``) or per batch of files (``tf_load_batch``: training streams;
on 128 px JPEGs it costs half the CPU per image, the per-element ``tf.data`` and
``numpy_function`` overhead being paid once per batch).
``cv2.imdecode`` releases the GIL, so the map runs on all cores; unlike ``tf.io.decode_*``
it applies the EXIF orientation of JPEGs, decodes big JPEGs at 1/2, 1/4 or 1/8 scale in the
DCT domain (``IMREAD_REDUCED_*``), and a failure is a ``None`` we can name and count,
where ``Dataset.ignore_errors`` would drop the element silently.

What decodes: JPEG (grayscale, CMYK, EXIF-rotated), PNG (gray, RGBA -> alpha dropped,
palette, 16-bit -> 8-bit), BMP, WebP, any size >= 1x1. What is skipped: zero-byte files,
files whose first bytes are not one of those formats (a ``.txt`` renamed ``.jpg``),
and anything OpenCV cannot decode, which includes truncated files (OpenCV 5 rejects a JPEG
cut anywhere before its end-of-image marker; data *after* the marker is fine).

Geometry of ``crop_resize``: ``images.fit_to_square`` (the one crop/resize of the project).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading

import cv2
import numpy as np

from keras_landmarks._internal import exit_guard
from keras_landmarks.data.headers import (NotAnImageFile, header_size, jpeg_size, read_image_file,  # noqa: F401
                                          sniff_format)
from keras_landmarks.data.images import IMAGE_EXTENSIONS, fit_to_square  # noqa: F401 (IMAGE_EXTENSIONS re-exported)

logger = logging.getLogger("keras_landmarks.data")

# The OpenCV this decoder is written and tested for (pyproject.toml's floor says the same):
# cv2.IMREAD_COLOR_RGB appeared in 4.11, and OpenCV 5 rejects a JPEG cut before its
# end-of-image marker (4.x returns the partly decoded image), which the bad-file tests assert.
OPENCV_MIN = (5, 0)
_found = tuple(int(p) for p in cv2.__version__.split(".")[:2])
if _found < OPENCV_MIN:
    raise ImportError(f"keras_landmarks needs OpenCV >= {'.'.join(map(str, OPENCV_MIN))}, found {cv2.__version__}: "
                      "pip install 'opencv-python-headless>=5.0,<6'")

# Most pixels one decode may produce (after a JPEG's DCT-domain reduction): 64 MP, 192 MB of
# RGB, per parallel decode. A 30,000 x 30,000 PNG (900 MP, 2.7 GB) is refused from its header.
MAX_DECODED_PIXELS = 64_000_000
_JPEG_REDUCED = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}

_quiet_lock, _quiet_depth, _saved_level = threading.Lock(), [0], [None]


@contextlib.contextmanager
def _opencv_silent():
    """OpenCV's console messages off while any decode runs (we count and report failures
    ourselves), and back to the application's level when the last one ends."""
    with _quiet_lock:
        if _quiet_depth[0] == 0:
            _saved_level[0] = cv2.utils.logging.getLogLevel()
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        _quiet_depth[0] += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_depth[0] -= 1
            if _quiet_depth[0] == 0:
                cv2.utils.logging.setLogLevel(_saved_level[0])


class DecodeError(ValueError):
    """An image file that cannot be decoded; the message says why."""


class DecodeStats:
    """Thread-safe tally of one pipeline's decodes; warns once per bad file.

    ``files_per_epoch`` (the files of one pass, if known) gives ``passes``. Read ``decoded``,
    ``skipped`` (distinct bad files) and ``skipped_files`` at any time; ``summary()`` is the
    line a run's final report prints (the folder sources log one line when they start).
    """

    def __init__(self, name: str = "images", files_per_epoch: int | None = None):
        self.name = name
        self.files_per_epoch = files_per_epoch
        self.decoded = 0
        self.attempts = 0
        self._bad: dict[str, str] = {}
        self._lock = threading.Lock()

    @property
    def skipped(self) -> int:
        return len(self._bad)

    @property
    def skipped_files(self) -> dict[str, str]:
        """``{path: reason}`` of every file skipped so far."""
        with self._lock:
            return dict(self._bad)

    def record(self, path: str, error: str | None = None) -> None:
        """Count one decode attempt; ``error`` is why the file was skipped (None = decoded)."""
        with self._lock:
            self.attempts += 1
            if error is None:
                self.decoded += 1
            else:
                self._skip(path, error)

    def skip(self, path: str, reason: str) -> None:
        """Record a file skipped without a decode attempt (e.g. missing)."""
        with self._lock:
            self._skip(path, reason)

    def _skip(self, path: str, reason: str) -> None:
        if path not in self._bad:
            self._bad[path] = reason
            logger.warning("%s: skipping unreadable image %s: %s", self.name, path, reason)

    @property
    def passes(self) -> float | None:
        """Passes over the file list so far (None without ``files_per_epoch``)."""
        return self.attempts / self.files_per_epoch if self.files_per_epoch else None

    def summary(self) -> str:
        passes = f", {self.passes:.1f} passes" if self.passes is not None else ""
        return (f"{self.name}: {self.decoded} images decoded, {self.skipped} unreadable files "
                f"skipped ({self.attempts} attempts{passes})")


def decode_rgb(data: bytes, min_side: int | None = None) -> tuple[np.ndarray, int]:
    """Decode image bytes to RGB.

    Args:
      data: the file's bytes.
      min_side: if given, a big JPEG is decoded at the reduced scale ``1/k``
        (``k`` in 8, 4, 2) that keeps its short side ``>= min_side``.
    Returns:
      ``(image [h, w, 3] uint8 RGB, k)``: ``k`` is the reduction used (1 = full size);
      the decoded pixel ``i`` covers original pixels ``[k i, k i + k)``, so an original
      coordinate maps as ``x_k = (x + 0.5) / k - 0.5``. EXIF orientation is applied.
    Raises:
      DecodeError: empty, unknown format, a header that cannot be read or claims more than
        ``MAX_DECODED_PIXELS`` (after the JPEG reduction), truncated or otherwise
        undecodable data. The size is read from the header first, so a file that lies
        about a billion pixels costs nothing.
    """
    if not data:
        raise DecodeError("empty (zero-byte) file")
    kind = sniff_format(data)
    if kind is None:
        raise DecodeError(f"not a JPEG/PNG/BMP/WebP file (starts with {data[:8]!r})")
    size = header_size(data, kind)
    if size is None or min(size) < 1:
        raise DecodeError(f"corrupt {kind}: its header is missing, cut short or claims a zero size")
    k, flags = 1, cv2.IMREAD_COLOR_RGB
    if kind == "jpeg" and min_side:
        for factor in (8, 4, 2):
            if min(size) >= factor * min_side:
                k, flags = factor, _JPEG_REDUCED[factor]
                break
    pixels = -(-size[0] // k) * -(-size[1] // k)
    if pixels > MAX_DECODED_PIXELS:
        raise DecodeError(f"{kind} of {size[1]}x{size[0]} pixels: decoding it would take {pixels:,} pixels, "
                          f"over the cap of {MAX_DECODED_PIXELS:,} (decode.MAX_DECODED_PIXELS)")
    try:
        with _opencv_silent():
            image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error as e:  # e.g. a header claiming more pixels than OpenCV allows
        raise DecodeError(f"OpenCV cannot decode it ({str(e).strip().splitlines()[-1]})") from None
    if image is None or image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
        raise DecodeError(f"corrupt or unsupported {kind} data")
    if k > 1:  # the reduced modes decode to BGR only
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return image, k


def crop_resize(image: np.ndarray, size: int, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``images.fit_to_square`` (centre crop) of an image decoded at reduction ``k``.

    Args:
      image: ``[h, w, 3]`` uint8, decoded at reduction ``k`` (see ``decode_rgb``).
    Returns:
      ``(out [size, size, 3] uint8, affine [4] float32)`` with ``affine = (sx, sy, tx, ty)``:
      a pixel ``(x, y)`` of the *original* (full-size, oriented) image lands at
      ``(sx x + tx, sy y + ty)`` in ``out``.
    """
    out, t = fit_to_square(image, size)
    # x_k = (x + .5) / k - .5 on the reduced image, then x' = (x_k - offset) / scale.
    s = 1.0 / (k * t.scale)
    tx = (0.5 / k - 0.5 - t.offset_x) / t.scale
    ty = (0.5 / k - 0.5 - t.offset_y) / t.scale
    return out, np.array([s, s, tx, ty], np.float32)


def load_crop_resize(path: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Read (``headers.read_image_file``), decode and ``crop_resize`` one file; raises
    ``DecodeError`` or ``OSError``."""
    try:
        data = read_image_file(path)
    except NotAnImageFile as e:
        raise DecodeError(str(e)) from None
    image, k = decode_rgb(data, min_side=size)
    return crop_resize(image, size, k)


def load_or_skip(path: str, size: int, stats: DecodeStats) -> tuple[np.ndarray, np.ndarray] | None:
    """``load_crop_resize(path, size)``, recorded in ``stats``; None if the file was skipped."""
    with exit_guard.running():
        try:
            out = load_crop_resize(path, size)
        except (DecodeError, OSError) as e:
            reason = str(e) if isinstance(e, DecodeError) else f"cannot read ({e.strerror or e})"
            stats.record(path, reason)
            return None
    stats.record(path)
    return out


def tf_load_crop_resize(path, size: int, stats: DecodeStats) -> dict:
    """``tf.data`` op: decode one file path to a ``size x size`` RGB crop, never raising.

    Args:
      path: scalar ``tf.string`` file path.
    Returns:
      ``{"image": [size, size, 3] uint8, "affine": [4] float32 (sx, sy, tx, ty),
      "ok": bool}``; on failure ``ok`` is False and the image zeros (filter on ``ok``).
      The failure is recorded in ``stats`` with its reason.
    """

    def load(path_bytes):
        if isinstance(path_bytes, np.ndarray):  # eager calls pass a 0-d object array
            path_bytes = path_bytes.item()
        out = load_or_skip(os.fsdecode(path_bytes), size, stats)
        if out is None:
            return np.zeros((size, size, 3), np.uint8), np.zeros(4, np.float32), False
        return out[0], out[1], True

    import tensorflow as tf  # noqa: PLC0415 (the tf.data ops only; the NumPy path needs no TF)

    image, affine, ok = tf.numpy_function(load, [path], (tf.uint8, tf.float32, tf.bool), stateful=False)
    image.set_shape([size, size, 3])
    affine.set_shape([4])
    ok.set_shape([])
    return {"image": image, "affine": affine, "ok": ok}


def load_batch(paths, size: int, stats: DecodeStats) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read, decode and ``crop_resize`` many files; unreadable ones are skipped and recorded.

    Args:
      paths: ``n`` file paths (str or bytes, e.g. the object array ``tf.numpy_function``
        passes).
    Returns:
      ``(images [m, size, size, 3] uint8 RGB, affine [m, 4] float32 (sx, sy, tx, ty) as in
      ``crop_resize``, index [m] int32)`` of the ``m <= n`` readable files, in order;
      ``index`` is each one's position in ``paths``.
    """
    images = np.empty((len(paths), size, size, 3), np.uint8)
    affine = np.empty((len(paths), 4), np.float32)
    index = np.empty(len(paths), np.int32)
    m = 0
    for i, path in enumerate(paths):  # one exit_guard.running() per file: a long batch stops at exit
        out = load_or_skip(os.fsdecode(path), size, stats)
        if out is not None:
            images[m], affine[m], index[m] = out[0], out[1], i
            m += 1
    return images[:m], affine[:m], index[:m]


def tf_load_batch(paths, size: int, stats: DecodeStats) -> dict:
    """``tf.data`` op: ``load_batch`` in one ``tf.numpy_function`` call, never raising.

    Args:
      paths: ``[n]`` ``tf.string`` file paths.
    Returns:
      ``{"image": [m, size, size, 3] uint8, "affine": [m, 4] float32, "index": [m] int32}``
      of the ``m <= n`` readable files, in order (``m`` may be 0). ``Dataset.rebatch``
      turns a stream of these into full batches.
    """
    import tensorflow as tf  # noqa: PLC0415

    images, affine, index = tf.numpy_function(
        lambda p: load_batch(p, size, stats), [paths], (tf.uint8, tf.float32, tf.int32), stateful=False)
    images.set_shape([None, size, size, 3])
    affine.set_shape([None, 4])
    index.set_shape([None])
    return {"image": images, "affine": affine, "index": index}


__all__ = [
    "IMAGE_EXTENSIONS",
    "DecodeError",
    "DecodeStats",
    "sniff_format",
    "jpeg_size",
    "decode_rgb",
    "crop_resize",
    "load_crop_resize",
    "tf_load_crop_resize",
    "load_batch",
    "tf_load_batch",
]

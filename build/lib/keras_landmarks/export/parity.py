"""Parity of exported detectors against the Keras detector, and the images to measure it on.

Errors are Euclidean distances between each exported keypoint and the Keras one, in
pixels of the ``S x S`` model input (``(x, y)``, pixel-centre convention), over every
image and landmark. Tolerances (``TOLERANCES``):

* float32 formats (SavedModel, ONNX, TFLite ``float32``): max error <= 1e-3 px;
* TFLite ``float16``: max error <= 0.05 px;
* TFLite ``dynamic`` and ``int8``: mean error <= ``S / 128`` px (1 px at 128x128), a
  target that is reported, not enforced, since it depends on the trained weights.
"""

from __future__ import annotations

import dataclasses
import glob
import os

import numpy as np

from keras_landmarks.data.images import IMAGE_EXTENSIONS, is_image_file
from keras_landmarks.export.serving import Runner



@dataclasses.dataclass(frozen=True)
class Tolerance:
    statistic: str  # "max" or "mean"
    pixels_at_128: float  # threshold at S = 128; scales with S for "mean" targets
    enforced: bool

    def threshold(self, image_size: int) -> float:
        if self.statistic == "mean":
            return self.pixels_at_128 * image_size / 128.0
        return self.pixels_at_128


TOLERANCES: dict[str, Tolerance] = {
    "saved_model": Tolerance("max", 1e-3, True),
    "onnx": Tolerance("max", 1e-3, True),
    "tflite_float32": Tolerance("max", 1e-3, True),
    "tflite_float16": Tolerance("max", 0.05, True),
    "tflite_dynamic": Tolerance("mean", 1.0, False),
    "tflite_int8": Tolerance("mean", 1.0, False),
}


@dataclasses.dataclass(frozen=True)
class ParityRow:
    """Keypoint errors of one exported model on ``num_images`` images, in input pixels."""

    name: str
    num_images: int
    max_px: float
    mean_px: float
    p99_px: float
    threshold_px: float
    statistic: str
    enforced: bool

    @property
    def passed(self) -> bool:
        value = self.max_px if self.statistic == "max" else self.mean_px
        return bool(value <= self.threshold_px)


def keypoint_errors(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """``[B, K]`` Euclidean distances between two ``[B, K, 2]`` ``(x, y)`` point sets."""
    reference, candidate = np.asarray(reference, np.float64), np.asarray(candidate, np.float64)
    if reference.shape != candidate.shape or reference.ndim != 3 or reference.shape[-1] != 2:
        raise ValueError(f"expected two [B, K, 2] arrays, got {reference.shape} and "
                         f"{candidate.shape}")
    return np.sqrt(np.sum(np.square(candidate - reference), axis=-1))


def compare(reference: Runner, candidates: dict[str, Runner], images: np.ndarray,
            batch_size: int = 16) -> list[ParityRow]:
    """Run ``reference`` and each candidate on ``images`` ``[N, S, S, 3]`` uint8; one row each.

    Candidate names select the tolerance (``TOLERANCES``; unknown names are held to the
    float32 one). Each runner gets the images in its own input dtype.
    """
    size = images.shape[1]
    ref = _run(reference, images, batch_size)
    rows = []
    for name, runner in candidates.items():
        if runner.image_size != size:
            raise ValueError(f"{name}: model input is {runner.image_size}x{runner.image_size}, "
                             f"the parity images are {size}x{size}")
        err = keypoint_errors(ref, _run(runner, images, batch_size))
        tol = TOLERANCES.get(name, TOLERANCES["saved_model"])
        rows.append(ParityRow(name, len(images), float(err.max()), float(err.mean()),
                              float(np.percentile(err, 99)), tol.threshold(size), tol.statistic,
                              tol.enforced))
    return rows


def _run(runner: Runner, images: np.ndarray, batch_size: int) -> np.ndarray:
    outs = [runner(images[i:i + batch_size].astype(runner.input_dtype))["keypoints"]
            for i in range(0, len(images), batch_size)]
    return np.concatenate(outs)


def format_table(rows: list[ParityRow]) -> str:
    """A fixed-width text table of ``rows`` (one line per exported model)."""
    lines = [f"{'model':<16} {'images':>6} {'max_px':>9} {'mean_px':>9} {'p99_px':>9} "
             f"{'target':>14} result"]
    for r in rows:
        target = f"{r.statistic}<={r.threshold_px:g}"
        result = "ok" if r.passed else ("FAIL" if r.enforced else "above target")
        lines.append(f"{r.name:<16} {r.num_images:>6} {r.max_px:>9.2e} {r.mean_px:>9.2e} "
                     f"{r.p99_px:>9.2e} {target:>14} {result}")
    return "\n".join(lines)


# -- images ------------------------------------------------------------------------------


def load_images(source: str, size: int, count: int, offset: int = 0) -> np.ndarray:
    """``[count, size, size, 3]`` uint8 RGB images from ``source``.

    Args:
      source: an image folder (files sorted by name, centre-cropped to a square and
        resized by the project's one reader, ``keras_landmarks.data.decode.load_crop_resize``) or ``"synthetic"`` (the project's
        procedural toy faces, ``keras_landmarks.data.synthetic``, "train" stream).
      size: side ``S`` of the model input.
      count: number of images; a folder with fewer images raises ``ValueError``.
      offset: skip this many images first (to keep calibration and parity sets apart).
    """
    if source == "synthetic":
        return _synthetic_images(size, count, offset)
    if not os.path.isdir(source):
        raise ValueError(f"image source {source!r} is neither a folder nor 'synthetic'")
    from keras_landmarks.data import decode  # noqa: PLC0415 (OpenCV)

    files = sorted(f for f in glob.glob(os.path.join(source, "*")) if is_image_file(f))
    if len(files) < offset + count:
        raise ValueError(f"{source} has {len(files)} images, need {offset + count} "
                         f"({IMAGE_EXTENSIONS})")
    images = []
    for file in files[offset:offset + count]:
        try:
            images.append(decode.load_crop_resize(file, size)[0])
        except (decode.DecodeError, OSError) as e:
            raise ValueError(f"{file} is not a readable image ({e})") from None
    return np.stack(images)


def _synthetic_images(size: int, count: int, offset: int) -> np.ndarray:
    try:
        from keras_landmarks.data.synthetic import synthetic_annotated  # noqa: PLC0415
    except ImportError as e:
        raise ValueError(f"synthetic images need keras_landmarks.data.synthetic ({e}); "
                         "pass an image folder instead") from None
    batches = synthetic_annotated("train", num_images=offset + count, image_size=size,
                                  batch_size=64)
    images = np.concatenate([b["image"].numpy() for b in batches])[offset:]
    return np.clip(np.round(images), 0, 255).astype(np.uint8)

"""The deployable detector: one contract for every export format, and its runners.

Contract (identical for Keras, SavedModel, TFLite and ONNX):

* input ``image``: ``[B, S, S, 3]`` RGB, ``uint8`` (default) or ``float32`` in
  ``[0, 255]``; ``B`` is dynamic, ``S`` is fixed by the model. The graph does its own
  preprocessing (cast, ``/255``), so callers send raw pixels.
* output ``keypoints``: ``[B, K, 2]`` float32 ``(x, y)`` in **pixels of the input**:
  0-based, integer values at pixel centres, so ``(0, 0)`` is the centre of the top-left
  pixel and ``(S-1, S-1)`` the centre of the bottom-right one.
* output ``keypoints_normalized``: ``[B, K, 2]`` float32 ``(x, y)`` in ``[-1, 1]``,
  ``-1``/``+1`` at the centres of the first/last pixel (``keras_landmarks.geometry``).
* optional output ``score_maps``: ``[B, h, h, K]`` float32 raw scores of the head.

``build_serving_model`` makes that contract a Keras model; ``Runner`` is the common
numpy interface of a loaded artifact (validates shape and dtype, returns a dict of
arrays); ``runners.load_runner`` opens any supported file.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from typing import Callable, Iterator

import keras
import numpy as np

from keras_landmarks import geometry
from keras_landmarks._internal.stale import remove_stale

OUTPUT_NAMES = ("keypoints", "keypoints_normalized", "score_maps")
INPUT_DTYPES = ("uint8", "float32")


@keras.saving.register_keras_serializable(package="keras_landmarks_export")
class KeypointsToPixels(keras.layers.Layer):
    """``[B, K, 2]`` ``(x, y)`` normalised ``[-1, 1]`` -> pixels of an ``S x S`` image.

    ``x_pix = (x + 1) / 2 * (S - 1)`` (pixel-centre convention of ``geometry``).
    """

    def __init__(self, image_size: int, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.image_size = int(image_size)

    def call(self, points):
        return geometry.normalized_to_pixels(points, self.image_size)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "image_size": self.image_size}


def build_serving_model(
    detector: keras.Model, input_dtype: str = "uint8", score_maps: bool = False
) -> keras.Model:
    """Wrap ``build_detector``'s model into the deployable contract (module docstring).

    Args:
      detector: image ``[B, S, S, 3]`` float32 ``[0, 255]`` -> ``{"keypoints": [B, K, 2]
        normalised, "score_maps": [B, h, h, K]}`` (``keras_landmarks.build_detector``).
      input_dtype: ``"uint8"`` or ``"float32"`` (values in ``[0, 255]`` either way).
      score_maps: also output the raw ``score_maps``.
    Returns:
      A functional ``keras.Model`` named ``serving_detector`` sharing ``detector``'s weights.
    """
    if input_dtype not in INPUT_DTYPES:
        raise ValueError(f"input_dtype must be one of {INPUT_DTYPES}, got {input_dtype!r}")
    size = image_size_of(detector)
    image = keras.Input((size, size, 3), dtype=input_dtype, name="image")
    pixels = keras.ops.cast(image, "float32")
    detected = detector(pixels, training=False)
    normalized = detected["keypoints"]
    outputs = {
        "keypoints": KeypointsToPixels(size, name="keypoints_pixels")(normalized),
        "keypoints_normalized": normalized,
    }
    if score_maps:
        outputs["score_maps"] = keras.ops.cast(detected["score_maps"], "float32")
    return keras.Model(image, outputs, name="serving_detector")


def image_size_of(detector: keras.Model) -> int:
    """``S`` of a model whose single input is ``[B, S, S, 3]``; clear error otherwise."""
    shape = tuple(detector.inputs[0].shape) if detector.inputs else ()
    if len(shape) != 4 or shape[1] is None or shape[1] != shape[2] or shape[3] != 3:
        raise ValueError(
            f"expected a detector with input [B, S, S, 3] (keras_landmarks.build_detector), "
            f"got input shape {shape}"
        )
    return int(shape[1])


class Runner:
    """A loaded detector behind one numpy interface.

    Call with ``images`` ``[B, S, S, 3]`` of ``input_dtype`` (``uint8`` or ``float32``
    ``[0, 255]``); returns ``{"keypoints": [B, K, 2] pixels, "keypoints_normalized":
    [B, K, 2], ["score_maps": [B, h, h, K]]}`` float32 numpy arrays, ``(x, y)`` order.
    """

    format_name = "?"

    def __init__(self, path: str, image_size: int, input_dtype: str, fn: Callable):
        self.path = path
        self.image_size = int(image_size)
        self.input_dtype = np.dtype(input_dtype)
        self._fn = fn

    def __call__(self, images: np.ndarray) -> dict[str, np.ndarray]:
        images = self.check_images(images)
        return {k: np.asarray(v, np.float32) for k, v in self._fn(images).items()}

    def check_images(self, images) -> np.ndarray:
        """Raise ``ValueError`` naming the expected shape and dtype on bad input."""
        s = self.image_size
        want = f"[B, {s}, {s}, 3] {self.input_dtype.name} RGB in [0, 255]"
        if not isinstance(images, np.ndarray):
            raise ValueError(f"{self.path}: expected a numpy array {want}, got {type(images)}")
        if images.ndim != 4 or images.shape[1:] != (s, s, 3) or images.shape[0] < 1:
            raise ValueError(
                f"{self.path}: expected images {want}, got shape {images.shape} "
                f"(resize or crop to {s}x{s} first, e.g. with landmarks-predict)"
            )
        if images.dtype != self.input_dtype:
            raise ValueError(
                f"{self.path}: expected images {want}, got dtype {images.dtype} "
                f"(convert with images.astype(np.{self.input_dtype.name}))"
            )
        return images

    def __repr__(self) -> str:
        return f"<{self.format_name} runner {self.path} S={self.image_size} {self.input_dtype}>"


def load_keras_detector(path: str) -> keras.Model:
    """The detector of a ``.keras`` file or training logdir (``<logdir>/model.keras``).

    Accepts a saved ``LandmarkModel`` (uses its ``.detector``) or a saved detector
    (``build_detector``'s model). Raises ``ValueError`` naming the file when it is
    missing, corrupt or holds something else.
    """
    from keras_landmarks.model import load_saved, model_file  # noqa: PLC0415 (also registers the custom classes)

    model = load_saved(path)
    file = model_file(path)
    detector = getattr(model, "detector", model)
    names = getattr(detector, "output_names", None) or []
    if not isinstance(detector, keras.Model) or "keypoints" not in names:
        raise ValueError(f"{file} holds {type(model).__name__} {model.name!r}, not a "
                         "LandmarkModel or a detector with a 'keypoints' output")
    image_size_of(detector)
    return float32_detector(detector)


def float32_detector(detector: keras.Model) -> keras.Model:
    """``detector`` itself if it computes in float32, else a float32 copy (same weights).

    A model trained with ``mixed_float16`` / ``mixed_bfloat16`` keeps those dtype policies
    in its ``.keras`` file; every export format is float32 (TFLite / ONNX quantize from
    float32), so the copy is rebuilt from the config with float32 policies.
    """
    layers = detector._flatten_layers(include_self=False)
    if all(layer.dtype_policy.compute_dtype == "float32" for layer in layers):
        return detector
    copy = detector.__class__.from_config(_float32_policies(detector.get_config()))
    copy.set_weights(detector.get_weights())
    return copy


def _float32_policies(config):
    """``config`` with every serialized ``DTypePolicy`` replaced by ``"float32"``."""
    if isinstance(config, dict):
        if config.get("class_name") == "DTypePolicy":
            return {**config, "config": {**config.get("config", {}), "name": "float32"}}
        return {k: _float32_policies(v) for k, v in config.items()}
    if isinstance(config, list):
        return [_float32_policies(v) for v in config]
    return config


class KerasRunner(Runner):
    """The Keras detector (``.keras`` file or logdir) behind the ``Runner`` interface."""

    format_name = "keras"

    def __init__(self, path: str, input_dtype: str = "uint8", score_maps: bool = False,
                 detector: keras.Model | None = None, **_unused):
        detector = detector if detector is not None else load_keras_detector(path)
        self.model = build_serving_model(detector, input_dtype, score_maps)
        super().__init__(path, image_size_of(detector), input_dtype, self.model.predict_on_batch)


@contextlib.contextmanager
def atomic_path(final_path: str, overwrite: bool = False) -> Iterator[str]:
    """Yield a temporary path beside ``final_path``; move it there (``os.replace``) at the end.

    A crash or kill inside the block never leaves anything at ``final_path`` (only a
    hidden ``.<name>.tmp-*`` beside it). Works for files and directories. With
    ``overwrite=False`` an existing ``final_path`` raises ``FileExistsError`` up front.
    """
    final_path = os.path.abspath(final_path)
    if os.path.exists(final_path) and not overwrite:
        raise FileExistsError(f"{final_path} already exists; pass --overwrite to replace it")
    parent, name = os.path.split(final_path)
    os.makedirs(parent, exist_ok=True)
    remove_stale(parent, re.escape(f".{name}.tmp-") + r"(\d+)-.*")  # left by a killed export
    work = tempfile.mkdtemp(prefix=f".{name}.tmp-{os.getpid()}-", dir=parent)
    tmp = os.path.join(work, name)
    try:
        yield tmp
        if not os.path.exists(tmp):
            raise RuntimeError(f"nothing was written to {tmp}")
        old = None
        if os.path.isdir(final_path) and not os.path.islink(final_path):
            old = os.path.join(work, name + ".old")  # a directory cannot be replaced in place
            os.replace(final_path, old)
        os.replace(tmp, final_path)
        if old:
            shutil.rmtree(old)
    finally:
        shutil.rmtree(work, ignore_errors=True)

r"""Pretrained detectors shipped inside the package: they work offline right after ``pip install``.

    from keras_landmarks import pretrained
    faces = pretrained.load("faces")
    out = faces.predict(images)          # [B, H, W, 3] uint8 RGB photos of faces, any size
    out["points"]                        # [B, 5, 2] (x, y) pixels of the inputs: named points
    faces.point_names                    # ("left_eye", "right_eye", "nose", "left_mouth", "right_mouth")

Each detector is a folder ``keras_landmarks/pretrained/<name>/`` of package data:

* ``model.keras``: the trained ``LandmarkModel`` (detector, appearance encoder, renderer);
* ``detector_float32.tflite``, ``detector_int8.tflite``: the detector in the serving
  contract of ``export.serving`` (uint8 ``[B, S, S, 3]`` in, pixel keypoints out);
* ``card.json``: how it was made (command, config, steps, training time, machine, date),
  its measured errors, the linear map from its K keypoints to the named points (fitted on
  the labelled train splits), and its outputs on ``reference_images`` recorded at build
  time (the tests check that the shipped files still give them).

The command-line programs take a detector's name wherever they take a model file:
``landmarks-predict --model=faces photo.jpg``, ``landmarks-evaluate --model=faces
--dataset=folder --data_dir=<labelled folder>``, ``landmarks-export --model=faces``
(``resolve_model``). ``trainers/build_pretrained.py``
(``apps.build_pretrained``) trains and packs one (README, "Pretrained detectors"). This module imports no TensorFlow
until ``load`` is called.
"""

from __future__ import annotations

import functools
import json
import os

import numpy as np

HOME = os.path.dirname(os.path.abspath(__file__))
CARD = "card.json"
MODEL_FILE = "model.keras"
TFLITE_FILES = {"float32": "detector_float32.tflite", "int8": "detector_int8.tflite"}


def available() -> list[str]:
    """Names of the detectors shipped with this installation (folders holding a card)."""
    return sorted(d for d in os.listdir(HOME) if os.path.isfile(os.path.join(HOME, d, CARD)))


def path(name: str, file: str = MODEL_FILE) -> str:
    """Path of ``file`` of the shipped detector ``name``; ``ValueError`` listing the
    available names when there is no such detector or file."""
    if name not in available():
        raise ValueError(f"no pretrained detector {name!r}; this installation has {available()} "
                         "(keras_landmarks/pretrained/<name>/card.json)")
    out = os.path.join(HOME, name, file)
    if not os.path.isfile(out):
        raise ValueError(f"pretrained detector {name!r} has no {file} ({os.path.join(HOME, name)}): "
                         "reinstall keras-landmarks")
    return out


def resolve_model(arg: str, file: str = MODEL_FILE) -> str:
    """What a CLI's ``--model`` names: an existing path as it is, else a shipped detector's
    ``file`` (``--model=faces``). A name that is neither is returned unchanged, so the
    caller's own "does not exist" error names it."""
    if os.path.exists(arg) or arg not in available():
        return arg
    return path(arg, file)


@functools.lru_cache(maxsize=8)
def card(name: str) -> dict:
    """The detector's ``card.json`` (module docstring)."""
    with open(path(name, CARD)) as f:
        return json.load(f)


def reference_images(image_size: int) -> np.ndarray:
    """``[3, S, S, 3]`` uint8 inputs whose outputs every card records: uniform noise
    (NumPy PCG64, seed 0), a smooth colour ramp, and the noise blurred (a stable stream:
    the same pixels in any NumPy >= 1.17)."""
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (image_size, image_size, 3), dtype=np.uint8)
    ramp = np.linspace(0.0, 255.0, image_size)
    ramps = np.stack(np.broadcast_arrays(ramp[None, :], ramp[:, None], 255.0 - ramp[None, :]), -1)
    kernel = np.ones(5) / 5.0
    blurred = noise.astype(np.float64)
    for axis in (0, 1):
        blurred = np.apply_along_axis(lambda v: np.convolve(np.pad(v, 2, mode="wrap"), kernel, "valid"),
                                      axis, blurred)
    return np.stack([noise, ramps.round().astype(np.uint8), blurred.round().astype(np.uint8)])


class PointMap:
    """The card's linear map from K detected points to P named points (the evaluation
    protocol's regressor, with an intercept), in pixels of the model's ``S x S`` input.

    ``__call__(keypoints [B, K, 2]) -> [B, P, 2]``, both ``(x, y)`` pixels (0-based, integer =
    pixel centre, ``export.serving``'s convention)."""

    def __init__(self, weights, names):
        from keras_landmarks.evaluation.protocol import Regressor  # noqa: PLC0415 (numpy only)

        weights = np.asarray(weights, np.float64)  # [2K + 1, 2P]
        self.names = tuple(names)
        self.regressor = Regressor(weights=weights, num_points=len(self.names), intercept=True)

    @property
    def weights(self) -> np.ndarray:
        return self.regressor.weights

    def __call__(self, keypoints) -> np.ndarray:
        keypoints = np.asarray(keypoints, np.float64)
        if 2 * keypoints.shape[1] + 1 != self.weights.shape[0]:
            raise ValueError(f"the point map takes {(self.weights.shape[0] - 1) // 2} keypoints, "
                             f"got {keypoints.shape[1]}")
        return self.regressor.predict(keypoints)


def point_map(name: str) -> PointMap:
    """The shipped detector's ``PointMap`` (keypoints -> named points)."""
    c = card(name)
    return PointMap(c["point_map"]["weights"], c["point_map"]["names"])


class Pretrained:
    """A loaded shipped detector: ``model`` (``LandmarkModel``), ``detector``, ``point_map``.

    Attributes:
      name, card: the detector's name and ``card.json``.
      image_size: S, the side its detector takes.
      point_names: the names of ``predict``'s ``points``.
    """

    def __init__(self, name: str):
        import keras  # noqa: PLC0415

        from keras_landmarks import model as _model  # noqa: F401, PLC0415 (registers LandmarkModel)

        self.name, self.card = name, card(name)
        self.model = keras.models.load_model(path(name, MODEL_FILE))
        self.detector = self.model.detector
        self.image_size = int(self.model.config.image_size)
        self.point_map = point_map(name)
        self.point_names = self.point_map.names

    def predict(self, images, fit: str = "crop") -> dict:
        """Detect on photos of any size.

        Args:
          images: ``[B, H, W, 3]`` uint8 RGB (or a list of ``[H, W, 3]`` arrays of any sizes).
          fit: how a non-square image becomes square: ``"crop"`` (centre) or ``"pad"``.
        Returns:
          ``{"keypoints": [B, K, 2], "points": [B, P, 2]}`` float64 ``(x, y)`` pixels of each
          input image (0-based, integer = pixel centre).
        """
        from keras_landmarks.data.images import fit_to_square  # noqa: PLC0415

        fitted = [fit_to_square(np.asarray(im), self.image_size, fit) for im in images]
        squares = np.stack([sq for sq, _ in fitted]).astype(np.float32)
        keypoints = self.keypoints(squares)
        points = self.point_map(keypoints)
        return {"keypoints": np.stack([tr.to_original(k) for (_, tr), k in zip(fitted, keypoints)]),
                "points": np.stack([tr.to_original(p) for (_, tr), p in zip(fitted, points)])}

    def keypoints(self, squares) -> np.ndarray:
        """``[B, K, 2]`` pixels of ``S x S`` inputs ``[B, S, S, 3]`` (``[0, 255]``)."""
        import keras  # noqa: PLC0415

        from keras_landmarks import geometry  # noqa: PLC0415

        out = self.detector(np.asarray(squares, np.float32), training=False)["keypoints"]
        return np.asarray(geometry.normalized_to_pixels(keras.ops.convert_to_numpy(out), self.image_size), np.float64)


def load(name: str = "faces") -> Pretrained:
    """The shipped detector ``name`` (``available()``), loaded with Keras."""
    path(name, MODEL_FILE)  # a clear error before Keras starts
    return Pretrained(name)


__all__ = ["CARD", "MODEL_FILE", "TFLITE_FILES", "PointMap", "Pretrained", "available", "card", "load", "path",
           "point_map", "reference_images", "resolve_model"]

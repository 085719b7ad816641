"""keras-landmarks: unsupervised object landmarks through conditional image generation.

Jakab, Gupta, Bilen, Vedaldi, NeurIPS 2018, as TensorFlow 2 / Keras 3 software.
Coordinates everywhere are ``(x, y)``; see ``keras_landmarks.geometry``.

Layout (the paper's figure): ``networks`` (Phi, bottleneck, detector, renderer), ``losses``
(perceptual features, EMA normaliser), ``model`` (``LandmarkModel``), ``pairs`` (TPS warps),
``data`` (sources), ``training``, ``evaluation``, ``export``, ``pretrained`` (shipped
detectors), ``pretraining.colorization``; ``apps`` (animation, detection on files) and ``cli``
(the command-line programs) sit on top. Imports run one way (BUILD.md "Layout"). The names
below are imported on first use, so ``import keras_landmarks`` (and a CLI's ``--help``) does
not start TensorFlow.
"""

from __future__ import annotations

from keras_landmarks._internal.lazy import lazy_attributes

from keras_landmarks._internal import log as _log  # noqa: F401  (the library logger's default handler)

__version__ = "0.2.0"

_EXPORTS = {
    "LandmarkConfig": "keras_landmarks.config",
    "WarpParams": "keras_landmarks.config",
    "SimilarityParams": "keras_landmarks.config",
    "preset": "keras_landmarks.config",
    "LandmarkModel": "keras_landmarks.model",
    "GaussianMaps": "keras_landmarks.networks",
    "SoftArgmaxKeypoints": "keras_landmarks.networks",
    "build_detector": "keras_landmarks.networks",
    "build_encoder": "keras_landmarks.networks",
    "build_renderer": "keras_landmarks.networks",
}
_SUBPACKAGES = ("apps", "cli", "config", "data", "evaluation", "export", "geometry", "losses", "model", "networks",
                "pairs", "pretrained", "pretraining", "training")

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_attributes(__name__, globals(), _SUBPACKAGES, _EXPORTS)

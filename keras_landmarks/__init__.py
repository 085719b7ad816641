"""keras-landmarks: unsupervised object landmarks through conditional image generation.

Jakab, Gupta, Bilen, Vedaldi, NeurIPS 2018, as TensorFlow 2 / Keras 3 software.
Coordinates everywhere are ``(x, y)``; see ``keras_landmarks.geometry``.
"""

from keras_landmarks.bottleneck import GaussianMaps, SoftArgmaxKeypoints
from keras_landmarks.config import LandmarkConfig, WarpParams, preset
from keras_landmarks.encoders import build_detector, build_encoder
from keras_landmarks.model import LandmarkModel
from keras_landmarks.renderer import build_renderer

__version__ = "0.1.0"

__all__ = [
    "GaussianMaps",
    "LandmarkConfig",
    "LandmarkModel",
    "SoftArgmaxKeypoints",
    "WarpParams",
    "build_detector",
    "build_encoder",
    "build_renderer",
    "preset",
]

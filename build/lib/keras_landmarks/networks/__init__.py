"""The networks of the method (PAPER.md figure): Phi, the keypoint bottleneck, the detector
and the renderer. Builders take a ``LandmarkConfig`` and return functional ``keras.Model`` s."""

from keras_landmarks.networks.bottleneck import GaussianMaps, SoftArgmaxKeypoints, gaussian_maps, soft_argmax
from keras_landmarks.networks.detector import build_detector
from keras_landmarks.networks.encoder import build_encoder
from keras_landmarks.networks.renderer import build_renderer

__all__ = ["GaussianMaps", "SoftArgmaxKeypoints", "build_detector", "build_encoder", "build_renderer",
           "gaussian_maps", "soft_argmax"]

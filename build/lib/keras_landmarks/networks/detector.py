"""The deployable keypoint detector: Phi, a 1x1 score head and the soft-argmax bottleneck."""

from __future__ import annotations

import keras
from keras import layers

from keras_landmarks.config import LandmarkConfig
from keras_landmarks.networks.blocks import kernel_regularizer
from keras_landmarks.networks.bottleneck import SoftArgmaxKeypoints
from keras_landmarks.networks.encoder import build_encoder


def build_detector(cfg: LandmarkConfig, name: str = "detector") -> keras.Model:
    """The deployable keypoint detector: image -> keypoints (+ score maps).

    Input: ``image`` ``[B, S, S, 3]`` float32 RGB in ``[0, 255]``.
    Outputs (dict):
      ``keypoints``: ``[B, K, 2]`` float32 ``(x, y)`` normalised ``[-1, 1]``
        (pixel-centre convention, see ``geometry``).
      ``score_maps``: ``[B, h, h, K]`` raw scores of the 1x1 head (no BN, no ReLU).
    """
    s = cfg.image_size
    inputs = keras.Input((s, s, 3), name="image")
    features = build_encoder(cfg, name="keypoint_encoder")(inputs)
    scores = layers.Conv2D(
        cfg.num_landmarks,
        1,
        kernel_regularizer=kernel_regularizer(cfg),
        dtype="float32",
        name="score_maps",
    )(features)
    keypoints = SoftArgmaxKeypoints(name="keypoints")(scores)
    return keras.Model(inputs, {"keypoints": keypoints, "score_maps": scores}, name=name)

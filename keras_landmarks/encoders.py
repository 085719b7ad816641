"""The image encoder Phi and the keypoint detector built on it.

All builders take a ``LandmarkConfig`` and return functional ``keras.Model`` s whose
input is a batch of RGB images ``[B, S, S, 3]`` float32 in ``[0, 255]``.
"""

from __future__ import annotations

import keras
from keras import layers

from keras_landmarks.bottleneck import SoftArgmaxKeypoints
from keras_landmarks.config import LandmarkConfig


def conv_bn_relu(x, filters: int, kernel_size: int, strides: int, weight_decay: float, name: str):
    """conv (no bias) + BatchNorm + ReLU, "same" padding: the unit of Phi and the renderer."""
    x = layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=False,
        kernel_regularizer=keras.regularizers.L2(weight_decay) if weight_decay else None,
        name=f"{name}_conv",
    )(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def encoder_channels(cfg: LandmarkConfig) -> int:
    """Channels of Phi's output: ``width * 2**num_downsamples`` (256 at 128 input, width 32)."""
    return cfg.width * 2**cfg.num_downsamples


def build_encoder(cfg: LandmarkConfig, name: str = "encoder") -> keras.Model:
    """Phi: ``[B, S, S, 3]`` float32 ``[0, 255]`` -> ``[B, h, h, C]`` with ``h = heatmap_size``.

    conv7x7/w, conv3x3/w at full resolution, then per halving a block
    [conv3x3 stride 2, conv3x3] with doubling channels (official: 32 -> 64, 128, 256).
    """
    s = cfg.image_size
    inputs = keras.Input((s, s, 3), name="image")
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    x = conv_bn_relu(x, cfg.width, 7, 1, cfg.weight_decay, "conv0a")
    x = conv_bn_relu(x, cfg.width, 3, 1, cfg.weight_decay, "conv0b")
    filters = cfg.width
    for i in range(1, cfg.num_downsamples + 1):
        filters *= 2
        x = conv_bn_relu(x, filters, 3, 2, cfg.weight_decay, f"block{i}a")
        x = conv_bn_relu(x, filters, 3, 1, cfg.weight_decay, f"block{i}b")
    return keras.Model(inputs, x, name=name)


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
        kernel_regularizer=keras.regularizers.L2(cfg.weight_decay) if cfg.weight_decay else None,
        dtype=_float32_policy(),
        name="score_maps",
    )(features)
    keypoints = SoftArgmaxKeypoints(name="keypoints")(scores)
    return keras.Model(inputs, {"keypoints": keypoints, "score_maps": scores}, name=name)


def _float32_policy():
    """Float32 for the last layers of a mixed-precision model (scores, image output)."""
    return keras.DTypePolicy("float32")

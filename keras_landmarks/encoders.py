"""The image encoder Phi and the keypoint detector built on it.

All builders take a ``LandmarkConfig`` and return functional ``keras.Model`` s whose
input is a batch of RGB images ``[B, S, S, 3]`` float32 in ``[0, 255]``.
"""

from __future__ import annotations

import keras
from keras import layers

from keras_landmarks.bottleneck import SoftArgmaxKeypoints
from keras_landmarks.config import LandmarkConfig


def conv_bn_relu(x, cfg: LandmarkConfig, filters: int, kernel_size: int, strides: int, name: str):
    """conv (no bias) + BatchNorm + ReLU, "same" padding: the unit of Phi and the renderer."""
    x = layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=False,
        kernel_regularizer=kernel_regularizer(cfg),
        name=f"{name}_conv",
    )(x)
    x = layers.BatchNormalization(synchronized=cfg.sync_batchnorm, name=f"{name}_bn")(x)
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
    x = conv_bn_relu(x, cfg, cfg.width, 7, 1, "conv0a")
    x = conv_bn_relu(x, cfg, cfg.width, 3, 1, "conv0b")
    filters = cfg.width
    for i in range(1, cfg.num_downsamples + 1):
        filters *= 2
        x = conv_bn_relu(x, cfg, filters, 3, 2, f"block{i}a")
        x = conv_bn_relu(x, cfg, filters, 3, 1, f"block{i}b")
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
        kernel_regularizer=kernel_regularizer(cfg),
        dtype="float32",
        name="score_maps",
    )(features)
    keypoints = SoftArgmaxKeypoints(name="keypoints")(scores)
    return keras.Model(inputs, {"keypoints": keypoints, "score_maps": scores}, name=name)


def kernel_regularizer(cfg: LandmarkConfig):
    """L2 weight decay on conv kernels: Keras' ``wd * sum(w**2)`` (None when wd is 0)."""
    return keras.regularizers.L2(cfg.weight_decay) if cfg.weight_decay else None

"""The building blocks shared by Phi (the encoders) and the renderer."""

from __future__ import annotations

import math

import keras
from keras import layers

from keras_landmarks.config import LandmarkConfig


GROUPS = 8  # GroupNorm's groups (Wu and He 2018 use 32 on ImageNet nets 4-16x wider)


def conv_bn_relu(x, cfg: LandmarkConfig, filters: int, kernel_size: int, strides: int, name: str):
    """conv + normalisation + ReLU, "same" padding: the unit of Phi and the renderer.

    ``x`` ``[B, H, W, C]`` -> ``[B, ceil(H / strides), ceil(W / strides), filters]``, the
    compute dtype. ``cfg.normalization``: ``"batch"`` conv (no bias) + BatchNorm (official),
    ``"group"`` conv (no bias) + GroupNorm with ``gcd(GROUPS, filters)`` groups (8 for any
    width divisible by 8), ``"none"`` conv with a bias.
    """
    x = layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=cfg.normalization == "none",
        kernel_regularizer=kernel_regularizer(cfg),
        name=f"{name}_conv",
    )(x)
    if cfg.normalization == "batch":
        # Synchronised statistics are tf.distribute's; a JAX DataParallel batch is global already.
        sync = cfg.sync_batchnorm and keras.config.backend() == "tensorflow"
        x = layers.BatchNormalization(synchronized=sync, name=f"{name}_bn")(x)
    elif cfg.normalization == "group":
        x = layers.GroupNormalization(groups=math.gcd(GROUPS, filters), name=f"{name}_gn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def encoder_channels(cfg: LandmarkConfig) -> int:
    """Channels of Phi's output: ``width * 2**num_downsamples`` (256 at 128 input, width 32)."""
    return cfg.width * 2**cfg.num_downsamples


def kernel_regularizer(cfg: LandmarkConfig):
    """L2 weight decay on conv kernels: Keras' ``wd * sum(w**2)`` (None when wd is 0)."""
    return keras.regularizers.L2(cfg.weight_decay) if cfg.weight_decay else None

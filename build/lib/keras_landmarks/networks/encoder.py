"""Phi, the image encoder: the appearance encoder and the detector's trunk (PAPER.md "Networks").

Input: a batch of RGB images ``[B, S, S, 3]`` float32 in ``[0, 255]``.
"""

from __future__ import annotations

import keras
from keras import layers

from keras_landmarks.config import LandmarkConfig
from keras_landmarks.networks.blocks import conv_bn_relu


def build_encoder(cfg: LandmarkConfig, name: str = "encoder") -> keras.Model:
    """Phi: ``[B, S, S, 3]`` float32 ``[0, 255]`` -> ``[B, h, h, C]`` with ``h = heatmap_size``.

    conv7x7/w (stride ``cfg.stem_stride``), conv3x3/w, then per halving a block
    [conv3x3 stride 2, conv3x3] with doubling channels (official: 32 -> 64, 128, 256).
    """
    s = cfg.image_size
    inputs = keras.Input((s, s, 3), name="image")
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    x = conv_bn_relu(x, cfg, cfg.width, 7, cfg.stem_stride, "conv0a")
    x = conv_bn_relu(x, cfg, cfg.width, 3, 1, "conv0b")
    filters = cfg.width
    for i in range(1, cfg.num_downsamples + 1):
        filters *= 2
        x = conv_bn_relu(x, cfg, filters, 3, 2, f"block{i}a")
        x = conv_bn_relu(x, cfg, filters, 3, 1, f"block{i}b")
    return keras.Model(inputs, x, name=name)

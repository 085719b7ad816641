"""The renderer (decoder): appearance features + keypoint maps -> image."""

from __future__ import annotations

import keras
from keras import layers

from keras_landmarks.config import LandmarkConfig
from keras_landmarks.networks.blocks import conv_bn_relu, encoder_channels, kernel_regularizer


def build_renderer(cfg: LandmarkConfig, name: str = "renderer") -> keras.Model:
    """Renderer: ``[features, maps]`` -> image.

    Inputs:
      ``features``: ``[B, h, h, C]`` appearance features Phi(x), ``C = encoder_channels(cfg)``.
      ``maps``: ``[B, h, h, K]`` Gaussian keypoint maps of the target.
    Output: ``[B, S, S, 3]`` float32 RGB on the ``[0, 255]`` scale (not clipped).

    At each resolution two conv3x3+BN+ReLU then bilinear x2 upsampling; filters mirror the
    encoder (official 256 at 16, 128 at 32, 64 at 64, 32 at 128). At full resolution the
    second conv is a plain conv3x3 to 3 channels (no BN, no activation); it predicts on a
    ``[0, 1]`` scale and a fixed x255 brings it to the input's scale. With
    ``cfg.stem_stride = 2`` that image is drawn at ``S / 2`` and upsampled bilinearly to ``S``.
    """
    h = cfg.heatmap_size
    features = keras.Input((h, h, encoder_channels(cfg)), name="features")
    maps = keras.Input((h, h, cfg.num_landmarks), name="maps")
    x = layers.Concatenate(name="concat")([features, maps])
    filters = encoder_channels(cfg)
    for i in range(cfg.num_downsamples + 1):
        last = i == cfg.num_downsamples
        x = conv_bn_relu(x, cfg, filters, 3, 1, f"render{i}a")
        if last:
            x = layers.Conv2D(
                3,
                3,
                padding="same",
                kernel_regularizer=kernel_regularizer(cfg),
                dtype="float32",
                name="to_rgb",
            )(x)
        else:
            x = conv_bn_relu(x, cfg, filters, 3, 1, f"render{i}b")
            x = layers.UpSampling2D(2, interpolation="bilinear", name=f"up{i}")(x)
            filters //= 2
    if cfg.stem_stride > 1:
        x = layers.UpSampling2D(cfg.stem_stride, interpolation="bilinear", dtype="float32", name="to_size")(x)
    image = layers.Rescaling(255.0, dtype="float32", name="to_pixels")(x)
    return keras.Model([features, maps], image, name=name)

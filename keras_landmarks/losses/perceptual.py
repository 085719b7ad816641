"""Perceptual reconstruction loss: a frozen VGG-19 with dict outputs by layer name.

The loss terms of one batch are per-example, per-layer masked squared errors
``e_l[b] = mean_{h,w,c}(mask_l * (G_l(x') - G_l(x_hat'))^2)`` (``G_input`` is the image
itself, in ``[0, 255]``). ``LandmarkModel`` turns them into ``1000 * sum_l e_l / alpha_l``
with EMA normalisers (``normalizer``); this module only computes features and errors.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import keras
from keras import ops

from keras_landmarks.config import PERCEPTUAL_LAYERS, PIXEL_LOSSES

if TYPE_CHECKING:
    from keras_landmarks.config import LandmarkConfig


IMAGENET_WEIGHTS_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
# Caffe-style VGG preprocessing (what keras.applications.vgg19.preprocess_input does):
# RGB -> BGR, minus the ImageNet mean per channel, no scaling.
VGG_MEAN_BGR = (103.939, 116.779, 123.68)


@keras.saving.register_keras_serializable(package="keras_landmarks")
class VGGPreprocess(keras.layers.Layer):
    """RGB ``[0, 255]`` ``[B, H, W, 3]`` -> VGG's caffe input (BGR, mean-subtracted)."""

    def call(self, images):
        bgr = ops.flip(images, axis=-1)
        return bgr - ops.convert_to_tensor(VGG_MEAN_BGR, dtype=bgr.dtype)


def loss_layers(cfg: LandmarkConfig) -> tuple[str, ...]:
    """Names of the loss terms: the 6 VGG taps, or the pixel loss's (``PIXEL_LOSSES``)."""
    return PIXEL_LOSSES.get(cfg.perceptual, PERCEPTUAL_LAYERS)


def imagenet_weights_path() -> str:
    """Where Keras caches the ImageNet VGG-19 (no top) weights: ``$KERAS_HOME/models/...``."""
    keras_home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    return os.path.join(keras_home, "models", IMAGENET_WEIGHTS_FILE)


def build_feature_extractor(cfg: LandmarkConfig, weights: str | None = "from_config"):
    """``feature_network(cfg.perceptual, cfg.image_size, cfg.seed, weights)``."""
    return feature_network(cfg.perceptual, cfg.image_size, cfg.seed, weights)


def feature_network(perceptual: str, image_size: int, seed: int = 0, weights: str | None = "from_config"):
    """Frozen VGG-19 extractor, or ``None`` for the pixel losses (``"l2"``, ``"l2_grad"``).

    Input ``[B, S, S, 3]`` float32 RGB in ``[0, 255]`` (``S = image_size``); output a dict
    ``{"block1_conv2": [B, S, S, 64], ..., "block5_conv2": [B, S/16, S/16, 512]}``.

    Args:
      perceptual: a ``LandmarkConfig.perceptual`` value.
      seed: seed of the ``"vgg19_random"`` weights.
      weights: ``"from_config"`` resolves ``perceptual`` (may download the ImageNet file);
        ``None`` builds seeded random weights (a placeholder until the real ones are read).
    Raises:
      FileNotFoundError: ImageNet weights neither cached nor downloadable, or a
        ``vgg19:<file>`` that does not exist; the message says what to do.
      ValueError: a ``vgg19:<file>`` that is not a VGG-19 (include_top=False) weights file.
    """
    if perceptual in PIXEL_LOSSES:
        return None
    if weights == "from_config":
        weights = _resolve_weights(perceptual)
    s = image_size
    inputs = keras.Input((s, s, 3), name="image")
    x = VGGPreprocess(name="vgg_preprocess")(inputs)
    try:
        vgg = keras.applications.VGG19(include_top=False, weights=weights, input_tensor=x)
    except Exception as err:  # Keras raises a bare Exception on a failed download.
        if weights == "imagenet" and not os.path.exists(imagenet_weights_path()):
            raise FileNotFoundError(_imagenet_missing_message()) from err
        if perceptual.startswith("vgg19:") and isinstance(err, (ValueError, OSError)):
            raise ValueError(_wrong_file_message(weights, err)) from err
        raise
    if weights is None:
        _seeded_init(vgg, seed)
    outputs = {name: vgg.get_layer(name).output for name in PERCEPTUAL_LAYERS[1:]}
    extractor = keras.Model(inputs, outputs, name="vgg19_features")
    extractor.trainable = False
    return extractor


def weights_on_disk(perceptual: str) -> bool:
    """Whether ``feature_network(perceptual, ...)`` can read its weights without the network:
    seeded random ones, the ImageNet file in Keras' cache, or an existing ``vgg19:<file>``."""
    if perceptual in PIXEL_LOSSES or perceptual == "vgg19_random":
        return True
    if perceptual == "vgg19_imagenet":
        return os.path.exists(imagenet_weights_path())
    return os.path.isfile(perceptual[len("vgg19:"):])


def features(extractor, images) -> dict:
    """``{layer: [B, h_l, w_l, C_l] float32}`` for every loss layer, ``"input"`` = the images."""
    out = {"input": ops.cast(images, "float32")}
    if extractor is not None:
        for name, value in extractor(images, training=False).items():
            out[name] = ops.cast(value, "float32")
    return out


def target_features(extractor, images) -> dict:
    """``features`` of the target ``x'`` as constants of the gradient: the images go in under
    ``stop_gradient`` (every backend), so no backend records the target's VGG pass for a
    backward pass, even when the images themselves are watched (BUILD.md, issue 28)."""
    return features(extractor, ops.stop_gradient(ops.convert_to_tensor(images)))


def per_example_errors(target_features: dict, predicted_features: dict, mask, layers) -> list:
    """Masked squared errors, one ``[B]`` float32 tensor per layer in ``layers``.

    Args:
      target_features, predicted_features: outputs of ``features``.
      mask: ``[B, S, S, 1]`` in ``[0, 1]`` (1 = counts), area-averaged to each layer.
    """
    errors = []
    for name in layers:
        if name == "gradients":
            t, p = (image_gradients(f["input"]) for f in (target_features, predicted_features))
        else:
            t, p = target_features[name], predicted_features[name]
        m = _resize_mask(ops.cast(mask, "float32"), t.shape[1], t.shape[2])
        errors.append(ops.mean(m * ops.square(t - p), axis=(1, 2, 3)))
    return errors


def image_gradients(images):
    """``[B, H, W, 2C]``: forward differences along x then y (``x[i+1] - x[i]``), zero in
    the last column / row; ``[B, H, W, C]`` float input. The ``"gradients"`` loss term."""
    dx = images[:, :, 1:] - images[:, :, :-1]
    dy = images[:, 1:] - images[:, :-1]
    dx = ops.pad(dx, ((0, 0), (0, 0), (0, 1), (0, 0)))
    dy = ops.pad(dy, ((0, 0), (0, 1), (0, 0), (0, 0)))
    return ops.concatenate([dx, dy], axis=-1)


def _resize_mask(mask, height: int, width: int):
    """Area average of ``[B, S, S, 1]`` down to ``[B, height, width, 1]``.

    VGG's resolutions divide the image size, so this is an exact block mean (average
    pooling, which XLA compiles; ``resize(..., "area")`` does not); bilinear otherwise.
    """
    if (mask.shape[1], mask.shape[2]) == (height, width):
        return mask
    fy, fx = mask.shape[1] // height, mask.shape[2] // width
    if fy * height == mask.shape[1] and fx * width == mask.shape[2]:
        return ops.average_pool(mask, (fy, fx), strides=(fy, fx), padding="valid")
    return ops.image.resize(mask, (height, width), interpolation="bilinear")


def _seeded_init(vgg, seed: int) -> None:
    """Re-draw random VGG weights from ``seed`` so "vgg19_random" is reproducible."""
    for i, layer in enumerate(vgg.layers):
        if isinstance(layer, keras.layers.Conv2D):
            init = keras.initializers.GlorotUniform(seed=seed * 1000 + i)
            layer.kernel.assign(init(layer.kernel.shape))
            layer.bias.assign(ops.zeros(layer.bias.shape))


def _resolve_weights(spec: str) -> str | None:
    if spec == "vgg19_random":
        return None
    if spec == "vgg19_imagenet":
        cached = imagenet_weights_path()
        return cached if os.path.exists(cached) else "imagenet"
    path = spec[len("vgg19:"):]
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"perceptual='vgg19:{path}': no such weights file. Pass the path of a VGG-19 "
            "(include_top=False) weights file, e.g. the output of "
            "trainers/pretrain_colorization.py or Keras' "
            f"{IMAGENET_WEIGHTS_FILE}."
        )
    return path


def _wrong_file_message(path: str, err: Exception) -> str:
    first = str(err).strip().splitlines()[0].rstrip(":") if str(err).strip() else type(err).__name__
    return (
        f"perceptual='vgg19:{path}': not a VGG-19 (include_top=False) weights file that Keras "
        f"can load ({type(err).__name__}: {first[:200]}). Pass the --output of "
        "trainers/pretrain_colorization.py (a .weights.h5; not its backup/ resume state), a "
        "Keras save_weights file of keras.applications.VGG19(include_top=False) (name ending "
        f"in .weights.h5), or Keras' {IMAGENET_WEIGHTS_FILE} (legacy .h5)."
    )


def _imagenet_missing_message() -> str:
    return (
        "ImageNet VGG-19 weights are not in the Keras cache and could not be downloaded "
        f"(offline?). Either copy {IMAGENET_WEIGHTS_FILE} (from "
        "https://storage.googleapis.com/tensorflow/keras-applications/vgg19/) to "
        f"{imagenet_weights_path()}, or pass its location with "
        "--perceptual=vgg19:/path/to/file.h5 (LandmarkConfig(perceptual='vgg19:...')), "
        "or train without ImageNet: --perceptual=vgg19_random, --perceptual=l2, or a "
        "colorization-pretrained VGG (trainers/pretrain_colorization.py)."
    )

"""Perceptual loss: masked errors vs numpy, gradients under the mask, weight sources."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_landmarks import LandmarkConfig
from keras_landmarks.losses import perceptual
from keras_landmarks.config import PERCEPTUAL_LAYERS

S = 32


def _images(seed, n=2):
    return np.random.default_rng(seed).uniform(0, 255, (n, S, S, 3)).astype("float32")


def _area_resize(mask, h):
    """Exact block average of a [B, S, S, 1] mask down to [B, h, h, 1] (S divisible by h)."""
    f = mask.shape[1] // h
    return mask.reshape(mask.shape[0], h, f, h, f, 1).mean(axis=(2, 4))


def test_masked_errors_match_numpy_reference():
    cfg = LandmarkConfig(image_size=S, perceptual="vgg19_random")
    extractor = perceptual.build_feature_extractor(cfg)
    a, b = _images(0), _images(1)
    mask = np.zeros((2, S, S, 1), "float32")
    mask[:, :, S // 2:] = 1.0  # right half counts
    fa, fb = perceptual.features(extractor, a), perceptual.features(extractor, b)
    errors = perceptual.per_example_errors(fa, fb, mask, PERCEPTUAL_LAYERS)
    for name, err in zip(PERCEPTUAL_LAYERS, errors):
        ta, tb = keras.ops.convert_to_numpy(fa[name]), keras.ops.convert_to_numpy(fb[name])
        m = _area_resize(mask, ta.shape[1])
        want = (m * (ta - tb) ** 2).mean(axis=(1, 2, 3))
        np.testing.assert_allclose(keras.ops.convert_to_numpy(err), want, rtol=1e-4, err_msg=name)


def test_vgg_preprocessing_is_keras_caffe_preprocessing():
    x = _images(2)
    want = keras.applications.vgg19.preprocess_input(x.copy())
    got = keras.ops.convert_to_numpy(perceptual.VGGPreprocess()(x))
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_pixel_loss_gradient_is_zero_exactly_where_masked():
    cfg = LandmarkConfig(image_size=S, perceptual="l2")
    target, pred = _images(3), tf.Variable(_images(4))
    mask = np.ones((2, S, S, 1), "float32")
    mask[:, :8] = 0.0  # top rows masked out
    with tf.GradientTape() as tape:
        err = perceptual.per_example_errors(
            perceptual.features(None, target), perceptual.features(None, pred), mask,
            perceptual.loss_layers(cfg),
        )
        loss = tf.reduce_sum(err)
    grad = tape.gradient(loss, pred).numpy()
    assert np.all(grad[:, :8] == 0.0)
    # Closed form elsewhere: d/dp mean(m (t - p)^2) = -2 m (t - p) / (S*S*3).
    want = -2.0 * mask * (target - pred.numpy()) / (S * S * 3)
    np.testing.assert_allclose(grad, want, rtol=1e-4, atol=1e-9)
    # Changing the target where it is masked does not change the loss.
    target2 = target.copy()
    target2[:, :8] = 0.0
    err2 = perceptual.per_example_errors(
        perceptual.features(None, target2), perceptual.features(None, pred), mask, ("input",)
    )
    np.testing.assert_allclose(err2[0].numpy(), err[0].numpy(), rtol=1e-6)


def test_vgg19_weights_file_round_trips_into_the_extractor(tmp_path):
    vgg = keras.applications.VGG19(include_top=False, weights=None, input_shape=(S, S, 3))
    for i, w in enumerate(vgg.weights):  # distinctive, non-default values
        w.assign(np.random.default_rng(i).normal(0, 0.05, w.shape).astype("float32"))
    path = str(tmp_path / "vgg.weights.h5")
    vgg.save_weights(path)
    extractor = perceptual.build_feature_extractor(
        LandmarkConfig(image_size=S, perceptual=f"vgg19:{path}")
    )
    x = _images(5)
    want = keras.Model(vgg.input, vgg.get_layer("block3_conv2").output)(
        keras.applications.vgg19.preprocess_input(x.copy())
    )
    got = extractor(x)["block3_conv2"]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(got), keras.ops.convert_to_numpy(want),
                               rtol=1e-4, atol=1e-4)
    assert not extractor.trainable_weights


def test_missing_weights_file_names_the_path(tmp_path):
    missing = str(tmp_path / "nope.h5")
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        perceptual.build_feature_extractor(LandmarkConfig(image_size=S, perceptual=f"vgg19:{missing}"))


def test_offline_imagenet_gives_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # empty cache

    def offline(*args, **kwargs):  # what keras.utils.get_file raises with no network
        raise Exception("URL fetch failure on https://...: None -- [Errno -2] Name or service not known")

    monkeypatch.setattr(keras.src.applications.vgg19.file_utils, "get_file", offline)
    with pytest.raises(FileNotFoundError) as info:
        perceptual.build_feature_extractor(LandmarkConfig(image_size=S))
    message = str(info.value)
    assert os.path.join(str(tmp_path), "models", perceptual.IMAGENET_WEIGHTS_FILE) in message
    assert "--perceptual=vgg19:" in message and "vgg19_random" in message


def test_random_vgg_is_reproducible_from_the_seed():
    cfg = LandmarkConfig(image_size=S, perceptual="vgg19_random", seed=3)
    a = perceptual.build_feature_extractor(cfg)
    b = perceptual.build_feature_extractor(cfg)
    c = perceptual.build_feature_extractor(cfg.replace(seed=4))
    x = _images(6)
    fa, fb, fc = (keras.ops.convert_to_numpy(m(x)["block2_conv2"]) for m in (a, b, c))
    np.testing.assert_array_equal(fa, fb)
    assert not np.allclose(fa, fc)


def test_l2_grad_adds_the_masked_error_of_forward_differences():
    cfg = LandmarkConfig(image_size=S, perceptual="l2_grad")
    assert perceptual.loss_layers(cfg) == ("input", "gradients")
    assert perceptual.build_feature_extractor(cfg) is None
    target, pred = _images(5), _images(6)
    mask = np.ones((2, S, S, 1), "float32")
    mask[:, :, :5] = 0.0
    err = perceptual.per_example_errors(perceptual.features(None, target), perceptual.features(None, pred),
                                        mask, perceptual.loss_layers(cfg))
    d = target.astype(np.float64) - pred
    want_pixels = (mask * d**2).mean(axis=(1, 2, 3))
    dx = np.zeros_like(d)
    dy = np.zeros_like(d)
    dx[:, :, :-1] = d[:, :, 1:] - d[:, :, :-1]
    dy[:, :-1] = d[:, 1:] - d[:, :-1]
    want_grad = (mask * np.concatenate([dx, dy], -1) ** 2).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(err[0].numpy(), want_pixels, rtol=1e-5)
    np.testing.assert_allclose(err[1].numpy(), want_grad, rtol=1e-5)
    # A constant offset between target and prediction has zero gradient error.
    shifted = perceptual.per_example_errors(perceptual.features(None, target), perceptual.features(None, target + 7.0),
                                            mask, ("gradients",))
    np.testing.assert_allclose(shifted[0].numpy(), 0.0, atol=1e-6)


def test_pixel_losses_are_not_normalised():
    from keras_landmarks.losses import normalizer

    assert normalizer.initial_alpha("l2_grad", (9.0,) * 6) == (1.0, 1.0)
    assert normalizer.decay("l2_grad", 0.99) == 1.0 and normalizer.decay("vgg19_random", 0.99) == 0.99

"""PerceptualLoss, the loss layer: its numbers against the functions it wraps, its config, and
its saving (alpha only: the frozen VGG is rebuilt from the config, also where its weights file
has gone)."""

import os
import shutil
import zipfile

import keras
import numpy as np
import pytest

from keras_landmarks import LandmarkConfig, LandmarkModel
from keras_landmarks.losses import normalizer, perceptual
from keras_landmarks.losses.perceptual_loss import PerceptualLoss

S = 32
SMALL = LandmarkConfig(image_size=S, width=4, num_landmarks=4, heatmap_size=8, perceptual="vgg19_random")


def _batch(n=2, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 255, (n, S, S, 3)).astype("float32")
    mask = np.ones((n, S, S, 1), "float32")
    mask[:, :, :6] = 0.0
    return {"image": x, "future_image": np.roll(x, 2, axis=1), "mask": mask}


@pytest.mark.parametrize("kind", ["vgg19_random", "l2", "l2_grad"])
def test_loss_is_the_normalised_sum_of_the_masked_errors(kind):
    layer = PerceptualLoss(kind, S, seed=3)
    data = _batch()
    target, pred = data["future_image"], data["image"]
    out = layer(target, pred, data["mask"], training=True)
    errors = perceptual.per_example_errors(perceptual.features(layer.feature_extractor, target),
                                           perceptual.features(layer.feature_extractor, pred), data["mask"],
                                           layer.terms)
    e = np.stack([keras.ops.convert_to_numpy(x) for x in errors], axis=1)  # [B, L]
    a0 = np.array(normalizer.initial_alpha(kind, LandmarkConfig().alpha_init))
    rho = normalizer.decay(kind, 0.99)
    alpha = rho * a0 + (1 - rho) * e.mean(0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out["errors"]), e.mean(0), rtol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out["alpha"]), alpha, rtol=1e-5)
    assert float(out["loss"]) == pytest.approx(1000 * np.sum(e / alpha) / len(e), rel=1e-5)
    np.testing.assert_allclose(layer.alpha.numpy(), alpha, rtol=1e-5)  # updated in training
    layer(target, pred, data["mask"], training=False)
    np.testing.assert_allclose(layer.alpha.numpy(), alpha, rtol=1e-5)  # not outside it


def test_config_round_trip_and_dtype_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        layer = PerceptualLoss("vgg19_random", S, alpha_init=(1, 2, 3, 4, 5, 6), alpha_decay=0.9, loss_scale=10,
                               seed=2)
        config = layer.get_config()
        again = PerceptualLoss.from_config(config)
        assert again.get_config() == config and config["dtype"]["config"]["name"] == "float32"
        data = _batch()
        out = layer(data["future_image"], data["image"])
        assert keras.backend.standardize_dtype(out["loss"].dtype) == "float32"
        assert layer.feature_extractor.layers[2].compute_dtype == "bfloat16"  # the VGG runs in the policy
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_saved_model_holds_no_vgg_and_rebuilds_it_from_the_config(tmp_path):
    model = LandmarkModel(SMALL)
    model.compile(optimizer="adam")
    data = _batch(4)
    model.fit({k: np.concatenate([v] * 2) for k, v in data.items()}, batch_size=4, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    with zipfile.ZipFile(path) as z:
        weights = z.getinfo("model.weights.h5").file_size
    vgg = sum(int(np.prod(w.shape)) for w in model.perceptual_loss.feature_extractor.weights) * 4
    assert vgg > 60e6 and weights < 2e6, (vgg, weights)  # 61 MB of VGG-19 (to block5_conv2) not written
    model.save_weights(str(tmp_path / "w.weights.h5"))
    assert os.path.getsize(tmp_path / "w.weights.h5") < 2e6
    loaded = keras.models.load_model(path)
    for a, b in zip(loaded.perceptual_loss.feature_extractor.weights, model.perceptual_loss.feature_extractor.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
    np.testing.assert_array_equal(loaded.alpha.numpy(), model.alpha.numpy())
    assert loaded.evaluate(data, batch_size=4, verbose=0) == pytest.approx(model.evaluate(data, batch_size=4, verbose=0),
                                                                          rel=1e-6)


def test_a_model_whose_vgg_file_is_gone_loads_and_predicts_and_says_so_when_training(tmp_path):
    vgg = keras.applications.VGG19(include_top=False, weights=None, input_shape=(S, S, 3))
    file = str(tmp_path / "vgg.weights.h5")
    vgg.save_weights(file)
    model = LandmarkModel(SMALL.replace(perceptual=f"vgg19:{file}"))
    model.compile(optimizer="adam")
    data = _batch()
    model(data)
    model.optimizer.build(model.trainable_variables)
    path = str(tmp_path / "model.keras")
    model.save(path)
    moved = shutil.move(file, str(tmp_path / "elsewhere.weights.h5"))
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded.detector(data["image"])["keypoints"]),
                                  keras.ops.convert_to_numpy(model.detector(data["image"])["keypoints"]))
    with pytest.raises(FileNotFoundError, match="vgg.weights.h5"):
        loaded.evaluate(data, verbose=0)
    shutil.move(moved, file)
    assert loaded.evaluate(data, verbose=0) == pytest.approx(model.evaluate(data, verbose=0), rel=1e-6)

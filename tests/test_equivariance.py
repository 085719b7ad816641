"""The optional equivariance term (``losses.equivariance``, ``config.equivariance_weight``).

Backend-neutral (no TensorFlow here): ``tests/test_backends.py`` runs this file again under
JAX and PyTorch. The warp's convention is checked against a blob's centroid, the error
against NumPy, the model's loss against the closed form of its two parts.
"""

import keras
import numpy as np
import pytest

from keras_landmarks import LandmarkConfig, LandmarkModel
from keras_landmarks.config import SimilarityParams
from keras_landmarks.losses import equivariance

S = 33  # odd: pixel 16 is the centre, normalised 0


def _blob(points, size=S, sigma=1.5):
    """``[B, size, size, 1]`` images with a Gaussian blob at each normalised ``(x, y)`` point."""
    pix = (np.asarray(points, "float64") + 1.0) * (size - 1) / 2.0
    yy, xx = np.mgrid[0:size, 0:size]
    d2 = (xx[None] - pix[:, 0, None, None]) ** 2 + (yy[None] - pix[:, 1, None, None]) ** 2
    return np.exp(-d2 / (2 * sigma**2))[..., None].astype("float32")


def _centroid(images):
    """Intensity-weighted centre of each ``[B, S, S, 1]`` image, normalised ``(x, y)`` ``[B, 2]``."""
    img = images[..., 0].astype("float64")
    size = img.shape[1]
    yy, xx = np.mgrid[0:size, 0:size]
    total = img.sum(axis=(1, 2))
    pix = np.stack([(img * xx).sum(axis=(1, 2)) / total, (img * yy).sum(axis=(1, 2)) / total], axis=-1)
    return pix / ((size - 1) / 2.0) - 1.0


def _matrices(n, seed=0, params=SimilarityParams(rotation_deg=20.0, scale=0.15, translation=0.1)):
    return keras.ops.convert_to_numpy(
        equivariance.random_similarities(keras.random.SeedGenerator(seed), n, params))


def test_random_similarities_are_scaled_rotations():
    m = _matrices(400)
    a = m[:, :, :2]
    # s R(theta): A^T A = s^2 I and det A = s^2 > 0.
    s2 = np.linalg.det(a)
    assert (s2 > 0).all()
    np.testing.assert_allclose(np.einsum("bji,bjk->bik", a, a), s2[:, None, None] * np.eye(2), atol=1e-5)
    theta = np.degrees(np.arctan2(a[:, 1, 0], a[:, 0, 0]))
    assert 16.0 < theta.std() < 24.0  # N(0, 20 deg), 400 samples: the std within ~10 %
    assert 0.11 < np.sqrt(s2).std() < 0.19 and 0.08 < m[:, :, 2].std() < 0.12
    none = _matrices(3, params=SimilarityParams(rotation_deg=0.0, scale=0.0, translation=0.0))
    np.testing.assert_allclose(none, np.tile([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], (3, 1, 1)), atol=1e-6)


def test_apply_is_the_matrix_product():
    m = _matrices(3, seed=1)
    q = np.random.default_rng(0).uniform(-1, 1, (3, 5, 2)).astype("float32")
    expected = np.einsum("bij,bkj->bki", m[:, :, :2], q) + m[:, None, :, 2]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(equivariance.apply(m, q)), expected, atol=1e-6)


def test_a_blob_on_the_warped_image_maps_back_onto_the_original_blob():
    """The convention the term rests on: the point q seen on ``warp_images(x, M)`` shows x's
    point ``M q``. Blobs near the centre and mild warps keep the blob off the border."""
    rng = np.random.default_rng(2)
    p = rng.uniform(-0.3, 0.3, (6, 2))
    m = _matrices(6, seed=3, params=SimilarityParams(rotation_deg=15.0, scale=0.1, translation=0.1))
    warped = keras.ops.convert_to_numpy(equivariance.warp_images(_blob(p), m))
    q = _centroid(warped)
    mapped = keras.ops.convert_to_numpy(equivariance.apply(m, q[:, None].astype("float32")))[:, 0]
    # 0.01 normalised = 0.16 px at 33 px; a wrong offset or transposed A is off by >= 0.05.
    np.testing.assert_allclose(mapped, p, atol=0.01)
    identity = np.tile([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], (6, 1, 1)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(equivariance.warp_images(_blob(p), identity)),
                               _blob(p), atol=1e-5)


def test_per_example_errors_are_the_mean_squared_distance():
    m = _matrices(4, seed=4)
    rng = np.random.default_rng(5)
    p, q = (rng.uniform(-1, 1, (4, 3, 2)).astype("float32") for _ in range(2))
    mq = np.einsum("bij,bkj->bki", m[:, :, :2], q) + m[:, None, :, 2]
    expected = ((mq - p) ** 2).sum(-1).mean(-1)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(equivariance.per_example_errors(p, q, m)),
                               expected, rtol=1e-5)
    # An exactly equivariant answer (q = M^-1 p) scores 0.
    a_inv = np.linalg.inv(m[:, :, :2])
    exact = np.einsum("bij,bkj->bki", a_inv, p - m[:, None, :, 2]).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(equivariance.per_example_errors(p, exact, m)), 0.0,
                               atol=1e-10)


def test_the_config_refuses_a_negative_weight_and_round_trips():
    with pytest.raises(ValueError, match="equivariance_weight"):
        LandmarkConfig(equivariance_weight=-1.0)
    cfg = LandmarkConfig(equivariance_weight=0.5,
                         equivariance_warp=SimilarityParams(rotation_deg=3.0, scale=0.2, translation=0.0))
    assert LandmarkConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(TypeError):  # a WarpParams' TPS fields are not a similarity's
        LandmarkConfig.from_dict({**cfg.to_dict(), "equivariance_warp": {"a": 0.0, **cfg.to_dict()["equivariance_warp"]}})


M = 32
ON = LandmarkConfig(image_size=M, width=8, num_landmarks=4, heatmap_size=8, perceptual="l2", batch_size=4,
                    equivariance_weight=0.25)


def _pairs(n=4, seed=0):
    x = np.random.default_rng(seed).uniform(0, 255, (n, M, M, 3)).astype("float32")
    return {"image": x, "future_image": np.roll(x, 3, axis=2)}


def test_the_training_loss_is_the_reconstruction_plus_the_weighted_term():
    """``compute_loss`` in training = the off model's loss on the same outputs + weight *
    loss_scale * mean error; the tracker reports that term; inference has no term. A zero
    mask keeps the reconstruction part (~1e7 in float32) from drowning the difference."""
    keras.utils.set_random_seed(0)
    model = LandmarkModel(ON)
    data = {**_pairs(), "mask": np.zeros((4, M, M, 1), "float32")}
    out = model(data, training=True)
    errors = keras.ops.convert_to_numpy(out["equivariance_errors"])
    assert errors.shape == (4,) and np.isfinite(errors).all() and (errors > 0).all()
    loss = float(keras.ops.convert_to_numpy(model.compute_loss(x=data, y_pred=out, training=True)))
    without = {k: v for k, v in out.items() if k != "equivariance_errors"}
    base = float(keras.ops.convert_to_numpy(model.compute_loss(x=data, y_pred=without, training=True)))
    np.testing.assert_allclose(loss - base, 0.25 * 1000.0 * errors.mean(), rtol=1e-4)
    names = [m.name for m in model.metrics]
    assert names[-1] == "loss_equivariance"
    np.testing.assert_allclose(float(model.metrics[-1].result()), 0.25 * 1000.0 * errors.mean(), rtol=1e-4)
    assert "equivariance_errors" not in model(data, training=False)
    assert "loss_equivariance" not in [m.name for m in LandmarkModel(ON.replace(equivariance_weight=0.0)).metrics]


def test_fit_with_the_term_trains_and_saves(tmp_path):
    keras.utils.set_random_seed(0)
    model = LandmarkModel(ON)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    data = _pairs(8)
    history = model.fit(data, batch_size=4, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all() and np.isfinite(history.history["loss_equivariance"]).all()
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.config.equivariance_weight == 0.25
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded.detector(data["future_image"])["keypoints"]),
                               keras.ops.convert_to_numpy(model.detector(data["future_image"])["keypoints"]),
                               atol=1e-5)

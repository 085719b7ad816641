"""Label-free diagnostics (keras_landmarks.evaluation.diagnostics) on constructed cases with a
known answer: a constant detector, a detector that follows a blob (equivariant up to the
blob's own deformation), keypoints with a known spread, and a renderer that ignores its maps."""

import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_landmarks import LandmarkConfig, LandmarkModel
from keras_landmarks.config import TARGET_WARP
from keras_landmarks.evaluation import diagnostics as diag
from keras_landmarks.pairs import tps, warps

S = 64


class Constant:
    """A detector that ignores the image: the same K points for every input."""

    def __init__(self, points):
        self.points = np.asarray(points, np.float32)

    def __call__(self, images, training=False):
        n = int(tf.shape(images)[0])
        return {"keypoints": tf.constant(np.broadcast_to(self.points, (n, *self.points.shape)))}


class BlobFinder:
    """The intensity centroid of the red channel: follows a bright blob."""

    def __call__(self, images, training=False):
        red = images[..., 0]
        weight = red / tf.reduce_sum(red, axis=[1, 2], keepdims=True)
        grid = np.linspace(-1.0, 1.0, S, dtype=np.float32)
        x = tf.reduce_sum(weight * grid[None, None, :], axis=[1, 2])
        y = tf.reduce_sum(weight * grid[None, :, None], axis=[1, 2])
        return {"keypoints": tf.stack([x, y], -1)[:, None, :]}


def _blobs(n=8, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(16, S - 17, (n, 2))
    yy, xx = np.mgrid[0:S, 0:S]
    images = np.zeros((n, S, S, 3), np.float32)
    for i, (cx, cy) in enumerate(centres):
        images[i, ..., 0] = 255.0 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 1.5**2))
    return images, centres


def test_a_constant_detector_scores_the_warps_own_displacement():
    images, _ = _blobs()
    # Points at pixel centres (10, 20) and (40, 33): where tps_warp_grid samples exactly.
    pix = np.array([[10, 20], [40, 33]], np.float64)
    out = diag.equivariance_error(Constant(pix / (S - 1) * 2 - 1), images, seed=(3, 4))
    weights, affine = warps.random_tps_params(tf.constant((3, 4), tf.int64), len(images), TARGET_WARP)
    grid = tps.tps_warp_grid(weights, affine, S, S).numpy()  # s(p) at every pixel centre, normalised
    s = np.stack([grid[:, 20, 10], grid[:, 33, 40]], axis=1)  # [B, 2 points, 2]
    expected = np.linalg.norm(s - (pix / (S - 1) * 2 - 1)[None], axis=-1) * (S - 1) / 2
    assert out["equivariance_px"] == pytest.approx(expected.mean(), rel=1e-4)
    assert out["per_keypoint_px"] == pytest.approx(expected.mean(0), rel=1e-4)
    assert out["equivariance_percent"] == pytest.approx(100 * expected.mean() / S, rel=1e-4)
    assert out["equivariance_px"] > 1.0  # the target warp moves points by pixels


def test_a_detector_that_follows_the_content_is_nearly_equivariant():
    images, centres = _blobs()
    found = (BlobFinder()(images)["keypoints"].numpy()[:, 0] + 1) * (S - 1) / 2
    np.testing.assert_allclose(found, centres, atol=0.05)  # it does find the blobs
    follower = diag.equivariance_error(BlobFinder(), images, seed=(3, 4))
    constant = diag.equivariance_error(Constant([[0.0, 0.0]]), images, seed=(3, 4))
    assert follower["equivariance_px"] < 0.15 < 1.0 < constant["equivariance_px"]


def test_keypoint_use_counts_collapsed_and_border_points():
    rng = np.random.default_rng(1)
    n = 50
    moving = rng.normal(0.0, 0.2, (n, 2))
    kp = np.stack([np.zeros((n, 2)), moving, np.full((n, 2), -1.0), np.full((n, 2), [0.3, 0.999])], axis=1)
    out = diag.keypoint_use(kp, S)
    px = (kp + 1) * (S - 1) / 2
    spread = [np.sqrt((np.var(px[:, k, 0]) + np.var(px[:, k, 1])) / 2) for k in range(4)]
    assert out["spread_px"] == pytest.approx(spread)
    assert out["collapsed"] == 3  # the centre, the corner and the edge point never move
    assert out["at_border"] == 2  # the corner (-1, -1) and the point at y = 0.999
    assert out["mean_spread_px"] == pytest.approx(np.mean(spread))


def _model():
    cfg = LandmarkConfig(image_size=32, width=4, num_landmarks=4, heatmap_size=8, perceptual="l2")
    return LandmarkModel(cfg), cfg


def _pairs(n=4):
    rng = np.random.default_rng(2)
    image = rng.uniform(0, 255, (n, 32, 32, 3)).astype("float32")
    return {"image": image, "future_image": np.roll(image, 2, axis=1)}


def _with(model, **parts):
    """The model's parts with some replaced (a built Keras model takes no new layers)."""
    names = ("appearance_encoder", "gaussian_maps", "renderer", "perceptual_loss", "config", "detector")
    ns = types.SimpleNamespace(**{n: parts.get(n, getattr(model, n)) for n in names})
    ns.generate = lambda images, keypoints: LandmarkModel.generate(ns, images, keypoints)
    return ns


def _maps_only_renderer(cfg, appearance_shape, maps_shape):
    """An image drawn from the keypoint maps alone: their sum, upsampled, times 255."""
    appearance, maps = keras.Input(appearance_shape), keras.Input(maps_shape)
    x = keras.layers.Lambda(lambda m: 255.0 * keras.ops.repeat(keras.ops.sum(m, -1, keepdims=True), 3, -1))(maps)
    return keras.Model([appearance, maps], keras.layers.UpSampling2D(32 // cfg.heatmap_size)(x))


def test_renderer_reliance_is_one_when_the_renderer_ignores_its_maps_and_large_when_it_draws_them():
    model, cfg = _model()
    batch = _pairs()
    model(batch)
    shapes = model.renderer.inputs[0].shape[1:], model.renderer.inputs[1].shape[1:]
    appearance, maps = keras.Input(shapes[0]), keras.Input(shapes[1])
    x = keras.layers.UpSampling2D(32 // cfg.heatmap_size)(keras.layers.Conv2D(3, 1)(appearance))
    ignoring = _with(model, renderer=keras.Model([appearance, maps], x))  # maps unused
    out = diag.renderer_reliance(ignoring, batch)
    assert out["reliance"] == pytest.approx(1.0, abs=1e-6) and out["loss_own"] > 0
    # A renderer that draws its maps, targets drawn from distinct per-image points (+ noise).
    points = np.array([[[-0.5 + 0.3 * i, 0.4 - 0.25 * i]] * 4 for i in range(4)], np.float32)
    drawing = _with(model, renderer=_maps_only_renderer(cfg, *shapes),
                    detector=lambda images, training=False: {"keypoints": tf.constant(points)})
    target = drawing.renderer([tf.zeros([4, *shapes[0]]), model.gaussian_maps(points)]).numpy()
    target += np.random.default_rng(0).normal(0, 1.0, target.shape).astype("float32")
    out = diag.renderer_reliance(drawing, {"image": batch["image"], "future_image": target})
    assert out["reliance"] > 10.0, out


def test_the_own_keypoint_loss_is_the_model_s_loss():
    model, _ = _model()
    batch = _pairs()
    model.compile(optimizer="adam")
    expected = float(model.test_step(batch)["loss"])
    out = diag.renderer_reliance(model, batch)
    assert out["loss_own"] == pytest.approx(expected, rel=1e-5)
    # An untrained model: the renderer barely uses its maps yet, so reliance is ~1 (not learning).
    assert out["reliance"] == pytest.approx(1.0, abs=1e-2)
    report = diag.diagnose(model, batch)
    assert {"equivariance_px", "collapsed", "at_border", "reliance"} <= set(report)
    assert "renderer reliance" in diag.format_diagnostics(report)


def test_cli_prints_and_writes_the_diagnostics_of_a_saved_model(tmp_path):
    import json
    import os
    import subprocess
    import sys

    from keras_landmarks import data

    model, cfg = _model()
    model(_pairs())
    model.save(tmp_path / "m.keras")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, os.path.join(root, "trainers", "diagnose.py"), f"--model={tmp_path}/m.keras",
                           "--dataset=synthetic", "--num_images=6", f"--output={tmp_path}/d.json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "renderer reliance" in proc.stdout and "collapsed" in proc.stdout
    written = json.loads((tmp_path / "d.json").read_text())
    pairs = data.training_pairs("synthetic", image_size=32, batch_size=6, seed=0, target_warp=cfg.target_warp,
                                source_warp=cfg.source_warp)
    batch = {k: v for k, v in next(iter(pairs.take(1))).items() if k in ("image", "future_image", "mask")}
    expected = diag.diagnose(keras.models.load_model(tmp_path / "m.keras"), batch, seed=(0, 1))
    for key in ("equivariance_px", "collapsed", "at_border", "reliance", "mean_spread_px", "consistency_ratio",
                "shape_ratio", "patch_gain"):
        assert written[key] == pytest.approx(expected[key], rel=1e-4, abs=1e-6), key
    assert written["verdict"] == expected["verdict"] and proc.stdout.count(expected["verdict"].upper() + ":") == 1


def test_the_equivariance_ratio_is_one_for_a_constant_detector_and_near_zero_for_a_follower():
    images, _ = _blobs()
    for params in (TARGET_WARP, diag.CONSISTENCY_WARP):
        constant = diag.equivariance_error(Constant([[0.1, -0.2], [0.5, 0.3]]), images, seed=(3, 4), params=params)
        # A detector that ignores the image: |s(p') - p| and |s(p') - p'| are the same distances.
        assert constant["equivariance_ratio"] == pytest.approx(1.0, abs=1e-6)
        assert constant["displacement_px"] == pytest.approx(constant["equivariance_px"], rel=1e-6)
        follower = diag.equivariance_error(BlobFinder(), images, seed=(3, 4), params=params)
        assert follower["equivariance_ratio"] < 0.1, (params, follower)
    # The consistency warp moves points several times more than the training target warp.
    small = diag.equivariance_error(Constant([[0.0, 0.0]]), images, seed=(3, 4))["displacement_px"]
    large = diag.equivariance_error(Constant([[0.0, 0.0]]), images, seed=(3, 4),
                                    params=diag.CONSISTENCY_WARP)["displacement_px"]
    assert large > 1.5 * small


def _similar_shapes(n=60, k=8, noise=0.0, seed=0):
    """``[n, k, 2]``: one configuration under random similarities (+ optional per-point noise)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(k, 2))
    angle, scale = rng.normal(0, 0.3, n), np.exp(rng.normal(0, 0.2, n))
    rot = np.stack([np.stack([np.cos(angle), -np.sin(angle)], -1), np.stack([np.sin(angle), np.cos(angle)], -1)], -2)
    pts = np.einsum("bij,kj->bki", rot, base) * scale[:, None, None] + rng.normal(size=(n, 1, 2))
    return pts + noise * rng.normal(size=pts.shape)


def test_shape_consistency_separates_one_moving_object_from_independent_points():
    assert diag.shape_consistency(_similar_shapes())["shape_ratio"] < 1e-9  # exactly one shape
    noisy = diag.shape_consistency(_similar_shapes(noise=0.05))
    assert 0.01 < noisy["shape_ratio"] < 0.1
    independent = diag.shape_consistency(np.random.default_rng(1).normal(size=(60, 8, 2)))
    assert independent["shape_ratio"] > 0.7
    assert diag.shape_consistency(np.zeros((10, 8, 2)))["shape_ratio"] == 1.0  # a constant detector


def test_patch_consistency_is_high_on_one_kind_of_feature_and_zero_on_random_places():
    rng = np.random.default_rng(0)
    n, size = 40, 32
    images = rng.uniform(0, 255, (n, size, size, 3))
    cross = np.array([[0, 255, 0], [255, 255, 255], [0, 255, 0]], np.float64)
    centres = rng.integers(4, size - 4, (n, 2))
    for im, (x, y) in zip(images, centres):
        im[y - 2:y + 3, x - 2:x + 3] = 0.0
        im[y - 1:y + 2, x - 1:x + 2] = cross[..., None]
    on_feature = centres[:, None, :] / (size - 1) * 2 - 1
    out = diag.patch_consistency(images, on_feature)
    assert out["patch_gain"] > 0.5
    elsewhere = rng.integers(4, size - 4, (n, 1, 2)) / (size - 1) * 2 - 1
    assert abs(diag.patch_consistency(images, elsewhere)["patch_gain"]) < 0.1


def test_the_verdict_follows_its_documented_thresholds():
    ok = {"consistency_ratio": 0.6, "patch_gain": 0.2, "spread_px": [1.0, 2.0], "collapsed": 0, "reliance": 2.0}
    assert diag.verdict(ok) == "learning"
    assert diag.verdict({**ok, "consistency_ratio": diag.NOT_LEARNING_CONSISTENCY}) == "not learning"
    assert diag.verdict({**ok, "consistency_ratio": diag.LEARNING_CONSISTENCY}) == "unclear"
    assert diag.verdict({**ok, "patch_gain": diag.NOT_LEARNING_PATCH_GAIN - 1e-3}) == "not learning"
    assert diag.verdict({**ok, "patch_gain": diag.LEARNING_PATCH_GAIN - 1e-3}) == "unclear"
    assert diag.verdict({**ok, "collapsed": 2}) == "not learning"
    assert diag.verdict({**ok, "reliance": 1.01}) == "not learning"
    # Points that follow the content closely (an equivariance-trained detector) are learning even
    # before they sit on one kind of patch or the renderer uses them; not when all collapsed.
    close = {**ok, "consistency_ratio": diag.FOLLOWS_CONTENT - 1e-3, "patch_gain": -0.02, "reliance": 1.0}
    assert diag.verdict(close) == "learning"
    assert diag.verdict({**close, "consistency_ratio": diag.FOLLOWS_CONTENT}) == "not learning"
    assert diag.verdict({**close, "collapsed": 2}) == "not learning"

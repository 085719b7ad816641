"""The NumPy/OpenCV warps (``pairs.numpy_warps``, ``pairs.philox``) against the TensorFlow ones
and closed forms: one seed, the same warps in every pipeline."""

import numpy as np
import pytest
import tensorflow as tf

from keras_landmarks.config import SOURCE_WARP, TARGET_WARP, WarpParams
from keras_landmarks.pairs import numpy_warps, philox, tps, warps

# int32 and int64 seeds, negative ones and ones past 32 bits (the counter's high words)
SEEDS = [(0, 0), (5, 6), (-3, 2**31 - 1), (123456789012, -98765)]


@pytest.mark.parametrize("seed", SEEDS)
def test_philox_bits_equal_tensorflow_stateless_bits(seed):
    dtype = tf.int64 if max(abs(v) for v in seed) >= 2**31 else tf.int32
    for shape in [(7,), (3, 5), (50, 604)]:
        want = tf.random.stateless_uniform(shape, tf.constant(seed, dtype), minval=None, maxval=None,
                                           dtype=tf.int32, alg="philox").numpy()
        np.testing.assert_array_equal(philox.int32_bits(seed, shape), want)
    np.testing.assert_array_equal(philox.split_seed(seed), warps.split_seed(tf.constant(seed, dtype)).numpy())


def test_normals_match_tensorflow_to_a_few_ulps_with_the_same_signs():
    bits = tf.random.stateless_uniform([100000], [1, 2], minval=None, maxval=None, dtype=tf.int32, alg="philox")
    extremes = tf.constant([0, -1, 2**31 - 1, -(2**31), 511, 512, 2**22], tf.int32)  # u at its ends and near 1/2
    for b in (bits, extremes):
        want, got = warps.normal_from_bits(b).numpy(), philox.normal_from_bits(b.numpy())
        assert got.dtype == np.float32 and np.all(np.isfinite(got)) and np.abs(got).max() <= 5.3
        np.testing.assert_array_equal(np.sign(got), np.sign(want))
        assert np.all(np.abs(got - want) <= 4 * np.spacing(np.abs(want)))


@pytest.mark.parametrize("seed", SEEDS)
def test_parameters_equal_the_tensorflow_draws(seed):
    for params in (TARGET_WARP, SOURCE_WARP):
        want = warps.random_tps_params(tf.constant(seed, tf.int64), 5, params)
        got = numpy_warps.random_tps_params(seed, 5, params)
        for g, w in zip(got, want):
            assert g.dtype == np.float32 and g.shape == tuple(w.shape)
            np.testing.assert_allclose(g, w.numpy(), rtol=2e-6, atol=1e-9)


def test_displacement_equals_the_tensorflow_spline_for_the_same_parameters():
    weights, affine = numpy_warps.random_tps_params([0, 1], 3, SOURCE_WARP)
    for grid in (None, 9):
        want = tps.pixel_displacement(weights, affine, 24, 32, grid).numpy()
        got = numpy_warps.pixel_displacement(weights, affine, 24, 32, grid)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-4)


def test_parameters_follow_the_official_distribution():
    # a, b kernel-weight stds: var = a^2 + b^2 / 2 (a fair coin keeps the b draw);
    # rotation N(0, r) degrees, scale 1 + N(0, s), translation N(0, t).
    p = WarpParams(a=0.01, b=0.04, rotation_deg=20.0, scale=0.1, translation=0.2)
    weights, affine = numpy_warps.random_tps_params([1, 2], 4000, p)
    np.testing.assert_allclose(weights.var(), p.a**2 + p.b**2 / 2, rtol=0.03)
    np.testing.assert_allclose(affine[:, 0].std(), p.translation, rtol=0.03)
    scale = np.hypot(affine[:, 1, 0], affine[:, 1, 1])
    np.testing.assert_allclose(scale.std(), p.scale, rtol=0.05)
    angle = np.degrees(np.arctan2(affine[:, 2, 0], affine[:, 1, 0]))
    np.testing.assert_allclose(angle.std(), p.rotation_deg, rtol=0.05)
    # A rotation-scale: rows [cos, -sin] and [sin, cos].
    np.testing.assert_array_equal(affine[:, 1, 0], affine[:, 2, 1])
    np.testing.assert_array_equal(affine[:, 1, 1], -affine[:, 2, 0])


def test_identity_warp_keeps_the_image_and_a_shift_moves_it():
    images = np.random.default_rng(2).uniform(0, 255, (2, 16, 16, 3)).astype(np.float32)
    still = WarpParams(a=0.0, b=0.0, rotation_deg=0.0, scale=0.0, translation=0.0)
    out = numpy_warps.warp_pairs(images, [2, 0], still, still, coarse_grid=None)
    np.testing.assert_allclose(out["future_image"], images, atol=1e-3)
    np.testing.assert_allclose(out["image"], images, atol=1e-3)
    np.testing.assert_array_equal(out["mask"][0], warps.border_mask(16, 16))


@pytest.mark.parametrize("seed", [0, 7])
def test_same_seed_same_pairs_as_every_tensorflow_pipeline(seed):
    images = np.random.default_rng(3).integers(0, 255, (2, 32, 32, 3), dtype=np.uint8)
    a, b = (numpy_warps.warp_pairs(images, [seed, 5]) for _ in range(2))  # both held: no reuse
    cv2_graph = warps.pipeline_pairs(images, warps.batch_seed(seed, 5))  # tf.data's warp stage
    exact = warps.warp_pairs(images, [seed, 5], coarse_grid=numpy_warps.COARSE_GRID)  # the pure-TF reference
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
        np.testing.assert_array_equal(a[k], cv2_graph[k].numpy())
        np.testing.assert_allclose(a[k], exact[k].numpy(), atol=2e-2)  # TF and OpenCV upsample in another order
    assert a["image"].dtype == np.float32 and a["mask"].shape == (2, 32, 32, 1)


def test_the_numpy_path_imports_no_tensorflow():
    import subprocess
    import sys

    code = ("import sys, numpy as np; from keras_landmarks.pairs import numpy_warps; "
            "numpy_warps.warp_pairs(np.zeros((1, 16, 16, 3), np.uint8), [0, 0]); "
            "from keras_landmarks.data import decode; "
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

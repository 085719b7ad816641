"""Closed-form checks of the coordinate convention, soft-argmax and Gaussian maps."""

import keras
import numpy as np
import pytest

from keras_landmarks import GaussianMaps, SoftArgmaxKeypoints, geometry
from keras_landmarks.networks import bottleneck


def test_grid_is_pixel_centre_linspace():
    g = keras.ops.convert_to_numpy(geometry.grid_coordinates(5))
    np.testing.assert_allclose(g, [-1.0, -0.5, 0.0, 0.5, 1.0])


def test_pixel_normalized_round_trip_and_endpoints():
    size = (48, 64)  # (height, width)
    pix = np.array([[[0.0, 0.0], [63.0, 47.0], [31.5, 23.5]]], "float32")
    norm = keras.ops.convert_to_numpy(geometry.pixels_to_normalized(pix, size))
    # First pixel centre -> -1, last -> +1, geometric centre -> 0, on each axis.
    np.testing.assert_allclose(norm[0], [[-1, -1], [1, 1], [0, 0]], atol=1e-6)
    back = keras.ops.convert_to_numpy(geometry.normalized_to_pixels(norm, size))
    np.testing.assert_allclose(back, pix, atol=1e-4)


@pytest.mark.parametrize("h,w", [(16, 16), (8, 12)])
def test_soft_argmax_of_sharp_peak_is_that_cell(h, w):
    rng = np.random.default_rng(0)
    k = 5
    rows, cols = rng.integers(0, h, k), rng.integers(0, w, k)
    scores = np.zeros((2, h, w, k), "float32")
    # A peak must dominate the *profile* (mean over the other axis), so scale by the
    # axis length: mean along x of a single spike of height c*w is c.
    for i in range(k):
        scores[:, rows[i], cols[i], i] = 60.0 * max(h, w)
    pts = keras.ops.convert_to_numpy(bottleneck.soft_argmax(scores))
    expected_x = -1 + 2 * cols / (w - 1)
    expected_y = -1 + 2 * rows / (h - 1)
    assert pts.shape == (2, k, 2)
    np.testing.assert_allclose(pts[0, :, 0], expected_x, atol=1e-4)
    np.testing.assert_allclose(pts[0, :, 1], expected_y, atol=1e-4)


def test_soft_argmax_matches_numpy_reference():
    rng = np.random.default_rng(1)
    s = rng.normal(size=(3, 6, 7, 4)).astype("float32")

    def ref_axis(profile, n):  # profile [B, n, K]
        p = np.exp(profile - profile.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        return (p * np.linspace(-1, 1, n)[None, :, None]).sum(1)

    want = np.stack([ref_axis(s.mean(1), 7), ref_axis(s.mean(2), 6)], -1)
    got = keras.ops.convert_to_numpy(SoftArgmaxKeypoints()(s))
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_uniform_scores_give_the_centre():
    pts = keras.ops.convert_to_numpy(bottleneck.soft_argmax(np.zeros((1, 9, 9, 3), "float32")))
    np.testing.assert_allclose(pts, 0.0, atol=1e-6)


@pytest.mark.parametrize("mode,factor", [("rot", 1.0), ("paper", 2.0)])
def test_gaussian_maps_peak_and_width(mode, factor):
    sigma = 0.1
    n = 33  # grid step 2/32 = 1/16, so the point (0.25, -0.5) is on a cell centre
    pts = np.array([[[0.25, -0.5]]], "float32")
    maps = keras.ops.convert_to_numpy(GaussianMaps(n, n, sigma, mode)(pts))[0, :, :, 0]
    row, col = np.unravel_index(np.argmax(maps), maps.shape)
    grid = np.linspace(-1, 1, n)
    assert (grid[col], grid[row]) == pytest.approx((0.25, -0.5))
    assert maps[row, col] == pytest.approx(1.0, abs=1e-6)
    # One cell (distance d = 1/16) to the right: exp(-d^2 / (factor * sigma^2)).
    d = grid[col + 1] - grid[col]
    assert maps[row, col + 1] == pytest.approx(np.exp(-(d**2) / (factor * sigma**2)), rel=1e-5)
    # Isotropic: same value one cell down.
    assert maps[row + 1, col] == pytest.approx(maps[row, col + 1], rel=1e-5)


def test_gaussian_maps_layer_config_round_trip():
    layer = GaussianMaps(8, 12, sigma=0.2, mode="paper")
    clone = GaussianMaps.from_config(layer.get_config())
    pts = np.random.default_rng(2).uniform(-1, 1, (2, 3, 2)).astype("float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(pts)),
                                  keras.ops.convert_to_numpy(clone(pts)))
    assert layer.compute_output_shape((2, 3, 2)) == (2, 8, 12, 3)


def test_bad_gaussian_mode_is_rejected():
    with pytest.raises(ValueError, match="rot"):
        GaussianMaps(4, 4, mode="ankush")

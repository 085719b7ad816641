"""The NumPy/OpenCV warps (``pairs.numpy_warps``) against the TensorFlow ones and closed forms."""

import numpy as np
import pytest

from keras_landmarks.config import SOURCE_WARP, WarpParams
from keras_landmarks.pairs import numpy_warps, tps, warps


def test_displacement_equals_the_tensorflow_spline_for_the_same_parameters():
    rng = np.random.default_rng(0)
    weights, affine = numpy_warps.random_tps_params(rng, 3, SOURCE_WARP)
    for grid in (None, 9):
        want = tps.pixel_displacement(weights, affine, 24, 32, grid).numpy()
        got = numpy_warps.pixel_displacement(weights, affine, 24, 32, grid)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-4)


def test_parameters_follow_the_official_distribution():
    # a, b kernel-weight stds: var = a^2 + b^2 / 2 (a fair coin keeps the b draw);
    # rotation N(0, r) degrees, scale 1 + N(0, s), translation N(0, t).
    p = WarpParams(a=0.01, b=0.04, rotation_deg=20.0, scale=0.1, translation=0.2)
    weights, affine = numpy_warps.random_tps_params(np.random.default_rng(1), 4000, p)
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
    rng = np.random.default_rng(2)
    images = rng.uniform(0, 255, (2, 16, 16, 3)).astype(np.float32)
    still = WarpParams(a=0.0, b=0.0, rotation_deg=0.0, scale=0.0, translation=0.0)
    out = numpy_warps.warp_pairs(images, rng, still, still, coarse_grid=None)
    np.testing.assert_allclose(out["future_image"], images, atol=1e-3)
    np.testing.assert_allclose(out["image"], images, atol=1e-3)
    np.testing.assert_array_equal(out["mask"][0], warps.border_mask(16, 16))


@pytest.mark.parametrize("seed", [0, 7])
def test_same_seed_same_pairs(seed):
    images = np.random.default_rng(3).integers(0, 255, (2, 16, 16, 3), dtype=np.uint8)
    a, b = (numpy_warps.warp_pairs(images, np.random.default_rng([seed, 5])) for _ in range(2))
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert a["image"].dtype == np.float32 and a["mask"].shape == (2, 16, 16, 1)


def test_the_numpy_path_imports_no_tensorflow():
    import subprocess
    import sys

    code = ("import sys, numpy as np; from keras_landmarks.pairs import numpy_warps; "
            "numpy_warps.warp_pairs(np.zeros((1, 16, 16, 3), np.uint8), np.random.default_rng(0)); "
            "from keras_landmarks.data import decode; "
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

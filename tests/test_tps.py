"""Thin-plate-spline warps against closed-form math and independent numpy references."""

import numpy as np
import pytest
import tensorflow as tf

from keras_landmarks.pairs import tps, warps
from keras_landmarks.config import SOURCE_WARP, TARGET_WARP, WarpParams

IDENTITY = WarpParams(a=0.0, b=0.0, rotation_deg=0.0, scale=0.0, translation=0.0)
SAMPLER_GRIDS = [("tf", None), ("cv2", None), ("tf", 9), ("cv2", 9)]


def _np_grid(height, width):
    """Pixel-centre grid ``[H, W, 2]`` (x, y) in normalised coordinates."""
    xx, yy = np.meshgrid(np.linspace(-1, 1, width), np.linspace(-1, 1, height))
    return np.stack([xx, yy], -1)


def _np_bilinear(image, x, y):
    """Reference bilinear sample of ``image [H, W, C]`` at pixel (x, y), zeros outside."""
    h, w = image.shape[:2]
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    out = np.zeros(image.shape[2])
    for xi, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
        for yi, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
            if 0 <= xi < w and 0 <= yi < h:
                out += wx * wy * image[yi, xi]
    return out


def _np_bilinear_image(image, pix):
    """Vectorised float64 bilinear sample of ``image [H, W, C]`` at pixel (x, y) ``pix [..., 2]``, zeros outside."""
    h, w = image.shape[:2]
    x, y = pix[..., 0], pix[..., 1]
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    out = np.zeros(pix.shape[:-1] + image.shape[2:])
    for xi, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
        for yi, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
            inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
            out += np.where(inside, wx * wy, 0.0)[..., None] * image[np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)]
    return out


def _np_solve_tps(ctrl, targets):
    """Independent TPS fit: solve [[K, P], [P^T, 0]] [w; A] = [targets; 0] in float64."""
    m = len(ctrl)
    r2 = ((ctrl[:, None] - ctrl[None]) ** 2).sum(-1)
    k = np.where(r2 > 0, r2 * np.log(np.where(r2 > 0, r2, 1.0)), 0.0)
    p = np.hstack([np.ones((m, 1)), ctrl])
    lhs = np.block([[k, p], [p.T, np.zeros((3, 3))]])
    sol = np.linalg.solve(lhs, np.vstack([targets, np.zeros((3, 2))]))
    return sol[:m], sol[m:]


def _np_eval_tps(ctrl, w, a, pts):
    r2 = ((pts[:, None] - ctrl[None]) ** 2).sum(-1)
    u = np.where(r2 > 0, r2 * np.log(np.where(r2 > 0, r2, 1.0)), 0.0)
    return u @ w + np.hstack([np.ones((len(pts), 1)), pts]) @ a


def test_control_grid_is_x_fastest_linspace():
    c = tps.control_grid(3)
    np.testing.assert_array_equal(c[:3], [[-1, -1], [0, -1], [1, -1]])
    np.testing.assert_array_equal(c[3:6, 1], [0, 0, 0])
    assert tps.control_grid().shape == (100, 2)


def test_zero_nonlinear_part_is_the_affine_warp():
    rng = np.random.default_rng(1)
    affine = tps._IDENTITY_AFFINE + rng.normal(0, 0.2, (3, 3, 2)).astype(np.float32)
    grid = tps.tps_warp_grid(np.zeros((3, 100, 2), np.float32), affine, 9, 14).numpy()
    base = _np_grid(9, 14)
    expected = np.einsum("hwk,bkc->bhwc", np.concatenate([np.ones((9, 14, 1)), base], -1), affine)
    np.testing.assert_allclose(grid, expected, atol=1e-6)
    # The image warp samples exactly there (reference bilinear at the closed-form points).
    image = rng.uniform(0, 255, (3, 9, 14, 2)).astype(np.float32)
    warped = tps.warp_images(image, np.zeros((3, 100, 2), np.float32), affine).numpy()
    pix = (expected + 1) / 2 * np.array([13, 8])
    ref = np.array([[[_np_bilinear(image[b], *pix[b, i, j]) for j in range(14)] for i in range(9)] for b in range(3)])
    np.testing.assert_allclose(warped, ref, atol=2e-3)


def test_spline_interpolates_control_targets_like_numpy_solve():
    rng = np.random.default_rng(2)
    ctrl = tps.control_grid(10)
    targets = (ctrl + rng.normal(0, 0.05, (2, 100, 2))).astype(np.float32)
    weights, affine = tps.fit_tps(targets)
    at_ctrl = tps.tps_transform_points(weights, affine, np.broadcast_to(ctrl, (2, 100, 2))).numpy()
    np.testing.assert_allclose(at_ctrl, targets, atol=2e-4)
    off_grid = rng.uniform(-1.2, 1.2, (2, 50, 2))
    got = tps.tps_transform_points(weights, affine, off_grid).numpy()
    pixels = tps.tps_warp_grid(weights, affine, 7, 11).numpy()
    for b in range(2):
        w_ref, a_ref = _np_solve_tps(ctrl, targets[b].astype(np.float64))
        np.testing.assert_allclose(weights[b], w_ref, atol=2e-4)
        np.testing.assert_allclose(affine[b], a_ref, atol=2e-4)
        np.testing.assert_allclose(got[b], _np_eval_tps(ctrl, w_ref, a_ref, off_grid[b]), atol=5e-4)
        on_pixels = _np_eval_tps(ctrl, w_ref, a_ref, _np_grid(7, 11).reshape(-1, 2))
        np.testing.assert_allclose(pixels[b].reshape(-1, 2), on_pixels, atol=5e-4)


@pytest.mark.parametrize("height,width", [(13, 17), (64, 64)])
def test_identity_parameters_return_the_input_exactly(height, width):
    rng = np.random.default_rng(3)
    image = rng.uniform(0, 255, (2, height, width, 3)).astype(np.float32)
    weights, affine = warps.random_tps_params([5, 6], 2, IDENTITY)
    np.testing.assert_array_equal(affine.numpy(), np.broadcast_to(tps._IDENTITY_AFFINE, (2, 3, 2)))
    np.testing.assert_array_equal(tps.warp_images(image, weights, affine).numpy(), image)
    np.testing.assert_allclose(tps.tps_warp_grid(weights, affine, height, width)[0], _np_grid(height, width), atol=1e-7)
    for sampler, grid in SAMPLER_GRIDS:  # zero displacement at the nodes is zero everywhere
        out = warps.warp_pairs(image, [5, 6], IDENTITY, IDENTITY, sampler=sampler, coarse_grid=grid)
        np.testing.assert_array_equal(out["image"].numpy(), image)
        np.testing.assert_array_equal(out["future_image"].numpy(), image)
        np.testing.assert_array_equal(out["mask"].numpy()[1], warps.border_mask(height, width))


@pytest.mark.parametrize("sampler,coarse_grid", SAMPLER_GRIDS)
def test_mask_is_zero_where_the_target_warp_samples_outside(sampler, coarse_grid):
    big = WarpParams(a=0.001, b=0.005, rotation_deg=10.0, scale=0.1, translation=0.4)
    image = np.full((6, 32, 32, 3), 200.0, np.float32)
    seed = tf.constant([7, 8], tf.int64)
    out = warps.warp_pairs(image, seed, target_warp=big, sampler=sampler, coarse_grid=coarse_grid)
    target_seed = warps.split_seed(seed)[0]
    grid = warps.random_warp_grids(target_seed, 6, 32, 32, big, coarse_grid).numpy()
    outside = np.any(np.abs(grid) > 1.0, axis=-1)
    mask, future = out["mask"].numpy()[..., 0], out["future_image"].numpy()
    assert outside.sum() > 100 and (~outside).sum() > 100  # both cases occur
    np.testing.assert_array_equal(mask[outside], 0.0)
    one_px = 2.0 / 31
    np.testing.assert_array_equal(future[np.any(np.abs(grid) >= 1.0 + one_px, axis=-1)], 0.0)
    # Deep inside the image (past the 2.5 px margin + 5 px ramp) the mask is ~1.
    deep = np.all(np.abs(grid) < 1.0 - 8 * one_px, axis=-1)
    assert deep.sum() > 100 and mask[deep].min() > 0.99
    np.testing.assert_allclose(future[deep], 200.0, rtol=1e-5)


def test_border_mask_profile_and_scaling():
    m = warps.border_mask(128, 128)[..., 0]
    assert m.shape == (128, 128) and m.dtype == np.float32
    ramp = 0.5 + 0.5 * np.tanh(np.linspace(-1, 1, 20) / 0.4)
    row = np.concatenate([np.zeros(10), ramp, np.ones(68), ramp[::-1], np.zeros(10)])
    np.testing.assert_allclose(m, np.outer(row, row), atol=1e-7)
    small = warps.border_mask(64, 48)[..., 0]  # widths scale with min side: 48/128
    assert small.shape == (64, 48)
    np.testing.assert_array_equal(small[:, :4], 0.0)
    assert small[32, 4] > 0 and small[32, 4 + 8 - 1] < 1 and small[32, 24] == 1.0
    with pytest.raises(ValueError, match="too small"):
        warps.border_mask(1, 8)


def test_bilinear_sample_matches_numpy_reference():
    rng = np.random.default_rng(4)
    image = rng.uniform(0, 255, (2, 7, 9, 3)).astype(np.float32)
    coords = rng.uniform(-1.3, 1.3, (2, 5, 6, 2)).astype(np.float32)
    got = tps.bilinear_sample(image, coords).numpy()
    pix = (coords.astype(np.float64) + 1) / 2 * np.array([8, 6])
    ref = np.array([[[_np_bilinear(image[b], *pix[b, i, j]) for j in range(6)] for i in range(5)] for b in range(2)])
    np.testing.assert_allclose(got, ref, atol=2e-3)
    assert np.any(ref == 0) and np.any(ref > 0)


def test_same_seed_same_warp_and_different_seeds_differ():
    image = np.random.default_rng(5).uniform(0, 255, (3, 24, 24, 3)).astype(np.float32)
    a = warps.warp_pairs(image, [1, 2])
    b = warps.warp_pairs(image, [1, 2])
    c = warps.warp_pairs(image, [1, 3])
    as_uint8 = warps.warp_pairs(np.round(image).astype(np.uint8), [1, 2])
    rounded = warps.warp_pairs(np.round(image), [1, 2])
    for key in a:
        np.testing.assert_array_equal(a[key].numpy(), b[key].numpy())
        assert np.abs(a[key].numpy() - c[key].numpy()).max() > 1e-2
        np.testing.assert_array_equal(as_uint8[key].numpy(), rounded[key].numpy())
    # Each image of a batch gets its own warp, independent of the batch size.
    grids = warps.random_warp_grids([1, 2], 3, 24, 24, SOURCE_WARP).numpy()
    assert np.abs(grids[0] - grids[1]).max() > 1e-3
    np.testing.assert_array_equal(warps.random_warp_grids([1, 2], 2, 24, 24, SOURCE_WARP), grids[:2])


def test_eager_tf_data_and_xla_agree():
    image = np.random.default_rng(6).uniform(0, 255, (4, 24, 24, 3)).astype(np.float32)
    seed = tf.constant([2**40 + 3, -5], tf.int64)  # beyond 32 bits on purpose
    eager = warps.warp_pairs(image, seed)
    xla = tf.function(warps.warp_pairs, jit_compile=True)(image, seed)
    ds = tf.data.Dataset.from_tensors(image).map(lambda x: warps.warp_pairs(x, seed))
    in_data = next(iter(ds))
    for key in ("image", "future_image", "mask"):
        np.testing.assert_array_equal(in_data[key].numpy(), eager[key].numpy())
        # XLA fuses float ops differently: ~1e-3 grey levels of 255, ~1e-6 of the mask.
        np.testing.assert_allclose(xla[key].numpy(), eager[key].numpy(), atol=5e-3 * (key != "mask") + 1e-5)
    assert eager["mask"].shape == (4, 24, 24, 1)
    # The OpenCV sampler is deterministic too, eagerly and inside tf.data.
    cv2_eager = warps.warp_pairs(image, seed, sampler="cv2", coarse_grid=9)
    ds = tf.data.Dataset.from_tensors(image).map(lambda x: warps.warp_pairs(x, seed, sampler="cv2", coarse_grid=9))
    cv2_data = next(iter(ds))
    for key in ("image", "future_image", "mask"):
        np.testing.assert_array_equal(cv2_data[key].numpy(), cv2_eager[key].numpy())


def test_parameter_and_displacement_statistics():
    weights, affine = warps.random_tps_params([0, 1], 3000, SOURCE_WARP)
    affine = affine.numpy()
    # A scaled rotation: the x and y rows are (c, -s) and (s, c).
    np.testing.assert_allclose(affine[:, 1], np.stack([affine[:, 2, 1], -affine[:, 2, 0]], -1), atol=1e-7)
    np.testing.assert_allclose(affine[:, 0].std(0), SOURCE_WARP.translation, rtol=0.06)
    scale = np.sqrt(affine[:, 1, 0] ** 2 + affine[:, 1, 1] ** 2)
    np.testing.assert_allclose(scale.std(), SOURCE_WARP.scale, rtol=0.06)
    angle = np.degrees(np.arctan2(-affine[:, 1, 1], affine[:, 1, 0]))
    np.testing.assert_allclose(angle.std(), SOURCE_WARP.rotation_deg, rtol=0.06)
    w = weights.numpy()
    np.testing.assert_allclose(w.std(), np.hypot(SOURCE_WARP.a, SOURCE_WARP.b / np.sqrt(2)), rtol=0.03)
    big = np.abs(w) > 5 * SOURCE_WARP.a  # beyond 5 sigma of N(0, a): carries the N(0, b) part
    assert 0.3 < big.mean() < 0.5  # half the entries times P(|N(0, b)| large enough)
    # Non-linear displacement per pixel against the closed form; the translation-only warp
    # shifts each image rigidly by N(0, t).
    nonlinear = WarpParams(a=TARGET_WARP.a, b=TARGET_WARP.b, rotation_deg=0, scale=0, translation=0)
    disp = warps.random_warp_grids([2, 3], 600, 12, 12, nonlinear).numpy() - _np_grid(12, 12)
    np.testing.assert_allclose(disp.std(axis=(0, 3)), tps.displacement_std(nonlinear, 12, 12), rtol=0.12)
    shift = WarpParams(a=0, b=0, rotation_deg=0, scale=0, translation=0.1)
    disp = warps.random_warp_grids([4, 5], 2000, 6, 6, shift).numpy() - _np_grid(6, 6)
    np.testing.assert_allclose(disp - disp[:, :1, :1], 0.0, atol=1e-6)
    np.testing.assert_allclose(disp[:, 0, 0].std(0), 0.1, rtol=0.06)


# Noise images are the worst case for a sampling-position error (gradients up to 255 / px).
# 40 x 48 px: not square, and big warps sample outside the image.
BIG = WarpParams(a=0.001, b=0.01, rotation_deg=10.0, scale=0.1, translation=0.3)


@pytest.mark.parametrize("channels,dtype", [(3, np.uint8), (3, np.float32), (1, np.float32), (4, np.float64)])
def test_cv2_sampler_matches_tf_sampler_and_numpy_reference(channels, dtype):
    # 1 and 4 channels (+ mask = 2 and 5) exercise remap's channel chunks: OpenCV rounds
    # positions to 1/32 px for those counts, which would show here as errors of ~5.
    images = np.random.default_rng(channels).uniform(0, 255, (3, 40, 48, channels)).astype(dtype)
    seed = tf.constant([11, channels], tf.int64)
    ref = warps.warp_pairs(images, seed, BIG, BIG)
    got = warps.warp_pairs(images, seed, BIG, BIG, sampler="cv2")
    for key in ref:
        assert got[key].shape == ref[key].shape and got[key].dtype == tf.float32
        # of 255; measured 1.1e-3: the cv2 path draws in NumPy (pairs.philox), within 4
        # float32 ulps of TF's normals; a 1/32 px position rounding would show as ~5
        np.testing.assert_allclose(got[key].numpy(), ref[key].numpy(), atol=3e-3)
    # Independently of the TF sampler: a float64 bilinear sample at random_warp_grids' positions.
    grid = warps.random_warp_grids(warps.split_seed(seed)[0], 3, 40, 48, BIG).numpy().astype(np.float64)
    pix = (grid + 1) / 2 * [47, 39]
    assert np.any(pix < -1) and np.any((pix > 0) & (pix < [47, 39]))  # outside and inside both occur
    expected = np.stack([_np_bilinear_image(images[b].astype(np.float64), pix[b]) for b in range(3)])
    # 0.02: the grids agree to ~1e-5 px, times noise gradients of up to 255 / px.
    np.testing.assert_allclose(got["future_image"].numpy(), expected, atol=0.02)


@pytest.mark.parametrize("coarse_grid", [None, 9])
def test_cv2_frame_pairs_match_tf(coarse_grid):
    rng = np.random.default_rng(12)
    frames = rng.integers(0, 256, (2, 3, 40, 48, 3), dtype=np.uint8)
    ref = warps.warp_frame_pairs(frames[0], frames[1], [5, 7], BIG, BIG, coarse_grid=coarse_grid)
    got = warps.warp_frame_pairs(frames[0], frames[1], [5, 7], BIG, BIG, sampler="cv2", coarse_grid=coarse_grid)
    for key in ref:  # coarse: TF and OpenCV upsample in another float order (~1e-5 px)
        np.testing.assert_allclose(got[key].numpy(), ref[key].numpy(), atol=3e-3 if coarse_grid is None else 2e-2)
    assert np.abs(got["image"].numpy() - got["future_image"].numpy()).mean() > 10  # different frames


@pytest.mark.parametrize("coarse_grid", [None, 9])
def test_both_samplers_sample_where_random_warp_grids_says(coarse_grid):
    # Bilinear sampling of a linear ramp returns the sampling position: read the grid back.
    h, w = 24, 32
    xx, yy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    ramps = np.broadcast_to(np.stack([xx, yy, np.full_like(xx, 7.0)], -1), (4, h, w, 3))
    seed = [3, 4]
    grid = warps.random_warp_grids(warps.split_seed(seed)[0], 4, h, w, TARGET_WARP, coarse_grid).numpy()
    pix = (grid + 1) / 2 * [w - 1, h - 1]
    inside = np.all((pix >= 0) & (pix <= [w - 1, h - 1]), -1)
    assert inside.mean() > 0.5 and np.abs(pix - np.stack([xx, yy], -1)).max() > 1.0
    for sampler in warps.SAMPLERS:
        out = warps.warp_pairs(ramps, seed, sampler=sampler, coarse_grid=coarse_grid)["future_image"].numpy()
        np.testing.assert_allclose(out[..., :2][inside], pix[inside], atol=1e-3)
        again = warps.warp_pairs(ramps, seed, sampler=sampler, coarse_grid=coarse_grid)["future_image"].numpy()
        np.testing.assert_array_equal(again, out)


def test_coarse_grid_is_within_its_bound_of_the_exact_grid():
    m = warps.PIPELINE_COARSE_GRID
    exact = warps.random_warp_grids([8, 9], 20, 129, 129, SOURCE_WARP).numpy()
    coarse = warps.random_warp_grids([8, 9], 20, 129, 129, SOURCE_WARP, m).numpy()
    step = 128 // (m - 1)  # 129 px, 33 nodes: every 4th pixel is a node, where the grids agree
    np.testing.assert_allclose(coarse[:, ::step, ::step], exact[:, ::step, ::step], atol=2e-6)
    error_px = np.abs(coarse - exact) * 64.0
    assert 0.01 < error_px.max() <= 0.09 and error_px.mean() < 0.015  # tps.py docstring bound
    # The bound shrinks ~ with the node spacing squared: 17 nodes are ~4x worse.
    coarser = warps.random_warp_grids([8, 9], 20, 129, 129, SOURCE_WARP, 17).numpy()
    assert np.abs(coarser - exact).max() * 64.0 > 2.5 * error_px.max()


def test_bad_shapes_fail_with_clear_errors():
    with pytest.raises(ValueError, match="n\\*n"):
        tps.tps_warp_grid(np.zeros((1, 7, 2), np.float32), tps._IDENTITY_AFFINE[None], 8, 8)
    spec = tf.TensorSpec([2, None, None, 3], tf.float32)
    with pytest.raises(ValueError, match="static image sizes"):
        tf.function(lambda x: warps.warp_pairs(x, [0, 0])).get_concrete_function(spec)
    image = np.zeros((1, 8, 8, 3), np.float32)
    with pytest.raises(ValueError, match="sampler"):
        warps.warp_pairs(image, [0, 0], sampler="scipy")
    with pytest.raises(ValueError, match="coarse_grid"):
        warps.warp_pairs(image, [0, 0], coarse_grid=1)
    with pytest.raises(ValueError, match="future_images"):
        warps.warp_frame_pairs(image, np.zeros((1, 8, 9, 3), np.float32), [0, 0], sampler="cv2")


def test_random_normals_are_finite_at_the_extremes_of_the_bits():
    # All-ones and all-zero bits are the extreme uniforms: the old 24-bit map gave +inf for
    # the former (t + 0.5 rounded to 2^24 in float32).
    bits = tf.constant([-1, 0, 2**31 - 1, -(2**31)], tf.int32)
    z = warps.normal_from_bits(bits).numpy()
    assert np.isfinite(z).all() and np.abs(z).max() < 5.5
    assert z[0] > 5.0 and z[1] < -5.0  # still the tails
    # A batch seed whose source warp drew one such value (seed 0, batch 2284 of a stream).
    seeds = warps.split_seed(warps.batch_seed(0, 2284))
    weights, affine = warps.random_tps_params(seeds[1], 16, SOURCE_WARP)
    assert np.isfinite(weights.numpy()).all() and np.isfinite(affine.numpy()).all()

"""The OpenCV kernel's own pieces: sampling maps against numpy, aligned outputs, reuse safety."""

import gc

import numpy as np
import pytest
import tensorflow as tf

from keras_landmarks.pairs import cv2_sampler as tps_cv2, warps


def _np_maps(displacement, height, width):
    """float64 reference: corner-aligned bilinear upsampling of ``[m_h, m_w, 4]`` + pixel centres."""
    m_h, m_w = displacement.shape[:2]
    d = displacement.astype(np.float64)

    def axis(n_out, n_in):
        pos = np.arange(n_out) * (n_in - 1) / (n_out - 1)
        lo = np.minimum(np.floor(pos).astype(int), n_in - 2)
        return lo, pos - lo

    (y0, fy), (x0, fx) = axis(height, m_h), axis(width, m_w)
    rows = d[y0] * (1 - fy)[:, None, None] + d[y0 + 1] * fy[:, None, None]
    up = rows[:, x0] * (1 - fx)[None, :, None] + rows[:, x0 + 1] * fx[None, :, None]
    xx, yy = np.meshgrid(np.arange(width), np.arange(height))
    return up + np.stack([xx, yy, xx, yy], -1)


@pytest.mark.parametrize("nodes", [(9, 9), (5, 12), (40, 48)])
def test_sampling_maps_match_numpy_upsampling(nodes):
    rng = np.random.default_rng(sum(nodes))
    disp = rng.normal(0, 4, nodes + (4,)).astype(np.float32)
    grid_t, grid_s = tps_cv2.sampling_maps(disp, 40, 48)
    ref = _np_maps(disp, 40, 48)
    assert grid_t.shape == grid_s.shape == (40, 48, 2) and grid_t.dtype == np.float32
    np.testing.assert_allclose(grid_t, ref[..., :2], atol=5e-5)  # px; float32 of positions up to ~60
    np.testing.assert_allclose(grid_s, ref[..., 2:], atol=5e-5)
    zero = tps_cv2.sampling_maps(np.zeros(nodes + (4,), np.float32), 40, 48)
    xx, yy = np.meshgrid(np.arange(48, dtype=np.float32), np.arange(40, dtype=np.float32))
    for grid in zero:  # identity: the integer pixel centres, bit for bit
        np.testing.assert_array_equal(grid, np.stack([xx, yy], -1))


def test_aligned_empty_is_aligned_float32():
    for shape in [(3, 5, 7, 3), (1,), (50, 128, 128, 1)]:
        a = tps_cv2.aligned_empty(shape)
        assert a.shape == shape and a.dtype == np.float32 and a.flags.c_contiguous
        assert a.ctypes.data % 64 == 0


def _pairs(images, seed):
    return warps.warp_pairs(images, seed, sampler="cv2", coarse_grid=9)


def test_outputs_held_anywhere_are_never_overwritten():
    images = np.random.default_rng(0).integers(0, 256, (3, 24, 32, 3), dtype=np.uint8)
    ds = tf.data.Dataset.range(14).map(lambda i: _pairs(images, tf.stack([tf.constant(5, tf.int64), i])))
    held = []
    for i, batch in enumerate(ds.prefetch(4)):  # more batches than the pool keeps per shape
        if i % 3 == 0:
            held.append((i, batch["image"]))  # the tensor
        elif i % 3 == 1:
            held.append((i, batch["future_image"].numpy()[1:]))  # a numpy view of it
        else:
            held.append((i, batch["mask"]))
    # A direct call (batch 2: a shape of its own, so the next calls try its set first)
    direct = tps_cv2.warp_pair_batch(images[:2], np.zeros((2, 9, 9, 4), np.float32), warps.border_mask(24, 32))
    view = direct[0][..., :2]  # a view of its output, which is dropped
    expected_view = view.copy()
    del direct
    for _ in range(3):
        tps_cv2.warp_pair_batch(images[:2], np.ones((2, 9, 9, 4), np.float32), warps.border_mask(24, 32))
    np.testing.assert_array_equal(view, expected_view)
    for i, value in held:
        ref = _pairs(images, [5, i])
        key = ("image", "future_image", "mask")[i % 3]
        np.testing.assert_array_equal(np.asarray(value), ref[key].numpy()[1:] if i % 3 == 1 else ref[key].numpy())


def test_outputs_are_reused_without_copies_once_released(monkeypatch):
    images = np.random.default_rng(1).integers(0, 256, (2, 20, 20, 3), dtype=np.uint8)
    shapes = ((2, 20, 20, 3),) * 2 + ((2, 20, 20, 1),)
    outputs, pooled = [], []
    kernel = tps_cv2.warp_pair_batch

    def spy(*args):
        out = kernel(*args)
        outputs.append(out[0])
        pooled.append(any(out[0] is entry["arrays"][0] for entry in tps_cv2._OUTPUTS._pools[shapes]))
        return out

    monkeypatch.setattr(tps_cv2, "warp_pair_batch", spy)
    options = tf.data.Options()
    options.experimental_optimization.map_parallelization = False  # call i makes batch i
    ds = tf.data.Dataset.range(12).map(  # 12 > the pool's 8 sets: reuse must happen
        lambda i: _pairs(images, tf.stack([tf.constant(6, tf.int64), i])))
    for i, batch in enumerate(ds.with_options(options)):
        outputs[i][0, 0, 0, 0] = -1.0  # zero-copy: the tensor is the kernel's array
        assert batch["image"][0, 0, 0, 0].numpy() == -1.0
        outputs[i] = None
        del batch
        gc.collect(0)  # young objects only: a full collection of a TensorFlow process takes seconds
    assert all(pooled) and len(tps_cv2._OUTPUTS._pools[shapes]) <= 8 < len(pooled)

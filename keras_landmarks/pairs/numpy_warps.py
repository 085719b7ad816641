"""Training pairs in NumPy and OpenCV, without TensorFlow: the warps of the PyDataset sources.

The same spline (``tps_basis``), the same parameters (``warps.random_tps_params``: kernel
weights ``a N + b N [coin]``, rotation, scale, translation, from TF's stateless Philox
stream of the seed, reproduced by ``philox``) and the same OpenCV sampling kernel
(``cv2_sampler.warp_pair_batch``) as the TensorFlow pipelines: a stateless seed gives the
same warps as ``warps.warp_pairs`` (to a few float32 ulps of the normals). Used by
``data.numpy_pairs`` for the JAX and PyTorch backends.
"""

from __future__ import annotations

import functools

import numpy as np

from keras_landmarks.config import SOURCE_WARP, TARGET_WARP, WarpParams
from keras_landmarks.pairs import philox
from keras_landmarks.pairs.tps_basis import IDENTITY_AFFINE, grid_shape, pixel_basis

# The coarse TPS grid of both pipelines (warps.PIPELINE_COARSE_GRID is this; <= 0.09 px from
# the exact spline at 128 px).
COARSE_GRID = 33


@functools.lru_cache(maxsize=16)
def border_mask(height: int, width: int) -> np.ndarray:
    """Smooth loss mask ``[height, width, 1]`` float32 in ``[0, 1]``: zeros at the border.

    Official profile on a 128 image: 10 px of zeros, a 20 px ramp
    ``0.5 + 0.5 * tanh(linspace(-1, 1, 20) / 0.4)`` up to ones, mirrored at the far side.
    Both widths scale with ``min(height, width) / 128`` (rounded, ramp >= 1 px).
    """
    side = min(height, width)
    margin, ramp = round(10 * side / 128), max(1, round(20 * side / 128))
    if side < 2 * (margin + ramp):
        raise ValueError(f"border_mask: image {height}x{width} is too small for its ramps")
    up = 0.5 + 0.5 * np.tanh(np.linspace(-1.0, 1.0, ramp) / 0.4)

    def strip(size: int) -> np.ndarray:
        mid = np.ones(size - 2 * (margin + ramp))
        return np.concatenate([np.zeros(margin), up, mid, up[::-1], np.zeros(margin)])

    mask = (strip(height)[:, None] * strip(width)[None, :])[..., None].astype(np.float32)
    mask.setflags(write=False)  # cached: callers share one array
    return mask


def random_tps_params(seed, batch: int, params: WarpParams, n: int = 10):
    """``warps.random_tps_params`` in NumPy: ``(weights [batch, n*n, 2], affine [batch, 3, 2])``
    float32 of stateless ``seed`` ``[2]`` (int), the same draws in the same float32 order.
    The coin needs only the sign of its normal (``z > 0`` iff the bits' top bit is set), and
    a ``b`` draw only where its coin is up."""
    m2, f32 = n * n * 2, np.float32
    bits = philox.int32_bits(seed, (batch, 3 * m2 + 4))
    coin = bits[:, 2 * m2 : 3 * m2] < 0
    z = philox.normal_from_bits(np.concatenate([bits[:, :m2].ravel(), bits[:, 3 * m2 :].ravel(),
                                                bits[:, m2 : 2 * m2][coin]]))  # one call: fewer passes
    kept = np.zeros((batch, m2), np.float32)
    kept[coin] = z[batch * (m2 + 4) :]
    shape = (batch, n * n, 2)
    weights = f32(params.a) * z[: batch * m2].reshape(shape) + f32(params.b) * kept.reshape(shape)
    aff = z[batch * m2 : batch * (m2 + 4)].reshape(batch, 4)
    angle = aff[:, 0] * f32(params.rotation_deg * np.pi / 180.0)
    scale = f32(1.0) + f32(params.scale) * aff[:, 1]
    cos, sin = scale * np.cos(angle), scale * np.sin(angle)
    rows = [f32(params.translation) * aff[:, 2:4], np.stack([cos, -sin], -1), np.stack([sin, cos], -1)]
    return weights, np.stack(rows, 1)


def pixel_displacement(weights, affine, height: int, width: int, coarse_grid: int | None = None) -> np.ndarray:
    """``[B, m_h, m_w, 2]`` float32 pixel displacement ``s(p) - p`` ``(x, y)`` at the nodes
    ``linspace(-1, 1, m)`` per axis (``tps.pixel_displacement`` in NumPy)."""
    m_h, m_w = grid_shape(height, width, coarse_grid)
    n2 = weights.shape[1]
    basis = pixel_basis(m_h, m_w, int(round(np.sqrt(n2))))
    half = np.array([(width - 1) / 2.0, (height - 1) / 2.0], np.float32)
    params = np.concatenate([weights, affine - IDENTITY_AFFINE], axis=1) * half  # [B, n*n + 3, 2]
    out = np.einsum("pk,bkc->bpc", basis, params, optimize=True)
    return out.reshape(-1, m_h, m_w, 2).astype(np.float32)


def pair_arrays(images: np.ndarray, seed, target_warp: WarpParams = TARGET_WARP,
                source_warp: WarpParams = SOURCE_WARP, future_images: np.ndarray | None = None,
                coarse_grid: int | None = COARSE_GRID) -> list[np.ndarray]:
    """``[image, future_image, mask]`` of ``warp_pairs``: ``cv2_sampler.warp_pair_batch``'s
    recycled arrays, reused only once nothing else holds them (``warps``' graph side hands
    them to TensorFlow without a copy)."""
    from keras_landmarks.pairs import cv2_sampler  # noqa: PLC0415 (OpenCV when used)

    batch, height, width = images.shape[:3]
    disp = [pixel_displacement(*random_tps_params(s, batch, p), height, width, coarse_grid)
            for s, p in zip(philox.split_seed(seed), (target_warp, source_warp))]
    return cv2_sampler.warp_pair_batch(images, np.concatenate(disp, -1), border_mask(height, width), future_images)


def warp_pairs(images: np.ndarray, seed, target_warp: WarpParams = TARGET_WARP,
               source_warp: WarpParams = SOURCE_WARP, future_images: np.ndarray | None = None,
               coarse_grid: int | None = COARSE_GRID) -> dict:
    """A training pair per image, as ``warps.warp_pairs`` (or ``warp_frame_pairs`` with
    ``future_images``): the warp stage of every CPU pipeline, ``tf.data`` (``sampler="cv2"``)
    and ``PyDataset`` alike, so a seed gives the same pairs in both.

    Args:
      images: ``[B, H, W, C]`` uint8 or float32 RGB.
      seed: stateless seed ``[2]`` (int); ``philox.split_seed(seed)`` gives the target warp's
        seed ``[0]`` and the source warp's ``[1]``, as in ``warps.warp_pairs``.
    Returns:
      ``{"image", "future_image": [B, H, W, C], "mask": [B, H, W, 1]}`` float32, recycled
      once released (``pair_arrays``): copy what you keep while making more.
    """
    return dict(zip(("image", "future_image", "mask"), pair_arrays(
        images, seed, target_warp, source_warp, future_images, coarse_grid)))


__all__ = ["COARSE_GRID", "border_mask", "pair_arrays", "pixel_displacement", "random_tps_params", "warp_pairs"]

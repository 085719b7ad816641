"""Training pairs in NumPy and OpenCV, without TensorFlow: the warps of the PyDataset sources.

The same spline (``tps_basis``), the same parameter distributions (``warps.random_tps_params``:
kernel weights ``a N + b N [coin]``, rotation, scale, translation) and the same OpenCV
sampling kernel (``cv2_sampler.warp_pair_batch``) as the TensorFlow pipelines; only the
random numbers differ (NumPy's PCG64 from ``[seed, batch index]`` instead of TF's
stateless Philox), so a given seed gives other warps than under ``tf.data``, equally
reproducible. Used by ``data.pydataset`` for the JAX and PyTorch backends.
"""

from __future__ import annotations

import functools

import numpy as np

from keras_landmarks.config import SOURCE_WARP, TARGET_WARP, WarpParams
from keras_landmarks.pairs.tps_basis import IDENTITY_AFFINE, grid_shape, pixel_basis

# As PIPELINE_COARSE_GRID of warps.py (<= 0.09 px from the exact spline at 128 px).
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


def random_tps_params(rng: np.random.Generator, batch: int, params: WarpParams, n: int = 10):
    """``(weights [batch, n*n, 2], affine [batch, 3, 2])`` float32 random TPS parameters
    drawn from ``rng`` with ``warps.random_tps_params``' distribution."""
    draws = rng.standard_normal((batch, 3, n * n, 2))
    weights = params.a * draws[:, 0] + params.b * np.where(draws[:, 2] > 0.0, draws[:, 1], 0.0)
    aff = rng.standard_normal((batch, 4))
    angle = aff[:, 0] * np.deg2rad(params.rotation_deg)
    scale = 1.0 + params.scale * aff[:, 1]
    cos, sin = scale * np.cos(angle), scale * np.sin(angle)
    affine = np.stack([params.translation * aff[:, 2:4], np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], 1)
    return weights.astype(np.float32), affine.astype(np.float32)


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


def warp_pairs(images: np.ndarray, rng: np.random.Generator, target_warp: WarpParams = TARGET_WARP,
               source_warp: WarpParams = SOURCE_WARP, future_images: np.ndarray | None = None,
               coarse_grid: int | None = COARSE_GRID) -> dict:
    """A training pair per image, as ``warps.warp_pairs`` (or ``warp_frame_pairs`` with
    ``future_images``), in NumPy.

    Args:
      images: ``[B, H, W, C]`` uint8 or float32 RGB.
    Returns:
      ``{"image", "future_image": [B, H, W, C], "mask": [B, H, W, 1]}`` float32 (fresh arrays).
    """
    from keras_landmarks.pairs import cv2_sampler  # noqa: PLC0415 (OpenCV when used)

    batch, height, width = images.shape[:3]
    disp = [pixel_displacement(*random_tps_params(rng, batch, p), height, width, coarse_grid)
            for p in (target_warp, source_warp)]
    out = cv2_sampler.warp_pair_batch(images, np.concatenate(disp, -1), border_mask(height, width), future_images)
    return {k: np.array(v) for k, v in zip(("image", "future_image", "mask"), out)}


__all__ = ["COARSE_GRID", "border_mask", "pixel_displacement", "random_tps_params", "warp_pairs"]

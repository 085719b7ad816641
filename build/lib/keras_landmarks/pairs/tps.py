"""Thin-plate-spline (TPS) math in TensorFlow: fit, evaluate, sample (PAPER.md "Training pairs").

A warp is a **backward map**: for every output pixel ``p`` (normalised ``(x, y)``, see
``geometry.py``) it gives the location ``s(p)`` in the input image that is sampled
(bilinearly, zeros outside the image)::

    s(p) = [1, x, y] @ affine + sum_i weights_i * U(|p - c_i|^2),   U(r2) = r2 * log(r2)

with ``c_i`` the ``n x n`` control points on ``[-1, 1]^2`` (``control_grid``),
``weights`` ``[B, n*n, 2]`` and ``affine`` ``[B, 3, 2]`` (rows: translation, the
coefficients of ``x``, the coefficients of ``y``; identity ``[[0, 0], [1, 0], [0, 1]]``).
``fit_tps`` gives the spline through chosen control-point targets; ``warps.py`` draws
random ones and turns images into training pairs.

Speed: the kernel matrix between the sampled positions and the control points depends
only on the image size, so it is a numpy constant built once per size; a warp is one
matmul plus one bilinear sampling. ``coarse_grid=m`` evaluates the spline at ``m x m``
nodes (``linspace(-1, 1, m)``) and upsamples bilinearly (corner-aligned): the spline is
smooth, so ``m = 33`` is off by at most 0.084 px at 128 px (``warps.py`` has the numbers).
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from keras_landmarks.config import WarpParams

from keras_landmarks.pairs.tps_basis import IDENTITY_AFFINE as _IDENTITY_AFFINE
from keras_landmarks.pairs.tps_basis import control_grid, fit_matrix as _fit_matrix, numpy_kernel
from keras_landmarks.pairs.tps_basis import grid_shape as _grid_shape, pixel_basis as _pixel_basis


def tps_kernel(r2):
    """TPS radial basis ``U(r2) = r2 * log(r2)`` of squared distances, ``U(0) = 0`` (numpy or TF)."""
    if isinstance(r2, np.ndarray):
        return numpy_kernel(r2)
    return r2 * tf.math.log(tf.maximum(r2, 1e-30))


def _float(x) -> tf.Tensor:
    """Any numeric array or tensor (uint8 images included) as float32."""
    return tf.cast(tf.convert_to_tensor(x), tf.float32)


def _grid_size(weights) -> int:
    m = weights.shape[1]
    n = math.isqrt(m) if m is not None else 0
    if m is None or n * n != m or n < 2:
        raise ValueError(f"weights must be [B, n*n, 2] for a static n >= 2, got shape {weights.shape}")
    return n


def _static_hw(height, width) -> tuple[int, int]:
    if height is None or width is None or int(height) < 2 or int(width) < 2:
        raise ValueError(
            f"TPS warps need static image sizes >= 2, got height={height}, width={width}: "
            "resize images to a fixed size before warping (or tf.ensure_shape them)"
        )
    return int(height), int(width)


def fit_tps(targets, n: int = 10):
    """Spline through control-point targets: ``s(c_i) = targets_i``, minimal bending energy.

    Args:
      targets: ``[B, n*n, 2]`` float32 normalised ``(x, y)`` where each control point of
        ``control_grid(n)`` should sample from.
    Returns:
      ``(weights [B, n*n, 2], affine [B, 3, 2])`` float32 (the precomputed inverse of the
      TPS system matrix times ``targets``).
    """
    targets = _float(targets)
    solution = tf.einsum("km,bmc->bkc", tf.constant(_fit_matrix(n)), targets)
    return solution[:, : n * n], solution[:, n * n :]


def tps_transform_points(weights, affine, points):
    """Evaluate ``s(p)`` at arbitrary points.

    Args:
      weights: ``[B, n*n, 2]``; affine: ``[B, 3, 2]``; points: ``[B, P, 2]`` normalised ``(x, y)``.
    Returns:
      ``[B, P, 2]`` float32 normalised sampling locations (backward map: where the output
      pixel at ``points`` reads the input).
    """
    c = tf.constant(control_grid(_grid_size(weights)), tf.float32)
    points = _float(points)
    r2 = tf.reduce_sum(tf.square(points[:, :, None, :] - c[None, None]), axis=-1)
    ones = tf.ones_like(points[..., :1])
    return tf.matmul(tps_kernel(r2), weights) + tf.matmul(tf.concat([ones, points], -1), affine)


def _node_displacement(weights, affine, height, width, coarse_grid, scale):
    """``[B, m_h, m_w, 2]`` float32 ``(s(p) - p) * scale`` at the nodes ``linspace(-1, 1, m)``.

    Identity parameters give exact zeros. One ``[m_h m_w, K] x [K, 2B]`` matmul: the basis
    is read once per batch, not once per image (3x faster than a batched einsum on CPU).
    """
    m_h, m_w = _grid_shape(*_static_hw(height, width), coarse_grid)
    n = _grid_size(weights)
    basis = tf.constant(_pixel_basis(m_h, m_w, n))
    params = tf.concat([tf.cast(weights, tf.float32), tf.cast(affine, tf.float32) - _IDENTITY_AFFINE], axis=1)
    params = params * np.asarray(scale, np.float32)
    out = tf.matmul(basis, tf.reshape(tf.transpose(params, [1, 0, 2]), [n * n + 3, -1]))
    return tf.transpose(tf.reshape(out, [m_h, m_w, -1, 2]), [2, 0, 1, 3])


def _upsample(nodes, height: int, width: int):
    """Corner-aligned bilinear ``[B, m_h, m_w, C]`` -> ``[B, height, width, C]`` (XLA-friendly)."""
    if nodes.shape[1] == height and nodes.shape[2] == width:
        return nodes
    return tf.raw_ops.ResizeBilinear(images=nodes, size=[height, width], align_corners=True, half_pixel_centers=False)


def pixel_displacement(weights, affine, height: int, width: int, coarse_grid: int | None = None):
    """``[B, m_h, m_w, 2]`` float32 pixel displacement ``s(p) - p`` ``(x, y)`` of a TPS warp
    at the nodes ``linspace(-1, 1, m)`` per axis (every pixel when ``coarse_grid`` is None)."""
    return _node_displacement(weights, affine, height, width, coarse_grid, _half(height, width))


def _half(height: int, width: int) -> np.ndarray:
    """Normalised -> pixel scale ``((W - 1) / 2, (H - 1) / 2)`` float32."""
    return np.array([(width - 1) / 2.0, (height - 1) / 2.0], np.float32)


def tps_warp_grid(weights, affine, height: int, width: int, coarse_grid: int | None = None):
    """Sampling coordinates of a TPS warp on an ``height x width`` output.

    Args:
      weights: ``[B, n*n, 2]`` float32 kernel weights; affine: ``[B, 3, 2]`` float32.
      coarse_grid: None: the spline at every pixel; ``m``: at ``m x m`` nodes
        (``linspace(-1, 1, m)``, ``min(m, side)`` per axis), upsampled bilinearly
        (corner-aligned), as ``warp_pairs(coarse_grid=m)`` uses it.
    Returns:
      ``[B, height, width, 2]`` float32 normalised ``(x, y)`` input locations (backward map).
    """
    height, width = _static_hw(height, width)
    disp = _node_displacement(weights, affine, height, width, coarse_grid, 1.0)
    xx, yy = np.meshgrid(np.linspace(-1.0, 1.0, width), np.linspace(-1.0, 1.0, height))
    return np.stack([xx, yy], -1).astype(np.float32)[None] + _upsample(disp, height, width)


def bilinear_sample(images, coords):
    """Sample ``images`` at normalised ``(x, y)`` locations, zeros outside the image.

    Args:
      images: ``[B, H, W, C]``; coords: ``[B, H', W', 2]`` normalised ``(x, y)``
        (``-1``/``+1`` = centres of the first/last pixel, as in ``geometry.py``).
    Returns:
      ``[B, H', W', C]`` float32. A tap outside ``[0, W-1] x [0, H-1]`` contributes zero, so
      a location half a pixel outside the border gets half the border value.
    """
    images = _float(images)
    shape = tf.shape(images)
    half = tf.cast(tf.stack([shape[2] - 1, shape[1] - 1]), tf.float32) / 2.0
    return _sample_pixels(images, (_float(coords) + 1.0) * half)


def _sample_pixels(images, pix):
    """``images`` ``[B, H, W, C]`` at pixel ``(x, y)`` ``pix`` ``[B, H', W', 2]``, zero padding."""
    shape = tf.shape(images)
    b, h, w = shape[0], shape[1], shape[2]
    # Far-outside locations give zeros anyway; clipping keeps the int cast finite.
    x = tf.clip_by_value(pix[..., 0], -2.0, tf.cast(w, tf.float32) + 1.0)
    y = tf.clip_by_value(pix[..., 1], -2.0, tf.cast(h, tf.float32) + 1.0)
    x0f, y0f = tf.floor(x), tf.floor(y)
    fx, fy = x - x0f, y - y0f
    x0, y0 = tf.cast(x0f, tf.int32), tf.cast(y0f, tf.int32)
    flat = tf.reshape(images, tf.stack([-1, shape[3]]))
    base = tf.reshape(tf.range(b) * h * w, [-1, 1, 1])

    def tap(xi, yi, weight):
        inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
        index = base + tf.clip_by_value(yi, 0, h - 1) * w + tf.clip_by_value(xi, 0, w - 1)
        weight = tf.where(inside, weight, 0.0)
        return tf.gather(flat, index) * weight[..., None]

    return (
        tap(x0, y0, (1.0 - fx) * (1.0 - fy))
        + tap(x0 + 1, y0, fx * (1.0 - fy))
        + tap(x0, y0 + 1, (1.0 - fx) * fy)
        + tap(x0 + 1, y0 + 1, fx * fy)
    )


def warp_images(images, weights, affine, coarse_grid: int | None = None):
    """Warp ``images`` ``[B, H, W, C]`` (static H, W) by the TPS ``(weights, affine)`` (TF sampler).

    Same result as ``bilinear_sample(images, tps_warp_grid(...))`` up to float rounding,
    but computed as integer pixel centre + displacement, so identity parameters return the
    input bit for bit. ``coarse_grid``: as in ``tps_warp_grid``. Returns ``[B, H, W, C]`` float32.
    """
    images = _float(images)
    height, width = _static_hw(images.shape[1], images.shape[2])
    disp = pixel_displacement(weights, affine, height, width, coarse_grid)
    xx, yy = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return _sample_pixels(images, np.stack([xx, yy], -1)[None] + _upsample(disp, height, width))


def displacement_std(params: WarpParams, height: int, width: int, n: int = 10) -> np.ndarray:
    """``[height, width]`` closed-form std (per axis, normalised units) of the non-linear
    part of a random warp: ``sqrt((a^2 + b^2 / 2) * sum_i U(|p - c_i|^2)^2)``."""
    kernel = _pixel_basis(height, width, n)[:, : n * n].astype(np.float64)
    var = (params.a**2 + params.b**2 / 2.0) * np.sum(kernel**2, axis=1)
    return np.sqrt(var).reshape(height, width)


__all__ = [
    "control_grid", "tps_kernel", "fit_tps", "tps_transform_points", "tps_warp_grid", "pixel_displacement",
    "bilinear_sample", "warp_images", "displacement_std",
]  # fmt: skip

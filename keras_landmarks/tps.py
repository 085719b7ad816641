"""Random thin-plate-spline (TPS) warps in pure TensorFlow (PAPER.md "Training pairs").

A warp is a **backward map**: for every output pixel ``p`` (normalised ``(x, y)``, see
``geometry.py``) it gives the location ``s(p)`` in the input image that is sampled
(bilinearly, zeros outside the image)::

    s(p) = [1, x, y] @ affine + sum_i weights_i * U(|p - c_i|^2),   U(r2) = r2 * log(r2)

with ``c_i`` the ``n x n`` control points on ``[-1, 1]^2`` (``control_grid``),
``weights`` ``[B, n*n, 2]`` and ``affine`` ``[B, 3, 2]`` (rows: translation, the
coefficients of ``x``, the coefficients of ``y``; identity ``[[0, 0], [1, 0], [0, 1]]``).

Random warps follow the official code (``imm/utils/tps_sampler.py``), whose random numbers
are the spline's kernel *weights*, not control-point displacements:
``weights = N(0, a) + mask * N(0, b)`` with ``mask`` a fair coin per control point and
axis; rotation ``N(0, r)`` degrees, scale ``1 + N(0, s)``, translation ``N(0, t)``. With
the target warp's ``a=0.001, b=0.005`` the non-linear part moves a pixel by a std of 0.016
(centre) to 0.19 (corners) normalised units, 4.8 px on average at 128 px
(``displacement_std``); displacements of 0.001 would be invisible. ``fit_tps`` gives the
other parametrisation: the spline through chosen control-point targets.

Speed: the kernel matrix between every output pixel and the control points depends only
on the image size, so it is a numpy constant built once per size; a warp is one small
matmul plus one bilinear gather. Randomness is stateless (``seed`` ``[2]`` int): the same
seed gives the same warp eagerly, in ``tf.data`` and under ``jit_compile=True``.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import tensorflow as tf

from keras_landmarks.config import SOURCE_WARP, TARGET_WARP, WarpParams

_IDENTITY_AFFINE = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], np.float32)


def control_grid(n: int = 10) -> np.ndarray:
    """``[n*n, 2]`` float64 control points ``(x, y)`` on ``linspace(-1, 1, n)``; x varies fastest."""
    if n < 2:
        raise ValueError(f"control_grid needs n >= 2, got {n}")
    xx, yy = np.meshgrid(np.linspace(-1.0, 1.0, n), np.linspace(-1.0, 1.0, n))
    return np.stack([xx.ravel(), yy.ravel()], axis=1)


def tps_kernel(r2):
    """TPS radial basis ``U(r2) = r2 * log(r2)`` of squared distances, ``U(0) = 0`` (numpy or TF)."""
    if isinstance(r2, np.ndarray):
        return r2 * np.log(np.maximum(r2, 1e-30))
    return r2 * tf.math.log(tf.maximum(r2, 1e-30))


@functools.lru_cache(maxsize=16)
def _pixel_basis(height: int, width: int, n: int) -> np.ndarray:
    """``[H*W, n*n + 3]`` float32: ``[U(|p - c_i|^2)..., 1, x, y]`` for every pixel ``p``."""
    xx, yy = np.meshgrid(np.linspace(-1.0, 1.0, width), np.linspace(-1.0, 1.0, height))
    pts = np.stack([xx.ravel(), yy.ravel()], axis=1)
    r2 = ((pts[:, None, :] - control_grid(n)[None]) ** 2).sum(-1)
    return np.concatenate([tps_kernel(r2), np.ones((len(pts), 1)), pts], 1).astype(np.float32)


@functools.lru_cache(maxsize=4)
def _fit_matrix(n: int) -> np.ndarray:
    """``[n*n + 3, n*n]`` float32: maps control-point targets to ``[weights; affine]``."""
    c = control_grid(n)
    m = len(c)
    p = np.concatenate([np.ones((m, 1)), c], axis=1)
    system = np.zeros((m + 3, m + 3))
    system[:m, :m] = tps_kernel(((c[:, None] - c[None]) ** 2).sum(-1))
    system[:m, m:] = p
    system[m:, :m] = p.T
    return np.linalg.inv(system)[:, :m].astype(np.float32)


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


def tps_warp_grid(weights, affine, height: int, width: int):
    """Sampling coordinates of a TPS warp on an ``height x width`` output.

    Args:
      weights: ``[B, n*n, 2]`` float32 kernel weights; affine: ``[B, 3, 2]`` float32.
    Returns:
      ``[B, height, width, 2]`` float32 normalised ``(x, y)`` input locations (backward map).
    """
    return _basis_times(weights, affine, height, width, subtract_identity=False)


def _basis_times(weights, affine, height, width, subtract_identity: bool):
    height, width = _static_hw(height, width)
    basis = tf.constant(_pixel_basis(height, width, _grid_size(weights)))
    if subtract_identity:  # displacement s(p) - p, exactly 0 for identity parameters
        affine = affine - _IDENTITY_AFFINE
    params = tf.concat([tf.cast(weights, tf.float32), tf.cast(affine, tf.float32)], axis=1)
    out = tf.einsum("pk,bkc->bpc", basis, params)
    return tf.reshape(out, tf.stack([tf.shape(params)[0], height, width, 2]))


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


def warp_images(images, weights, affine):
    """Warp ``images`` ``[B, H, W, C]`` (static H, W) by the TPS ``(weights, affine)``.

    Same result as ``bilinear_sample(images, tps_warp_grid(...))`` up to float rounding,
    but computed as integer pixel centre + displacement, so identity parameters return the
    input bit for bit. Returns ``[B, H, W, C]`` float32.
    """
    images = _float(images)
    height, width = _static_hw(images.shape[1], images.shape[2])
    disp = _basis_times(weights, affine, height, width, subtract_identity=True)
    xx, yy = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    half = np.array([(width - 1) / 2.0, (height - 1) / 2.0], np.float32)
    return _sample_pixels(images, np.stack([xx, yy], -1)[None] + disp * half)


def split_seed(seed, num: int = 2):
    """``[num, 2]`` int32 independent stateless seeds derived from ``seed`` ``[2]``.

    Replaces ``tf.random.experimental.stateless_split``, whose int64 draws differ between
    eager and ``jit_compile=True`` for seeds beyond 32 bits; int32 draws agree.
    """
    return tf.random.stateless_uniform([num, 2], seed, minval=None, maxval=None, dtype=tf.int32, alg="philox")


def _normal(shape, seed):
    """Standard normals from stateless int32 bits (identical eagerly and under XLA, unlike
    ``stateless_normal``, whose float conversion differs under ``jit_compile``)."""
    bits = tf.random.stateless_uniform(shape, seed, minval=None, maxval=None, dtype=tf.int32, alg="philox")
    top = tf.bitwise.right_shift(tf.bitcast(bits, tf.uint32), 8)
    return tf.math.ndtri((tf.cast(top, tf.float32) + 0.5) * 2.0**-24)


def random_tps_params(seed, batch, params: WarpParams, n: int = 10):
    """Official-style random TPS parameters (module docstring).

    Args:
      seed: stateless seed ``[2]`` int32/int64. batch: int or scalar int32 tensor.
      params: ``WarpParams`` (``a``, ``b`` kernel-weight stds, ``rotation_deg``, ``scale``,
        ``translation`` in normalised units).
    Returns:
      ``(weights [batch, n*n, 2], affine [batch, 3, 2])`` float32. Image ``i`` reads row
      ``i`` of one random stream, so its warp does not depend on ``batch``.
    """
    m2 = n * n * 2
    draws = _normal(tf.stack([batch, 3 * m2 + 4]), tf.convert_to_tensor(seed))
    shape = tf.stack([batch, n * n, 2])
    coin = tf.reshape(draws[:, 2 * m2 : 3 * m2], shape) > 0.0  # fair coin per point and axis
    weights = params.a * tf.reshape(draws[:, :m2], shape) + params.b * tf.where(
        coin, tf.reshape(draws[:, m2 : 2 * m2], shape), 0.0
    )
    aff = draws[:, 3 * m2 :]
    angle = aff[:, 0] * (params.rotation_deg * math.pi / 180.0)
    scale = 1.0 + params.scale * aff[:, 1]
    cos, sin = scale * tf.cos(angle), scale * tf.sin(angle)
    rows = [params.translation * aff[:, 2:4], tf.stack([cos, -sin], -1), tf.stack([sin, cos], -1)]
    return weights, tf.stack(rows, axis=1)


def random_warp_grids(seed, batch, height: int, width: int, params: WarpParams):
    """``[batch, height, width, 2]`` sampling grids (normalised ``(x, y)``) of random warps."""
    return tps_warp_grid(*random_tps_params(seed, batch, params), height, width)


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


def displacement_std(params: WarpParams, height: int, width: int, n: int = 10) -> np.ndarray:
    """``[height, width]`` closed-form std (per axis, normalised units) of the non-linear
    part of a random warp: ``sqrt((a^2 + b^2 / 2) * sum_i U(|p - c_i|^2)^2)``."""
    kernel = _pixel_basis(height, width, n)[:, : n * n].astype(np.float64)
    var = (params.a**2 + params.b**2 / 2.0) * np.sum(kernel**2, axis=1)
    return np.sqrt(var).reshape(height, width)


def warp_frame_pairs(images, future_images, seed, target_warp=TARGET_WARP, source_warp=SOURCE_WARP):
    """Two-frame version of ``warp_pairs``: ``x' = warp_t(future)``, ``x = warp_s(warp_t(images))``.

    Both inputs ``[B, H, W, C]``; returns the ``warp_pairs`` dict. For video pairs, where
    the frames already differ in geometry.
    """
    return _warp(images, future_images, seed, target_warp, source_warp)


def warp_pairs(images, seed, target_warp: WarpParams = TARGET_WARP, source_warp: WarpParams = SOURCE_WARP) -> dict:
    """Training pair of one image batch by two random TPS warps (official order).

    Args:
      images: ``[B, H, W, C]`` float32 (static H, W), e.g. RGB in ``[0, 255]``.
      seed: stateless seed ``[2]`` int; ``split_seed(seed)`` gives the target warp's seed
        ``[0]`` and the source warp's ``[1]`` (``random_warp_grids`` reproduces them).
    Returns:
      ``{"image": warp_s(warp_t(img)), "future_image": warp_t(img),
      "mask": warp_t(border_mask) [B, H, W, 1]}``, float32, zeros where sampling leaves
      the image.
    """
    return _warp(images, None, seed, target_warp, source_warp)


def _warp(images, future_images, seed, target_warp, source_warp) -> dict:
    images = _float(images)
    height, width = _static_hw(images.shape[1], images.shape[2])
    channels = images.shape[3]
    if channels is None:
        raise ValueError(f"warp_pairs needs a static channel count, got images of shape {images.shape}")
    seeds = split_seed(tf.convert_to_tensor(seed))
    batch = tf.shape(images)[0]
    mask = tf.broadcast_to(border_mask(height, width), tf.stack([batch, height, width, 1]))
    stack = [images, mask]
    if future_images is not None:
        stack[0] = _float(future_images)
        stack.append(images)
    warped = warp_images(tf.concat(stack, -1), *random_tps_params(seeds[0], batch, target_warp))
    future = warped[..., :channels]
    source = future if future_images is None else warped[..., channels + 1 :]
    image = warp_images(source, *random_tps_params(seeds[1], batch, source_warp))
    return {"image": image, "future_image": future, "mask": warped[..., channels : channels + 1]}


__all__ = [
    "control_grid", "tps_kernel", "fit_tps", "tps_transform_points", "tps_warp_grid",
    "bilinear_sample", "warp_images", "split_seed", "random_tps_params", "random_warp_grids",
    "border_mask", "displacement_std", "warp_pairs", "warp_frame_pairs",
]  # fmt: skip

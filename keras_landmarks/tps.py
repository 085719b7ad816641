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

Speed: the kernel matrix between the sampled positions and the control points depends
only on the image size, so it is a numpy constant built once per size; a warp is one
matmul plus one bilinear sampling. Randomness is stateless (``seed`` ``[2]`` int): the same
seed gives the same warp eagerly, in ``tf.data``, under ``jit_compile=True`` and with
either sampler.

Samplers and grids (``warp_pairs(sampler=, coarse_grid=)``; numbers from ``bench/tps.py``,
``bench/pairs.py`` and ``tests/test_tps.py``, 128 px, batch 50, 2-core CPU):

* ``sampler="tf"`` (default, the reference): pure TF, runs in any graph, XLA, GPU. On
  CPU its ``tf.gather`` sampling costs 3-6x the CPU time per pair of ``"cv2"``.
* ``sampler="cv2"``: the same spline nodes from TF, sampled by OpenCV ``cv2.remap`` in one
  ``tf.numpy_function`` per batch (``tps_cv2.py``); parallel ``tf.data`` map calls run on
  all cores. ~5e-5 grey levels (of 255) from ``"tf"`` with exact grids, ~2e-3 with coarse
  ones (the two upsample in another float order). CPU ``tf.data`` pipelines only.
* ``coarse_grid=None`` (default): the spline at every pixel. ``coarse_grid=m``: at
  ``m x m`` nodes (``linspace(-1, 1, m)``), upsampled bilinearly (corner-aligned). The
  spline is smooth: over 200 source warps (~5 px displacements) ``m = 33`` is off by at
  most 0.084 px (mean 0.010 px) and saves 20-40% of the ``"cv2"`` CPU time per pair;
  ``m = 17`` is off by 0.33 px for no measurable further saving, ``m = 65`` by 0.021 px
  at ~10% more CPU. ``PIPELINE_SAMPLER``/``PIPELINE_COARSE_GRID`` (``"cv2"``, 33) are
  what the CPU ``tf.data`` pipelines use.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import tensorflow as tf

from keras_landmarks.config import SOURCE_WARP, TARGET_WARP, WarpParams

SAMPLERS = ("tf", "cv2")
# What the CPU tf.data pipelines (data/folders, celeb_a, synthetic, video) pass to
# warp_pairs (module docstring, "Samplers and grids").
PIPELINE_SAMPLER = "cv2"
PIPELINE_COARSE_GRID = 33

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


def _grid_shape(height: int, width: int, coarse_grid: int | None) -> tuple[int, int]:
    """Nodes ``(m_h, m_w)`` the spline is evaluated at: every pixel, or ``coarse_grid`` per axis."""
    if coarse_grid is None:
        return height, width
    if int(coarse_grid) < 2:
        raise ValueError(f"coarse_grid must be None or >= 2, got {coarse_grid}")
    return min(int(coarse_grid), height), min(int(coarse_grid), width)


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
    disp = _node_displacement(weights, affine, height, width, coarse_grid, _half(height, width))
    xx, yy = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return _sample_pixels(images, np.stack([xx, yy], -1)[None] + _upsample(disp, height, width))


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


def random_warp_grids(seed, batch, height: int, width: int, params: WarpParams, coarse_grid: int | None = None):
    """``[batch, height, width, 2]`` sampling grids (normalised ``(x, y)``) of random warps."""
    return tps_warp_grid(*random_tps_params(seed, batch, params), height, width, coarse_grid)


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


def warp_frame_pairs(images, future_images, seed, target_warp=TARGET_WARP, source_warp=SOURCE_WARP, *,
                     sampler: str = "tf", coarse_grid: int | None = None):
    """Two-frame version of ``warp_pairs``: ``x' = warp_t(future)``, ``x = warp_s(warp_t(images))``.

    Both inputs ``[B, H, W, C]``; returns the ``warp_pairs`` dict. For video pairs, where
    the frames already differ in geometry.
    """
    return _warp(images, future_images, seed, target_warp, source_warp, sampler, coarse_grid)


def warp_pairs(images, seed, target_warp: WarpParams = TARGET_WARP, source_warp: WarpParams = SOURCE_WARP, *,
               sampler: str = "tf", coarse_grid: int | None = None) -> dict:
    """Training pair of one image batch by two random TPS warps (official order).

    Args:
      images: ``[B, H, W, C]`` (static H, W, C), uint8 or float, e.g. RGB in ``[0, 255]``.
      seed: stateless seed ``[2]`` int; ``split_seed(seed)`` gives the target warp's seed
        ``[0]`` and the source warp's ``[1]`` (``random_warp_grids`` reproduces them).
      sampler: ``"tf"`` (pure TF: XLA, GPU, any graph) or ``"cv2"`` (``cv2.remap`` in a
        ``tf.numpy_function``: CPU ``tf.data`` pipelines); same warps (module docstring).
      coarse_grid: None: the spline at every pixel; ``m``: on ``m x m`` nodes, upsampled
        bilinearly (``PIPELINE_COARSE_GRID`` = 33: <= 0.09 px from exact at 128 px).
    Returns:
      ``{"image": warp_s(warp_t(img)), "future_image": warp_t(img),
      "mask": warp_t(border_mask) [B, H, W, 1]}``, float32, zeros where sampling leaves
      the image.
    """
    return _warp(images, None, seed, target_warp, source_warp, sampler, coarse_grid)


def _warp(images, future_images, seed, target_warp, source_warp, sampler, coarse_grid) -> dict:
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    images = tf.convert_to_tensor(images)
    height, width = _static_hw(images.shape[1], images.shape[2])
    channels = images.shape[3]
    if channels is None:
        raise ValueError(f"warp_pairs needs a static channel count, got images of shape {images.shape}")
    seeds = split_seed(tf.convert_to_tensor(seed))
    batch = tf.shape(images)[0]
    t_params = random_tps_params(seeds[0], batch, target_warp)
    s_params = random_tps_params(seeds[1], batch, source_warp)
    if sampler == "cv2":
        from keras_landmarks import tps_cv2  # OpenCV only when asked for

        return tps_cv2.warp_pairs_graph(images, future_images, t_params, s_params, coarse_grid)
    images = _float(images)
    mask = tf.broadcast_to(border_mask(height, width), tf.stack([batch, height, width, 1]))
    stack = [images, mask]
    if future_images is not None:
        stack[0] = _float(future_images)
        stack.append(images)
    warped = warp_images(tf.concat(stack, -1), *t_params, coarse_grid)
    future = warped[..., :channels]
    source = future if future_images is None else warped[..., channels + 1 :]
    image = warp_images(source, *s_params, coarse_grid)
    return {"image": image, "future_image": future, "mask": warped[..., channels : channels + 1]}


__all__ = [
    "SAMPLERS", "PIPELINE_SAMPLER", "PIPELINE_COARSE_GRID", "control_grid", "tps_kernel", "fit_tps", "tps_transform_points", "tps_warp_grid",
    "bilinear_sample", "warp_images", "split_seed", "random_tps_params", "random_warp_grids",
    "border_mask", "displacement_std", "warp_pairs", "warp_frame_pairs",
]  # fmt: skip

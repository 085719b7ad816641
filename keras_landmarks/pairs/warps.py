"""Training pairs by random thin-plate-spline warps (PAPER.md "Training pairs"; math in ``tps.py``).

A warp is the backward map ``s(p)`` of ``tps.py`` (``weights`` ``[B, n*n, 2]``, ``affine``
``[B, 3, 2]``); a pair is ``x' = warp_t(img)``, ``x = warp_s(warp_t(img))``.

Random warps follow the official code (``imm/utils/tps_sampler.py``), whose random numbers
are the spline's kernel *weights*, not control-point displacements:
``weights = N(0, a) + mask * N(0, b)`` with ``mask`` a fair coin per control point and
axis; rotation ``N(0, r)`` degrees, scale ``1 + N(0, s)``, translation ``N(0, t)``. With
the target warp's ``a=0.001, b=0.005`` the non-linear part moves a pixel by a std of 0.016
(centre) to 0.19 (corners) normalised units, 4.8 px on average at 128 px
(``tps.displacement_std``); displacements of 0.001 would be invisible.

Randomness is stateless (``seed`` ``[2]`` int): the same seed gives the same warp eagerly,
in ``tf.data``, under ``jit_compile=True``, with either sampler and in the NumPy pipeline.

Samplers and grids (``warp_pairs(sampler=, coarse_grid=)``; numbers from ``bench/tps.py``,
``bench/pairs.py`` and ``tests/test_tps.py``, 128 px, batch 50, 2-core CPU):

* ``sampler="tf"`` (default, the reference): pure TF, runs in any graph, XLA, GPU. On
  CPU its ``tf.gather`` sampling costs 3-6x the CPU time per pair of ``"cv2"``.
* ``sampler="cv2"``: ``numpy_warps.pair_arrays`` in one ``tf.numpy_function`` per batch, the
  warp stage the NumPy pipeline runs too: TF's Philox draws reproduced in NumPy
  (``philox``: the same bits, normals within 4 float32 ulps), the spline on the nodes in
  NumPy, OpenCV ``cv2.remap`` sampling (``cv2_sampler.py``); parallel ``tf.data`` map calls
  run on all cores. ~1e-3 grey levels (of 255) from ``"tf"`` on noise with exact grids,
  ~2e-2 with coarse ones (the two upsample in another float order). CPU pipelines only.
* ``coarse_grid=None`` (default): the spline at every pixel. ``coarse_grid=m``: at
  ``m x m`` nodes (``linspace(-1, 1, m)``), upsampled bilinearly (corner-aligned). The
  spline is smooth: over 200 source warps (~5 px displacements) ``m = 33`` is off by at
  most 0.084 px (mean 0.010 px) and saves 20-40% of the ``"cv2"`` CPU time per pair;
  ``m = 17`` is off by 0.33 px for no measurable further saving, ``m = 65`` by 0.021 px
  at ~10% more CPU. ``PIPELINE_SAMPLER``/``PIPELINE_COARSE_GRID`` (``"cv2"``, 33) are
  what the CPU ``tf.data`` pipelines use.
"""
from __future__ import annotations

import math

import tensorflow as tf

from keras_landmarks.config import SOURCE_WARP, TARGET_WARP, WarpParams
from keras_landmarks.pairs import numpy_warps
from keras_landmarks.pairs.numpy_warps import border_mask
from keras_landmarks.pairs.tps import _float, _static_hw, tps_warp_grid, warp_images

SAMPLERS = ("tf", "cv2")
# What the CPU tf.data pipelines (data/folders, celeb_a, synthetic, video) pass to
# warp_pairs (module docstring, "Samplers and grids").
PIPELINE_SAMPLER = "cv2"
PIPELINE_COARSE_GRID = numpy_warps.COARSE_GRID

def split_seed(seed, num: int = 2):
    """``[num, 2]`` int32 independent stateless seeds derived from ``seed`` ``[2]``.

    Replaces ``tf.random.experimental.stateless_split``, whose int64 draws differ between
    eager and ``jit_compile=True`` for seeds beyond 32 bits; int32 draws agree.
    """
    return tf.random.stateless_uniform([num, 2], seed, minval=None, maxval=None, dtype=tf.int32, alg="philox")


def _normal(shape, seed):
    """Standard normals from stateless int32 bits (identical eagerly and under XLA, unlike
    ``stateless_normal``, whose float conversion differs under ``jit_compile``).

    The top 23 bits ``t`` give ``u = (t + 0.5) 2^-23``, exact in float32 and inside
    ``[2^-24, 1 - 2^-24]``, so every draw is finite (|z| <= 5.3). With 24 bits, ``t + 0.5``
    rounded to ``2^24`` once in 2^24 draws and gave ``u = 1``, an infinite normal: an
    infinite warp about once per 1,700 batches of 16 (a black or, with another border
    mode, a NaN image)."""
    return normal_from_bits(tf.random.stateless_uniform(shape, seed, minval=None, maxval=None, dtype=tf.int32,
                                                        alg="philox"))


def normal_from_bits(bits):
    """``_normal``'s map from int32 random bits to standard normals (any shape)."""
    top = tf.bitwise.right_shift(tf.bitcast(bits, tf.uint32), 9)
    return tf.math.ndtri((tf.cast(top, tf.float32) + 0.5) * 2.0**-23)


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
    if sampler == "cv2":
        return _numpy_pairs(images, future_images, seed, target_warp, source_warp, coarse_grid)
    seeds = split_seed(tf.convert_to_tensor(seed))
    batch = tf.shape(images)[0]
    t_params = random_tps_params(seeds[0], batch, target_warp)
    s_params = random_tps_params(seeds[1], batch, source_warp)
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


def _as_input(images):
    """uint8 and float32 pass as they are (no TF cast op); anything else becomes float32."""
    images = tf.convert_to_tensor(images)
    return images if images.dtype in (tf.uint8, tf.float32) else tf.cast(images, tf.float32)


def _numpy_pairs(images, future_images, seed, target_warp, source_warp, coarse_grid) -> dict:
    """``sampler="cv2"``: ``numpy_warps.pair_arrays`` (the same draws, spline and OpenCV
    sampling as the NumPy pipeline) in one ``tf.numpy_function`` per batch. Its outputs are
    64-byte aligned, so TF wraps them without a copy."""
    inputs = [_as_input(images), tf.cast(tf.convert_to_tensor(seed), tf.int64)]  # int32 seeds sign-extend alike
    shape = inputs[0].shape
    if future_images is not None:
        inputs.append(_as_input(future_images))
        if not inputs[2].shape.is_compatible_with(shape):
            raise ValueError(f"future_images {inputs[2].shape} must have the shape of images {shape}")

    def kernel(imgs, batch_seed, *future):
        return numpy_warps.pair_arrays(imgs, batch_seed, target_warp, source_warp, *future, coarse_grid=coarse_grid)

    image, future, warped_mask = tf.numpy_function(kernel, inputs, (tf.float32,) * 3, stateful=False)
    image.set_shape(shape)
    future.set_shape(shape)
    warped_mask.set_shape(shape[:3].concatenate([1]))
    return {"image": image, "future_image": future, "mask": warped_mask}


def pipeline_pairs(images, seed, target_warp: WarpParams = TARGET_WARP, source_warp: WarpParams = SOURCE_WARP,
                   future_images=None) -> dict:
    """The warp stage of every CPU ``tf.data`` source: ``warp_pairs`` (or ``warp_frame_pairs``
    when ``future_images`` is given) with ``PIPELINE_SAMPLER`` and ``PIPELINE_COARSE_GRID``."""
    return _warp(images, future_images, seed, target_warp, source_warp, PIPELINE_SAMPLER, PIPELINE_COARSE_GRID)


def batch_seed(seed: int, index):
    """Stateless seed ``[2]`` int64 of batch ``index`` of a stream seeded ``seed``: ``[seed, index]``."""
    return tf.stack([tf.constant(seed, tf.int64), tf.cast(index, tf.int64)])


def warp_batches(batches: tf.data.Dataset, seed: int, target_warp: WarpParams = TARGET_WARP,
                 source_warp: WarpParams = SOURCE_WARP, *, frames: bool = False,
                 deterministic: bool = True) -> tf.data.Dataset:
    """Training pairs of a dataset of image batches; batch ``i`` is warped with ``batch_seed(seed, i)``.

    Args:
      batches: ``[B, S, S, C]`` uint8/float batches, or (``frames=True``) ``(frame_a, frame_b)``
        tuples of two such batches (video pairs: ``x' = warp_t(b)``, ``x = warp_s(warp_t(a))``).
    Returns:
      the ``warp_pairs`` dicts, prefetched.
    """
    def warp(index, batch):
        first, future = batch if frames else (batch, None)
        return pipeline_pairs(first, batch_seed(seed, index), target_warp, source_warp, future)

    ds = batches.enumerate().map(warp, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    return ds.prefetch(tf.data.AUTOTUNE)


__all__ = [
    "SAMPLERS", "PIPELINE_SAMPLER", "PIPELINE_COARSE_GRID", "split_seed", "random_tps_params", "random_warp_grids",
    "border_mask", "warp_pairs", "warp_frame_pairs", "pipeline_pairs", "batch_seed", "warp_batches",
]  # fmt: skip

"""CIE Lab colours and the quantised ab space of colorization (Zhang et al., ECCV 2016).

Colours: sRGB ``[0, 255]`` <-> CIE L*a*b* under D65, exact formulas, batched ``[..., 3]``
TensorFlow ops (float32 or float64). The ab plane is cut into a grid of step 10; the bins
kept (``ab_bins``) are the grid cells that some sRGB colour falls into (261 here; Zhang
et al. report 313 for a looser in-gamut test with the same extents, a in [-90, 100],
b in [-110, 90]). A colorization network predicts a distribution over these ``Q`` bins:

* targets: ``soft_encode`` puts each pixel's ab on its 5 nearest bins with Gaussian
  weights (sigma 5);
* class rebalancing: ``w = ((1 - lambda) p~ + lambda / Q)^-1`` normalised to
  ``E_p~[w] = 1`` (``rebalance_weights``, lambda 0.5), where ``p~`` is the empirical
  distribution of the training pixels' nearest bins smoothed over ab with a Gaussian
  (sigma 5, ``smooth_prior``); a pixel's loss is weighted by the weight of its nearest bin;
* pictures: ``annealed_mean`` (temperature 0.38) turns a prediction into one ab value.
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

# Linear sRGB -> CIE XYZ (IEC 61966-2-1 primaries, D65 white). The reference white is the
# XYZ of sRGB white (the row sums), so sRGB white is exactly L=100, a=b=0.
SRGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                        [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])
WHITE_D65 = SRGB_TO_XYZ.sum(axis=1)  # (0.95047, 1.0, 1.08883)
_DELTA = 6.0 / 29.0  # threshold of the Lab f(t): linear below DELTA^3
# Rec. 601 luma weights of gamma-encoded R, G, B (what "grey" means for the network).
LUMA_RGB = (0.299, 0.587, 0.114)

BIN_STEP = 10.0  # ab grid step
SOFT_NEIGHBOURS = 5  # bins per pixel in the soft encoding
SOFT_SIGMA = 5.0  # Gaussian sigma of the soft encoding (ab units)
PRIOR_SIGMA = 5.0  # Gaussian sigma of the prior's smoothing (ab units)
REBALANCE_LAMBDA = 0.5  # weight of the uniform distribution in the rebalancing mix
ANNEAL_TEMPERATURE = 0.38  # annealed-mean temperature


def rgb_to_lab(rgb):
    """sRGB ``[..., 3]`` in ``[0, 255]`` -> CIE Lab ``[..., 3]`` (L in [0, 100]), same float dtype."""
    rgb = tf.convert_to_tensor(rgb)
    c = rgb / tf.constant(255.0, rgb.dtype)
    linear = tf.where(c <= 0.04045, c / 12.92, tf.pow((tf.maximum(c, 0.04045) + 0.055) / 1.055, 2.4))
    matrix = tf.constant(SRGB_TO_XYZ / WHITE_D65[:, None], rgb.dtype)  # white -> (1, 1, 1)
    xyz = tf.linalg.matvec(matrix, linear)
    f = tf.where(xyz > _DELTA ** 3, tf.pow(tf.maximum(xyz, _DELTA ** 3), 1.0 / 3.0),
                 xyz / (3.0 * _DELTA ** 2) + 4.0 / 29.0)
    fx, fy, fz = tf.unstack(f, axis=-1)
    return tf.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)


def lab_to_rgb(lab):
    """CIE Lab ``[..., 3]`` -> sRGB ``[..., 3]`` in ``[0, 255]``; out-of-gamut colours are
    clipped (in linear RGB). Inverts ``rgb_to_lab`` on in-gamut colours."""
    lab = tf.convert_to_tensor(lab)
    l, a, b = tf.unstack(lab, axis=-1)
    fy = (l + 16.0) / 116.0
    f = tf.stack([fy + a / 500.0, fy, fy - b / 200.0], axis=-1)
    xyz = tf.where(f > _DELTA, f ** 3, 3.0 * _DELTA ** 2 * (f - 4.0 / 29.0))
    matrix = tf.constant(np.linalg.inv(SRGB_TO_XYZ / WHITE_D65[:, None]), lab.dtype)
    linear = tf.clip_by_value(tf.linalg.matvec(matrix, xyz), 0.0, 1.0)
    c = tf.where(linear <= 0.0031308, 12.92 * linear,
                 1.055 * tf.pow(tf.maximum(linear, 0.0031308), 1.0 / 2.4) - 0.055)
    return 255.0 * c


def luma(rgb):
    """Rec. 601 luma ``[..., 1]`` of RGB ``[..., 3]`` (same scale): 0.299 R + 0.587 G + 0.114 B."""
    rgb = tf.convert_to_tensor(rgb)
    return tf.reduce_sum(rgb * tf.constant(LUMA_RGB, rgb.dtype), -1, keepdims=True)


@functools.lru_cache(maxsize=1)
def ab_bins() -> np.ndarray:
    """The in-gamut ab bins, ``[Q, 2]`` float32 (a, b), sorted by a then b.

    Every sRGB colour of a grid with 86 levels per channel (0, 3, ..., 255) is converted to
    Lab and its ab rounded to the nearest multiple of ``BIN_STEP``; the bins reached are
    kept. (The same set as all 256^3 colours, checked once; computed on first use, ~0.5 s.)
    """
    levels = np.arange(0.0, 256.0, 3.0)
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 3)
    ab = rgb_to_lab(tf.constant(grid, tf.float64)).numpy()[:, 1:]
    cells = np.round(ab / BIN_STEP).astype(np.int64)
    low = cells.min(axis=0)
    reached = np.zeros(cells.max(axis=0) - low + 1, bool)
    reached[cells[:, 0] - low[0], cells[:, 1] - low[1]] = True
    return ((np.argwhere(reached) + low) * BIN_STEP).astype(np.float32)  # row-major: a, then b


def soft_encode(ab, bins: np.ndarray | None = None, neighbours: int = SOFT_NEIGHBOURS,
                sigma: float = SOFT_SIGMA):
    """Soft targets: each ab value on its ``neighbours`` nearest bins.

    Args:
      ab: ``[..., 2]`` float32 (a, b).
      bins: ``[Q, 2]``, default ``ab_bins()``.
    Returns:
      ``(indices [..., n] int32, weights [..., n] float32)``: bins by increasing distance
      (``indices[..., 0]`` is the nearest) and ``exp(-d^2 / (2 sigma^2))`` normalised to
      sum 1 over the ``n`` bins.
    """
    bins = tf.constant(ab_bins() if bins is None else bins, tf.float32)
    ab = tf.convert_to_tensor(ab, tf.float32)
    flat = tf.reshape(ab, [-1, 2])
    d2 = (tf.reduce_sum(flat ** 2, -1, keepdims=True) - 2.0 * tf.matmul(flat, bins, transpose_b=True)
          + tf.reduce_sum(bins ** 2, -1)[None, :])
    neg_d2, indices = tf.math.top_k(-d2, k=neighbours)
    weights = tf.nn.softmax(neg_d2 / (2.0 * sigma ** 2), axis=-1)
    shape = tf.concat([tf.shape(ab)[:-1], [neighbours]], 0)
    return tf.reshape(indices, shape), tf.reshape(weights, shape)


def smooth_prior(counts, bins: np.ndarray | None = None, sigma: float = PRIOR_SIGMA) -> np.ndarray:
    """``p~``: bin counts ``[Q]`` -> a distribution smoothed with a Gaussian over ab, ``[Q]`` float64.

    ``p~_q ∝ sum_r p_r exp(-|ab_q - ab_r|^2 / (2 sigma^2))`` over the in-gamut bins.
    """
    bins = np.asarray(ab_bins() if bins is None else bins, np.float64)
    p = np.asarray(counts, np.float64)
    if p.shape != (len(bins),) or p.sum() <= 0 or np.any(p < 0):
        raise ValueError(f"need {len(bins)} non-negative bin counts with a positive sum")
    d2 = ((bins[:, None, :] - bins[None, :, :]) ** 2).sum(-1)
    smoothed = np.exp(-d2 / (2.0 * sigma ** 2)) @ (p / p.sum())
    return smoothed / smoothed.sum()


def rebalance_weights(prior, lam: float = REBALANCE_LAMBDA) -> np.ndarray:
    """Class-rebalancing weights ``[Q]`` float64: ``((1 - lam) p~ + lam / Q)^-1`` scaled so
    that ``sum_q p~_q w_q = 1`` (the expected weight of a pixel is 1)."""
    prior = np.asarray(prior, np.float64)
    w = 1.0 / ((1.0 - lam) * prior + lam / len(prior))
    return w / np.sum(prior * w)


def annealed_mean(logits, bins: np.ndarray | None = None, temperature: float = ANNEAL_TEMPERATURE):
    """ab ``[..., 2]`` from bin logits ``[..., Q]``: the mean of ``softmax(logits / T)``, i.e.
    the predicted distribution re-normalised after ``p^(1/T)`` (Zhang et al.'s annealed mean)."""
    bins = tf.constant(ab_bins() if bins is None else bins, tf.float32)
    probs = tf.nn.softmax(tf.cast(logits, tf.float32) / temperature, axis=-1)
    return tf.tensordot(probs, bins, axes=[[-1], [0]])

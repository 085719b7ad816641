"""Coordinate conventions and the pure math of the keypoint bottleneck.

One convention holds across the whole project:

* Points are ``(x, y)``: ``[..., 0]`` is the horizontal coordinate, ``[..., 1]`` the
  vertical one (the official code stores ``(y, x)``; we never do).
* **Normalised** coordinates lie in ``[-1, 1]`` where ``-1`` and ``+1`` are the *centres*
  of the first and last pixel along that axis. A grid of ``n`` cells therefore has cell
  centres at ``linspace(-1, 1, n)``, whatever ``n`` is, so one normalised point means the
  same place on the 16x16 heatmap and on the 128x128 image.
* **Pixel** coordinates are 0-based with integer values at pixel centres, so on an image
  of width ``W``: ``x_pix = (x_norm + 1) / 2 * (W - 1)``.

Everything here uses ``keras.ops`` so it runs inside Keras layers on any backend, in
``tf.function`` and under XLA.
"""

from __future__ import annotations

import numpy as np
from keras import ops


def grid_coordinates(n: int, dtype: str = "float32"):
    """Cell-centre coordinates of an ``n``-cell axis: ``linspace(-1, 1, n)``, shape ``[n]``."""
    if n < 2:
        raise ValueError(f"a coordinate axis needs at least 2 cells, got {n}")
    return ops.cast(ops.linspace(-1.0, 1.0, n), dtype)


def pixels_to_normalized(points, image_size):
    """Pixel ``(x, y)`` -> normalised ``[-1, 1]`` (pixel-centre convention).

    Args:
      points: ``[..., 2]`` pixel coordinates ``(x, y)``, 0-based, integer = pixel centre.
      image_size: ``(height, width)`` of the image, or one int for a square image.
    Returns:
      ``[..., 2]`` normalised coordinates, same dtype.
    """
    h, w = _hw(image_size)
    scale = ops.convert_to_tensor([(w - 1) / 2.0, (h - 1) / 2.0], dtype=points.dtype)
    return points / scale - 1.0


def normalized_to_pixels(points, image_size):
    """Normalised ``[-1, 1]`` ``(x, y)`` -> pixel ``(x, y)``; inverse of ``pixels_to_normalized``."""
    h, w = _hw(image_size)
    scale = ops.convert_to_tensor([(w - 1) / 2.0, (h - 1) / 2.0], dtype=points.dtype)
    return (points + 1.0) * scale


def soft_argmax(score_maps):
    """Separable soft-argmax of raw score maps (the official bottleneck).

    For the y coordinate the scores are averaged over the x axis, a softmax over y turns
    the profile into a distribution, and its expectation over ``linspace(-1, 1, H)`` is
    the coordinate; likewise for x. This is the official code's *mean* (the paper's text
    says *sum*: a ``1/W`` difference in softmax temperature).

    Args:
      score_maps: ``[B, H, W, K]`` raw (unnormalised) scores.
    Returns:
      ``[B, K, 2]`` points ``(x, y)`` in normalised ``[-1, 1]`` coordinates, float32
      (computed in float32 even for low-precision scores, so the softmax stays exact).
    """
    scores = ops.cast(score_maps, "float32")
    height, width = scores.shape[1], scores.shape[2]
    # Profiles along each axis: [B, W, K] for x, [B, H, K] for y.
    px = ops.softmax(ops.mean(scores, axis=1), axis=1)
    py = ops.softmax(ops.mean(scores, axis=2), axis=1)
    x = ops.sum(px * grid_coordinates(width)[None, :, None], axis=1)  # [B, K]
    y = ops.sum(py * grid_coordinates(height)[None, :, None], axis=1)
    return ops.stack([x, y], axis=-1)


def gaussian_maps(points, height: int, width: int, sigma: float = 0.1, mode: str = "rot"):
    """Render each point as an isotropic Gaussian on an ``height x width`` grid.

    ``mode="rot"`` (official default): ``exp(-d^2 / sigma^2)``.
    ``mode="paper"`` (the paper's text): ``exp(-d^2 / (2 sigma^2))``.
    ``d`` is the distance in normalised coordinates between the point and each cell
    centre (``linspace(-1, 1, n)`` on each axis); the peak value 1 sits at the point.

    Args:
      points: ``[B, K, 2]`` ``(x, y)`` normalised.
    Returns:
      ``[B, height, width, K]`` maps, dtype of ``points``.
    """
    if mode == "rot":
        denom = sigma**2
    elif mode == "paper":
        denom = 2.0 * sigma**2
    else:
        raise ValueError(f"gaussian mode must be 'rot' or 'paper', got {mode!r}")
    xs = ops.cast(grid_coordinates(width), points.dtype)
    ys = ops.cast(grid_coordinates(height), points.dtype)
    mx = points[:, None, :, 0]  # [B, 1, K]
    my = points[:, None, :, 1]
    gx = ops.exp(-ops.square(xs[None, :, None] - mx) / denom)  # [B, W, K]
    gy = ops.exp(-ops.square(ys[None, :, None] - my) / denom)  # [B, H, K]
    # The Gaussian is separable: exp(-(dx^2 + dy^2)) = exp(-dx^2) * exp(-dy^2).
    return gy[:, :, None, :] * gx[:, None, :, :]


def _hw(image_size) -> tuple[int, int]:
    if isinstance(image_size, (int, np.integer)):
        return int(image_size), int(image_size)
    h, w = image_size
    return int(h), int(w)


__all__ = [
    "grid_coordinates",
    "pixels_to_normalized",
    "normalized_to_pixels",
    "soft_argmax",
    "gaussian_maps",
]

"""The one coordinate convention of the project, and its conversions.

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
``tf.function`` and under XLA. The bottleneck's math (soft-argmax, Gaussian maps) that
relies on it lives in ``keras_landmarks.networks.bottleneck``.
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


def _hw(image_size) -> tuple[int, int]:
    if isinstance(image_size, (int, np.integer)):
        return int(image_size), int(image_size)
    h, w = image_size
    return int(h), int(w)


__all__ = [
    "grid_coordinates",
    "pixels_to_normalized",
    "normalized_to_pixels",
]

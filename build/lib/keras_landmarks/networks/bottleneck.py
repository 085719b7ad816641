"""The keypoint bottleneck: score maps -> points -> Gaussian maps (PAPER.md "Networks").

The math (``soft_argmax``, ``gaussian_maps``) and the two layers that wrap it. Coordinates
follow ``keras_landmarks.geometry``: ``(x, y)`` in ``[-1, 1]``, -1/+1 at the first/last
pixel centre.
"""

from __future__ import annotations

import keras
from keras import ops

from keras_landmarks.geometry import grid_coordinates


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


@keras.saving.register_keras_serializable(package="keras_landmarks")
class SoftArgmaxKeypoints(keras.layers.Layer):
    """Raw score maps ``[B, H, W, K]`` -> keypoints ``[B, K, 2]`` ``(x, y)`` in ``[-1, 1]``.

    Separable soft-argmax (official code): mean over the other axis, softmax, expectation
    over ``linspace(-1, 1, n)``. Output is float32 whatever the compute dtype.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)

    def call(self, score_maps):
        return soft_argmax(score_maps)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[3], 2)


@keras.saving.register_keras_serializable(package="keras_landmarks")
class GaussianMaps(keras.layers.Layer):
    """Keypoints ``[B, K, 2]`` ``(x, y)`` normalised -> maps ``[B, height, width, K]``.

    ``mode="rot"`` (official): ``exp(-d^2 / sigma^2)``; ``mode="paper"``:
    ``exp(-d^2 / (2 sigma^2))``. ``sigma`` is in normalised units (the grid spans 2).
    """

    def __init__(self, height: int, width: int, sigma: float = 0.1, mode: str = "rot", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("rot", "paper"):
            raise ValueError(f"mode must be 'rot' or 'paper', got {mode!r}")
        if sigma <= 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        self.height = int(height)
        self.width = int(width)
        self.sigma = float(sigma)
        self.mode = mode

    def call(self, points):
        points = keras.ops.cast(points, self.compute_dtype)
        return gaussian_maps(points, self.height, self.width, self.sigma, self.mode)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.height, self.width, input_shape[1])

    def get_config(self):
        config = super().get_config()
        config.update(height=self.height, width=self.width, sigma=self.sigma, mode=self.mode)
        return config

"""The keypoint bottleneck: score maps -> points -> Gaussian maps.

Both layers are thin wrappers over ``geometry`` (which fixes the coordinate
convention: ``(x, y)`` in ``[-1, 1]``, -1/+1 at the first/last pixel centre).
"""

from __future__ import annotations

import keras

from keras_landmarks import geometry


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
        return geometry.soft_argmax(score_maps)

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
        return geometry.gaussian_maps(points, self.height, self.width, self.sigma, self.mode)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.height, self.width, input_shape[1])

    def get_config(self):
        config = super().get_config()
        config.update(height=self.height, width=self.width, sigma=self.sigma, mode=self.mode)
        return config

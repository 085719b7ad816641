"""An optional equivariance term on the detector (not in the paper; issue 26's lever).

The paper's detector learns only through the reconstruction. This term also asks it to
follow a known geometric change: the target ``x'`` is warped by a random similarity ``M``
(rotation, scale, translation) inside the train step, the detector sees both, and a point
``q`` found on the warped image must map back onto the point ``p`` found on ``x'``:

    e[b] = mean_k |M_b q[b, k] - p[b, k]|^2        (normalised units, ``geometry``)

``M`` maps a point of the *warped* image to the point of ``x'`` that it shows (the same
direction as ``keras.ops.image.affine_transform``'s matrices), so no inverse is needed and
the term is exact for any ``M``. It is computed on the model side, so both pair pipelines
(TPS and video) get it without carrying their own warps, on every backend.

Conventions: images ``[B, S, S, C]`` (channels last), points ``[B, K, 2]`` float32 ``(x, y)``
normalised ``[-1, 1]`` pixel-centre (``geometry``), matrices ``[B, 2, 3]`` float32
``[A | t]`` acting on normalised points: ``p = A q + t``.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from keras_landmarks.config import SimilarityParams


def random_similarities(seed, batch_size, params: SimilarityParams):
    """``[batch_size, 2, 3]`` float32 similarity matrices ``[s R(theta) | t]``.

    ``theta ~ N(0, params.rotation_deg)`` degrees, ``s = 1 + N(0, params.scale)`` (kept
    >= 0.5), ``t ~ N(0, params.translation)`` per axis. ``seed``: a ``keras.random.SeedGenerator``.
    """
    theta = keras.random.normal((batch_size,), stddev=math.radians(params.rotation_deg), seed=seed)
    scale = ops.maximum(1.0 + keras.random.normal((batch_size,), stddev=params.scale, seed=seed), 0.5)
    shift = keras.random.normal((batch_size, 2), stddev=params.translation, seed=seed)
    cos, sin = scale * ops.cos(theta), scale * ops.sin(theta)
    rows = [ops.stack([cos, -sin, shift[:, 0]], axis=-1), ops.stack([sin, cos, shift[:, 1]], axis=-1)]
    return ops.stack(rows, axis=1)


def apply(matrices, points):
    """``[B, K, 2]`` points ``p = A q + t`` for ``[B, 2, 3]`` ``matrices`` and ``[B, K, 2]`` ``points`` q."""
    matrices, points = ops.convert_to_tensor(matrices, "float32"), ops.convert_to_tensor(points, "float32")
    return ops.einsum("bij,bkj->bki", matrices[:, :, :2], points) + matrices[:, None, :, 2]


def warp_images(images, matrices):
    """The images seen through ``matrices``: output pixel ``q`` shows input point ``A q + t``.

    Args:
      images: ``[B, S, S, C]`` float (channels last); every image the same square size.
      matrices: ``[B, 2, 3]`` float32, on normalised points (``random_similarities``).
    Returns:
      ``[B, S, S, C]``, bilinear, the border reflected (no black corners for the detector
      to key on), ``images``' dtype.
    """
    size, dtype = images.shape[1], keras.backend.standardize_dtype(images.dtype)
    half = (size - 1) / 2.0  # pixel = half * (normalised + 1) (geometry's convention)
    matrices = ops.convert_to_tensor(matrices, "float32")
    a, t = matrices[:, :, :2], matrices[:, :, 2]
    # In pixels: p_pix = A q_pix + half * (t + 1 - A 1).
    offset = half * (t + 1.0 - ops.sum(a, axis=-1))
    zeros = ops.zeros_like(offset[:, :1])
    rows = ops.concatenate([a[:, 0], offset[:, :1], a[:, 1], offset[:, 1:], zeros, zeros], axis=-1)
    warped = ops.image.affine_transform(ops.convert_to_tensor(images, "float32"), rows, interpolation="bilinear",
                                        fill_mode="reflect", data_format="channels_last")
    return ops.cast(warped, dtype)


def per_example_errors(points, warped_points, matrices):
    """``[B]`` float32 ``mean_k |M q - p|^2``: ``points`` p ``[B, K, 2]`` on the images,
    ``warped_points`` q ``[B, K, 2]`` on ``warp_images(images, matrices)``."""
    diff = apply(matrices, warped_points) - ops.convert_to_tensor(points, "float32")
    return ops.mean(ops.sum(ops.square(diff), axis=-1), axis=-1)


__all__ = ["apply", "per_example_errors", "random_similarities", "warp_images"]

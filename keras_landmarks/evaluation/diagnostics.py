"""Is my run learning? Label-free diagnostics of a detector and its model.

All three need images only (no labels), and each has a known answer for a degenerate model:

* **Equivariance error**: detect points ``p`` on images, and ``p'`` on a known random warp
  of them (the target warp of training, a thin-plate spline: ``pairs.tps``). A warp is a
  backward map ``s`` (the warped image at ``p'`` shows the original at ``s(p')``), so an
  equivariant detector has ``s(p') = p``. The error is ``|s(p') - p|``, in pixels and in %
  of the image side; a detector that ignores the image (a constant) scores the warp's own
  displacement, an exactly equivariant one 0.
* **Keypoint use**: each keypoint's spread over a batch of images (the std of its position,
  in pixels), how many are *collapsed* (spread below ``COLLAPSED_FRACTION`` of the image side:
  the same place on every image) and how many sit at the *border* (mean position within
  ``BORDER_FRACTION`` of an edge: the soft-argmax's fallback when nothing is found).
* **Renderer reliance**: the model's reconstruction loss with each target's own keypoints,
  and with another image's (the batch rolled by one). ``shuffled / own`` near 1 means the
  renderer ignores the bottleneck: nothing is being learned about geometry.

Coordinates follow ``geometry``: keypoints ``[B, K, 2]`` ``(x, y)`` normalised to ``[-1, 1]``
(pixel centres), pixels via ``geometry.normalized_to_pixels``.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from keras_landmarks.config import TARGET_WARP, WarpParams
from keras_landmarks.losses import normalizer, perceptual
from keras_landmarks.pairs import tps, warps

COLLAPSED_FRACTION = 0.01  # keypoint std below 1 % of the image side: collapsed
BORDER_FRACTION = 0.05  # mean position within 5 % of the side from an edge: at the border


def _keypoints(detector, images) -> np.ndarray:
    return keras.ops.convert_to_numpy(detector(images, training=False)["keypoints"]).astype(np.float64)


def equivariance_error(detector, images, seed=(0, 0), params: WarpParams = TARGET_WARP,
                       keypoints=None) -> dict:
    """Equivariance error of ``detector`` on ``images`` under random TPS warps.

    Args:
      detector: ``images [B, S, S, 3] float32 [0, 255] -> {"keypoints": [B, K, 2]}``.
      images: ``[B, S, S, 3]`` float32 RGB in ``[0, 255]``.
      seed: stateless seed ``[2]`` of the warps (``warps.random_tps_params``).
      keypoints: the detector's ``[B, K, 2]`` normalised points on ``images``, if already known.
    Returns:
      ``{"equivariance_px": mean over images and keypoints of |s(p') - p| in pixels,
      "equivariance_percent": the same in % of the image side, "per_keypoint_px": [K]}``.
    """
    images = tf.convert_to_tensor(images, tf.float32)
    size = int(images.shape[1])
    weights, affine = warps.random_tps_params(tf.constant(seed, tf.int64), tf.shape(images)[0], params)
    warped = tps.warp_images(images, weights, affine)
    original = _keypoints(detector, images) if keypoints is None else np.asarray(keypoints, np.float64)
    moved = _keypoints(detector, warped)
    mapped = tps.tps_transform_points(weights, affine, moved).numpy().astype(np.float64)
    dist = np.linalg.norm(mapped - original, axis=-1) * (size - 1) / 2.0  # [B, K] pixels
    return {"equivariance_px": float(dist.mean()), "equivariance_percent": float(100.0 * dist.mean() / size),
            "per_keypoint_px": dist.mean(0).tolist()}


def keypoint_use(keypoints, image_size: int) -> dict:
    """How the K keypoints are used over a batch.

    Args:
      keypoints: ``[B, K, 2]`` normalised ``(x, y)`` of B images (B >= 2).
    Returns:
      ``{"spread_px": [K] std of each keypoint's position (root mean of the two axes'
      variances) in pixels, "collapsed": count with spread < COLLAPSED_FRACTION * S,
      "at_border": count whose mean lies within BORDER_FRACTION * S of an edge,
      "mean_spread_px": mean of spread_px}``.
    """
    pixels = (np.asarray(keypoints, np.float64) + 1.0) * (image_size - 1) / 2.0
    spread = np.sqrt(pixels.var(axis=0).mean(axis=-1))  # [K]
    mean = pixels.mean(axis=0)  # [K, 2]
    margin = BORDER_FRACTION * image_size
    border = (mean < margin) | (mean > image_size - 1 - margin)
    return {"spread_px": spread.tolist(), "collapsed": int((spread < COLLAPSED_FRACTION * image_size).sum()),
            "at_border": int(border.any(axis=-1).sum()), "mean_spread_px": float(spread.mean())}


def reconstruction_loss(model, image, future_image, keypoints, mask=None) -> float:
    """``LandmarkModel``'s normalised loss (its current alpha) when the renderer draws the
    target from ``keypoints`` ``[B, K, 2]`` instead of the detector's own."""
    appearance = model.appearance_encoder(image, training=False)
    maps = model.gaussian_maps(tf.convert_to_tensor(keypoints, tf.float32))
    reconstruction = model.renderer([appearance, maps], training=False)
    if mask is None:
        mask = tf.ones_like(future_image[..., :1])
    errors = perceptual.per_example_errors(perceptual.features(model.feature_extractor, future_image),
                                           perceptual.features(model.feature_extractor, reconstruction),
                                           mask, model.loss_layers)
    per_example = normalizer.normalized_loss(errors, tf.convert_to_tensor(model.alpha), model.config.loss_scale)
    return float(keras.ops.convert_to_numpy(keras.ops.mean(per_example)))


def renderer_reliance(model, batch: dict, keypoints=None) -> dict:
    """``{"loss_own", "loss_shuffled", "reliance": loss_shuffled / loss_own}`` on ``batch``
    (``{"image", "future_image"[, "mask"]}``, B >= 2): the shuffled loss gives each target
    the keypoints of the next image in the batch. ``keypoints``: the detector's ``[B, K, 2]``
    normalised points on ``future_image``, if already known."""
    image = tf.convert_to_tensor(batch["image"], tf.float32)
    future = tf.convert_to_tensor(batch["future_image"], tf.float32)
    mask = batch.get("mask")
    own = model.detector(future, training=False)["keypoints"] if keypoints is None else keypoints
    own = tf.convert_to_tensor(own, tf.float32)
    loss_own = reconstruction_loss(model, image, future, own, mask)
    loss_shuffled = reconstruction_loss(model, image, future, tf.roll(own, 1, axis=0), mask)
    return {"loss_own": loss_own, "loss_shuffled": loss_shuffled, "reliance": loss_shuffled / max(loss_own, 1e-30)}


def diagnose(model, batch: dict, seed=(0, 0)) -> dict:
    """All three diagnostics of a ``LandmarkModel`` on one batch of training pairs; the
    equivariance and keypoint use are measured on the targets (``future_image``)."""
    future = tf.convert_to_tensor(batch["future_image"], tf.float32)
    own = _keypoints(model.detector, future)  # [B, K, 2], detected once for all three
    out = equivariance_error(model.detector, future, seed, model.config.target_warp, keypoints=own)
    out.update(keypoint_use(own, int(future.shape[1])))
    out.update(renderer_reliance(model, batch, keypoints=own))
    return out


def format_diagnostics(d: dict) -> str:
    """One line for logs and reports."""
    k = len(d["spread_px"])
    return (f"equivariance {d['equivariance_px']:.2f} px ({d['equivariance_percent']:.2f} % of the side); "
            f"keypoint spread {d['mean_spread_px']:.2f} px, {d['collapsed']}/{k} collapsed, "
            f"{d['at_border']}/{k} at the border; renderer reliance {d['reliance']:.3f} "
            "(shuffled/own loss; ~1: the keypoints are ignored)")


__all__ = ["BORDER_FRACTION", "COLLAPSED_FRACTION", "diagnose", "equivariance_error", "format_diagnostics",
           "keypoint_use", "reconstruction_loss", "renderer_reliance"]

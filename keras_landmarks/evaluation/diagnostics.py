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
from keras_landmarks.pairs import tps, warps

# The consistency warp: a crop of the same photo at another scale, position and angle (the
# change a face detector's box makes between two shots), far larger than the training
# target warp, whose motion (~1.5 px at 32 px) a detector that ignores the image nearly matches.
CONSISTENCY_WARP = WarpParams(a=0.001, b=0.005, rotation_deg=10.0, scale=0.15, translation=0.15)
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
      "equivariance_percent": the same in % of the image side, "per_keypoint_px": [K],
      "displacement_px": mean |s(p') - p'|, the warp's own motion at the detected points
      (what a detector that ignores the image scores), "equivariance_ratio":
      equivariance_px / displacement_px (0: exactly equivariant, ~1: ignores the image)}``.
    """
    images = tf.convert_to_tensor(images, tf.float32)
    size = int(images.shape[1])
    weights, affine = warps.random_tps_params(tf.constant(seed, tf.int64), tf.shape(images)[0], params)
    warped = tps.warp_images(images, weights, affine)
    original = _keypoints(detector, images) if keypoints is None else np.asarray(keypoints, np.float64)
    moved = _keypoints(detector, warped)
    mapped = tps.tps_transform_points(weights, affine, moved).numpy().astype(np.float64)
    half = (size - 1) / 2.0
    dist = np.linalg.norm(mapped - original, axis=-1) * half  # [B, K] pixels
    # What a detector that ignores the image scores: the warp's own motion at the points.
    still = np.linalg.norm(mapped - moved, axis=-1) * half
    return {"equivariance_px": float(dist.mean()), "equivariance_percent": float(100.0 * dist.mean() / size),
            "per_keypoint_px": dist.mean(0).tolist(), "displacement_px": float(still.mean()),
            "equivariance_ratio": float(dist.mean() / max(still.mean(), 1e-12))}


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


def shape_consistency(keypoints) -> dict:
    """Do the K points keep one configuration from image to image, as parts of one object do?

    Each image's points are aligned to their mean configuration by the best similarity
    (Procrustes: translation, rotation, scale), iterated three times. ``shape_ratio`` is the
    residual after alignment over the points' spread around their mean configuration
    before it (both root-mean-square): ~0 when the points move together as one rigid shape
    (an object's parts under a change of crop), ~1 when each point moves on its own.
    A constant detector has no spread: its ratio is reported as 1.

    Args:
      keypoints: ``[B, K, 2]`` ``(x, y)`` of B images (K >= 3), any unit.
    Returns:
      ``{"shape_ratio": float, "shape_residual": rms residual, in the input's unit}``.
    """
    pts = np.asarray(keypoints, np.float64)
    spread = np.sqrt(((pts - pts.mean(0)) ** 2).sum(-1).mean())
    centred = pts - pts.mean(1, keepdims=True)
    z = centred[..., 0] + 1j * centred[..., 1]  # [B, K] complex: a similarity is one complex factor
    ref = z.mean(0)
    for _ in range(3):
        factor = (np.conj(z) * ref).sum(1) / np.maximum((np.abs(z) ** 2).sum(1), 1e-12)  # least squares
        aligned = z * factor[:, None]
        ref = aligned.mean(0)
        ref = ref * (np.sqrt((np.abs(z) ** 2).sum(1).mean()) / max(np.sqrt((np.abs(ref) ** 2).sum()), 1e-12))
    residual = np.sqrt((np.abs(aligned - ref) ** 2).mean())
    return {"shape_residual": float(residual), "shape_ratio": float(residual / spread) if spread > 1e-9 else 1.0}


def patch_consistency(images, keypoints, radius: int = 2, seed: int = 0) -> dict:
    """Do the points land on the same kind of image patch in every image?

    For each keypoint, the ``(2 radius + 1)^2`` grey patch around it in every image
    (zero-mean, unit-norm) is correlated with the same keypoint's patches in the other
    images; the reference is the same correlation for patches cut at those positions from
    *other* images (the images shuffled). ``patch_gain`` = mean correlation minus the
    reference: ~0 when a point's patches are no more alike than random ones, > 0 when each
    point sits on one kind of feature (an eye corner, a nostril).

    Args:
      images: ``[B, S, S, 3]`` ``[0, 255]``. keypoints: ``[B, K, 2]`` normalised ``(x, y)``.
    Returns:
      ``{"patch_corr": mean correlation, "patch_gain": patch_corr - reference}``.
    """
    images = np.asarray(images, np.float64)
    grey = images.mean(-1)
    size = grey.shape[1]
    pix = np.rint((np.asarray(keypoints, np.float64) + 1.0) * (size - 1) / 2.0).astype(int)
    pix = np.clip(pix, radius, size - 1 - radius)
    shuffled = np.random.default_rng(seed).permutation(len(images))

    def patches(source):  # [K, B, P]
        out = np.stack([[source[b, y - radius:y + radius + 1, x - radius:x + radius + 1].ravel()
                         for b, (x, y) in enumerate(pix[:, k])] for k in range(pix.shape[1])])
        out = out - out.mean(-1, keepdims=True)
        return out / np.maximum(np.linalg.norm(out, axis=-1, keepdims=True), 1e-9)

    def mean_pair_corr(p):
        gram = np.einsum("kbp,kcp->kbc", p, p)
        b = p.shape[1]
        return float(((gram.sum((1, 2)) - np.trace(gram, axis1=1, axis2=2)) / (b * (b - 1))).mean())

    own = mean_pair_corr(patches(grey))
    ref = mean_pair_corr(patches(grey[shuffled]))
    return {"patch_corr": own, "patch_gain": own - ref}


def reconstruction_loss(model, image, future_image, keypoints, mask=None) -> float:
    """``LandmarkModel``'s normalised loss (its current alpha, a Python float) when the renderer
    draws the target from ``keypoints`` ``[B, K, 2]`` float32 ``(x, y)`` in ``[-1, 1]``
    (pixel-centre convention) instead of the detector's own. ``image``, ``future_image``:
    ``[B, H, W, 3]`` float32 in ``[0, 255]``; ``mask``: ``[B, H, W, 1]`` or None (all ones)."""
    reconstruction = model.generate(image, keypoints)
    model.perceptual_loss.load_feature_weights()  # a model loaded from a file reads them when first needed
    loss = model.perceptual_loss(future_image, reconstruction, mask, training=False)["loss"]
    return float(keras.ops.convert_to_numpy(loss))


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
    """All diagnostics of a ``LandmarkModel`` on one batch of training pairs and their
    ``verdict``; the equivariance, consistency and keypoint use are measured on the targets
    (``future_image``). ``consistency_*`` is ``equivariance_error`` under ``CONSISTENCY_WARP``."""
    future = tf.convert_to_tensor(batch["future_image"], tf.float32)
    own = _keypoints(model.detector, future)  # [B, K, 2], detected once for all
    out = equivariance_error(model.detector, future, seed, model.config.target_warp, keypoints=own)
    large = equivariance_error(model.detector, future, seed, CONSISTENCY_WARP, keypoints=own)
    out.update({"consistency_px": large["equivariance_px"], "consistency_ratio": large["equivariance_ratio"]})
    out.update(keypoint_use(own, int(future.shape[1])))
    out.update(shape_consistency(own))
    out.update(patch_consistency(future.numpy(), own))
    out.update(renderer_reliance(model, batch, keypoints=own))
    out["verdict"] = verdict(out)
    return out


# Verdict thresholds, set on 18 evaluations of 12 real runs with labelled errors (32 and 64 px
# faces, helen and ytfaces; README "Is my run learning?" has the table).
LEARNING_CONSISTENCY = 0.8  # points follow the content under CONSISTENCY_WARP (ratio below)
NOT_LEARNING_CONSISTENCY = 0.95  # points barely move with the content (ratio at or above)
LEARNING_PATCH_GAIN = 0.07  # each point sits on one kind of patch (gain at or above)
NOT_LEARNING_PATCH_GAIN = 0.05  # patches no more alike than random places (gain below)
MIN_RELIANCE = 1.1  # the renderer uses the keypoints
FOLLOWS_CONTENT = 0.5  # points follow the content closely (ratio below): learning, whatever the patches say


def verdict(d: dict) -> str:
    """``"learning"``, ``"not learning"`` or ``"unclear"`` from ``diagnose``'s values.

    Not learning: the points do not follow the image under ``CONSISTENCY_WARP`` (ratio >=
    ``NOT_LEARNING_CONSISTENCY``), or every keypoint is collapsed. Learning: the points follow
    it closely (ratio < ``FOLLOWS_CONTENT``: an equivariance-trained detector, whose points
    track the object before the renderer uses them or they settle on one kind of patch).
    Otherwise not learning if they do not sit on one kind of patch (gain <
    ``NOT_LEARNING_PATCH_GAIN``) or the renderer ignores them (reliance < ``MIN_RELIANCE``);
    learning if ratio < ``LEARNING_CONSISTENCY`` and gain >= ``LEARNING_PATCH_GAIN``.
    Anything else is unclear: check a few labelled images.
    """
    k = len(d["spread_px"])
    if d["consistency_ratio"] >= NOT_LEARNING_CONSISTENCY or d["collapsed"] == k:
        return "not learning"
    if d["consistency_ratio"] < FOLLOWS_CONTENT:
        return "learning"
    if d["patch_gain"] < NOT_LEARNING_PATCH_GAIN or d["reliance"] < MIN_RELIANCE:
        return "not learning"
    if d["consistency_ratio"] < LEARNING_CONSISTENCY and d["patch_gain"] >= LEARNING_PATCH_GAIN:
        return "learning"
    return "unclear"


def format_diagnostics(d: dict) -> str:
    """One line for logs and reports."""
    k = len(d["spread_px"])
    return (f"{d['verdict'].upper()}: consistency {d['consistency_ratio']:.2f} of a still detector's error "
            f"under a {CONSISTENCY_WARP.scale:.0%} scale / {CONSISTENCY_WARP.rotation_deg:g} deg crop change "
            f"(< {FOLLOWS_CONTENT:g}: follows it closely; < {LEARNING_CONSISTENCY:g}: follows the image; "
            f">= {NOT_LEARNING_CONSISTENCY:g}: does not); "
            f"patch gain {d['patch_gain']:.3f} (>= {LEARNING_PATCH_GAIN:g}: each point on one kind of patch; "
            f"< {NOT_LEARNING_PATCH_GAIN:g}: random places); shape ratio {d['shape_ratio']:.2f}; "
            f"equivariance {d['equivariance_px']:.2f} px ({d['equivariance_percent']:.2f} % of the side, "
            f"{d['equivariance_ratio']:.2f} of the warp's motion); "
            f"keypoint spread {d['mean_spread_px']:.2f} px, {d['collapsed']}/{k} collapsed, "
            f"{d['at_border']}/{k} at the border; renderer reliance {d['reliance']:.3f} "
            "(shuffled/own loss; ~1: the keypoints are ignored)")


__all__ = ["BORDER_FRACTION", "COLLAPSED_FRACTION", "CONSISTENCY_WARP", "FOLLOWS_CONTENT", "diagnose", "equivariance_error", "format_diagnostics",
           "keypoint_use", "reconstruction_loss", "renderer_reliance", "verdict"]

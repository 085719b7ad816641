"""Procedural toy faces: the project's embedded, download-free training and test data.

Every image is rendered on the fly in TensorFlow (``toy_render``) from parameters drawn
with stateless Philox RNG (``toy_faces``), so image ``i`` of a stream depends only on the
base seed, the stream and ``i`` (not on the batch size or the machine's thread count).
Each face comes with 5 ground-truth landmarks computed in closed form, like MAFL: left
eye centre, right eye centre, nose tip, left mouth corner, right mouth corner ("left" =
image left), as pixel ``(x, y)`` (0-based, integer = pixel centre).

Streams: for a base ``seed`` the training pairs, the annotated ``train`` split and the
annotated ``test`` split use the disjoint seeds ``[seed, k]`` with different ``k``, so
the test identities are held out from both.

Usage::

    pairs = synthetic_pairs(image_size=64, batch_size=50, seed=0)          # infinite
    test = synthetic_annotated("test", num_images=500, image_size=64)      # finite
"""

from __future__ import annotations

import math
import numbers

import tensorflow as tf

from keras_landmarks.config import SOURCE_WARP, TARGET_WARP, WarpParams
from keras_landmarks.pairs import warps
from keras_landmarks.data.toy_faces import (  # noqa: F401  (re-exported public API)
    IDENTITY_FLAGS,
    IDENTITY_RANGES,
    NUM_LANDMARKS,
    POSE_FLAGS,
    POSE_RANGES,
    face_landmarks,
    sample_identity,
    sample_pose,
)
from keras_landmarks.data.toy_render import render_faces

# Second word k of the stateless seed [seed, k] of each parameter stream: e.g. the test
# split's face i is render_faces(sample_identity([seed, STREAMS["test_identity"]], 1, i),
# sample_pose([seed, STREAMS["test_pose"]], 1, i)).
STREAMS = {
    "pairs_identity": 101, "pairs_pose": 102, "pairs_future_pose": 103, "pairs_warp": 104,
    "train_identity": 201, "train_pose": 202,
    "test_identity": 301, "test_pose": 302,
    "clip_identity": 401, "clip_pose": 402,
}
# Default sizes of the annotated splits (MAFL keeps a similar 4:1 to 19:1 ratio).
DEFAULT_NUM_IMAGES = {"train": 2000, "test": 500}
MODES = ("tps", "video")
SPLITS = ("train", "test")


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"synthetic: {name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _seed(seed: int, stream: str) -> tf.Tensor:
    return tf.constant([seed, STREAMS[stream]], tf.int64)


def synthetic_pairs(
    image_size: int = 64,
    batch_size: int = 50,
    seed: int = 0,
    mode: str = "tps",
    target_warp: WarpParams = TARGET_WARP,
    source_warp: WarpParams = SOURCE_WARP,
    jit_compile: bool = True,
) -> tf.data.Dataset:
    """Infinite batched training pairs of toy faces (the project's data contract).

    ``mode="tps"``: one face per example, then ``keras_landmarks.pairs.warps.warp_pairs`` makes
    ``image = warp_s(warp_t(face))``, ``future_image = warp_t(face)`` and the warped
    border ``mask``; no ``landmarks`` key. ``mode="video"``: one identity seen in two
    independent poses and expressions (same background), ``mask`` all ones, and the
    ``landmarks`` of ``future_image``.

    Args:
      image_size: side ``S`` of the square images (>= 8).
      batch_size: ``B`` (>= 1); batch ``b`` holds examples ``b*B .. b*B + B - 1``.
      seed: base seed (int); the same seed gives the same stream on every run.
      mode: ``"tps"`` or ``"video"``.
      target_warp, source_warp: TPS parameters (``mode="tps"`` only).
      jit_compile: render with XLA (default; ~5x faster, a few seconds of compilation on
        the first batch) or with plain TF ops (``render_faces``).
    Returns:
      ``tf.data.Dataset`` of dicts: ``image``, ``future_image`` ``[B,S,S,3]`` float32 RGB
      in [0, 255], ``mask`` ``[B,S,S,1]`` float32 in [0, 1] and (video) ``landmarks``
      ``[B,5,2]`` float32 pixel ``(x, y)``; all shapes static.
    """
    size = _check_int("image_size", image_size, 8)
    batch = _check_int("batch_size", batch_size, 1)
    seed = _check_int("seed", seed, 0)
    if mode not in MODES:
        raise ValueError(f"synthetic_pairs: mode must be one of {MODES}, got {mode!r}")
    id_seed, pose_seed = _seed(seed, "pairs_identity"), _seed(seed, "pairs_pose")
    future_seed, warp_seed = _seed(seed, "pairs_future_pose"), _seed(seed, "pairs_warp")

    def make(b):
        offset = b * batch
        identity = sample_identity(id_seed, batch, offset)
        pose = sample_pose(pose_seed, batch, offset)
        images, _ = render_faces(identity, pose, size, jit_compile)
        if mode == "tps":
            pair_seed = tf.cast(tf.random.experimental.stateless_fold_in(warp_seed, b), tf.int32)
            return warps.pipeline_pairs(images, pair_seed, target_warp, source_warp)
        future_pose = sample_pose(future_seed, batch, offset)
        future, landmarks = render_faces(identity, future_pose, size, jit_compile)
        return {
            "image": images,
            "future_image": future,
            "mask": tf.ones([batch, size, size, 1], tf.float32),
            "landmarks": landmarks,
        }

    ds = tf.data.Dataset.counter()
    ds = ds.map(make, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def synthetic_annotated(
    split: str = "train",
    num_images: int | None = None,
    image_size: int = 64,
    batch_size: int = 100,
    seed: int = 0,
    jit_compile: bool = True,
) -> tf.data.Dataset:
    """Finite annotated toy faces in a fixed order, for the landmark-regression protocol.

    ``train`` and ``test`` draw identities and poses from disjoint seed streams (held-out
    identities), both disjoint from ``synthetic_pairs(seed=seed)``.

    Args:
      split: ``"train"`` or ``"test"``.
      num_images: number of faces (default ``DEFAULT_NUM_IMAGES[split]``); the last batch
        is smaller when ``batch_size`` does not divide it.
      image_size: side ``S`` (>= 8). batch_size: ``B`` (>= 1). seed: base seed (int).
      jit_compile: as in ``synthetic_pairs``.
    Returns:
      ``tf.data.Dataset`` of ``{"image": [B,S,S,3] float32 RGB [0, 255],
      "landmarks": [B,5,2] float32 pixel (x, y)}``.
    """
    if split not in SPLITS:
        raise ValueError(f"synthetic_annotated: split must be one of {SPLITS}, got {split!r}")
    count = DEFAULT_NUM_IMAGES[split] if num_images is None else num_images
    count = _check_int("num_images", count, 1)
    size = _check_int("image_size", image_size, 8)
    batch = _check_int("batch_size", batch_size, 1)
    seed = _check_int("seed", seed, 0)
    id_seed, pose_seed = _seed(seed, f"{split}_identity"), _seed(seed, f"{split}_pose")

    def make(indices):
        offset, n = indices[0], tf.size(indices, out_type=tf.int64)
        identity = sample_identity(id_seed, n, offset)
        pose = sample_pose(pose_seed, n, offset)
        images, landmarks = render_faces(identity, pose, size, jit_compile)
        return {"image": images, "landmarks": landmarks}

    ds = tf.data.Dataset.range(count).batch(batch)
    ds = ds.map(make, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def toy_clip(clip: int = 0, num_frames: int = 48, image_size: int = 64, key_poses: int = 3,
             seed: int = 0) -> tuple[tf.Tensor, tf.Tensor]:
    """A short "video" of one toy face moving: for demos of animation and pose transfer.

    Face ``clip`` of its own stream (identities disjoint from training pairs and the
    annotated splits) moves through ``key_poses`` random poses; every pose parameter
    (rotation, scale, translation, yaw, expression) is interpolated between consecutive
    key poses with a cosine ease, so the motion is smooth and starts and ends at rest.

    Returns:
      ``(frames [T, S, S, 3] float32 RGB [0, 255], landmarks [T, 5, 2] float32 pixel
      (x, y))`` with ``T = num_frames``.
    """
    frames_n = _check_int("num_frames", num_frames, 2)
    keys_n = _check_int("key_poses", key_poses, 2)
    size = _check_int("image_size", image_size, 8)
    identity = sample_identity(_seed(seed, "clip_identity"), 1, _check_int("clip", clip, 0))
    keys = sample_pose(_seed(seed, "clip_pose"), keys_n, clip * keys_n)
    # Frame t sits at u = t / (T - 1) * (keys - 1) along the key poses: segment floor(u).
    u = tf.linspace(0.0, float(keys_n - 1), frames_n)
    segment = tf.minimum(tf.cast(tf.floor(u), tf.int32), keys_n - 2)
    ease = 0.5 - 0.5 * tf.cos(math.pi * (u - tf.cast(segment, tf.float32)))
    pose = {}
    for name, value in keys.items():
        a, b = tf.gather(value, segment), tf.gather(value, segment + 1)
        w = tf.reshape(ease, [-1] + [1] * (len(value.shape) - 1))
        pose[name] = a + w * (b - a)
    identity = {k: tf.repeat(v, frames_n, axis=0) for k, v in identity.items()}
    return render_faces(identity, pose, size)


__all__ = [
    "toy_clip", "IDENTITY_RANGES", "IDENTITY_FLAGS", "POSE_RANGES", "POSE_FLAGS", "NUM_LANDMARKS",
    "DEFAULT_NUM_IMAGES", "STREAMS", "sample_identity", "sample_pose", "face_landmarks",
    "render_faces", "synthetic_pairs", "synthetic_annotated",
]

"""Training pairs and annotated evaluation sets from plain image folders.

``image_folder_pairs``: every ``.jpg/.jpeg/.png/.bmp/.webp`` (any case) under a folder,
shuffled, decoded (``decode.py``: unreadable files are skipped and counted), centre-cropped
to the largest square, resized to ``image_size`` (area averaging when shrinking, bilinear
when enlarging; ``decode.crop_resize``), batched (``image_folder_batches``), then warped
into pairs by ``warps.warp_pairs`` with the stateless seed ``[seed, batch_index]``: the same
seed gives the same batches. The stream repeats forever (reshuffled every pass); use
``take`` or ``steps_per_epoch``.

Decoding takes one ``tf.numpy_function`` call per ``batch_size`` paths
(``decode.tf_load_batch``); ``Dataset.rebatch`` then refills the batches that lost
unreadable files, so every batch is full and an epoch of batches holds every readable
image once. Decode and warp stay separate stages: a prototype fusing them into one call
used no less CPU per pair (BUILD.md), and separate, batch ``i`` is exactly
``warps.warp_pairs(images_i, [seed, i])`` whichever files were skipped.

``annotated_folder``: images plus a landmarks CSV, in CSV order, for the evaluation
protocol. CSV format (UTF-8, comma separated, one header line)::

    file,x0,y0,x1,y1,...            # optional extra column: split
    faces/0001.jpg,30.5,41,...

``file`` is relative to ``data_dir`` and must stay inside it: an absolute path, or one whose
normalised form (``os.path.normpath``, symlinks not resolved) starts with ``..``, is
refused with a ``ValueError`` naming the CSV and the line (``landmarks_csv.py`` parses
the CSV). Every other column is a coordinate; consecutive columns pair up as one point,
named ``x<name>,y<name>`` or ``<name>_x,<name>_y`` (so ``x0,y0`` is point ``"0"``, ``le_x,le_y`` point ``"le"``). Values are pixel ``(x, y)`` of the
original image as displayed (after any EXIF rotation), 0-based, integer = pixel centre.
``points=`` picks points by name and order; ``split=`` keeps rows whose ``split`` equals it.
The landmarks undergo the image's crop and resize exactly:
``x' = (x - x0 + 0.5) * image_size / s - 0.5`` (``s``, ``x0``: the square crop's side and
offset; ``decode.crop_resize``). Example, the 5 MAFL-style points of a CSV with columns
``le_x,le_y,re_x,re_y,n_x,n_y,lm_x,lm_y,rm_x,rm_y``::

    annotated_folder(root, split="test", points=("le", "re", "n", "lm", "rm"))
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from keras_landmarks.pairs import warps
from keras_landmarks.config import SOURCE_WARP, TARGET_WARP, WarpParams
from keras_landmarks.data.images import list_images  # noqa: F401 (re-exported)
from keras_landmarks.data.numpy_pairs import check_decodable
from keras_landmarks.data.landmarks_csv import annotated_rows, read_landmarks_csv  # noqa: F401 (re-exported)
from keras_landmarks.data.decode import (
    IMAGE_EXTENSIONS,
    DecodeStats,
    tf_load_batch,
    tf_load_crop_resize,
)

logger = logging.getLogger("keras_landmarks.data")

def _is_ok(ex: dict):
    return ex["ok"]


def _without_ok(ex: dict) -> dict:
    return {k: v for k, v in ex.items() if k != "ok"}


def image_folder_batches(
    data_dir: str,
    image_size: int = 128,
    batch_size: int = 50,
    seed: int = 0,
    *,
    deterministic: bool = True,
    stats: DecodeStats | None = None,
) -> tf.data.Dataset:
    """Endless full batches of the folder's images, decoded and cropped, without warps.

    Args: as ``image_folder_pairs``.
    Returns:
      ``[B, S, S, 3]`` uint8 RGB batches (static shape), shuffled with ``seed`` and
      reshuffled every pass; each pass yields every readable file once (a batch may span
      two passes). ``dataset.decode_stats`` holds the skipped files.
    Raises:
      FileNotFoundError / ValueError naming ``data_dir`` if it holds no readable image.
    """
    paths = list_images(data_dir)
    if not paths:
        raise ValueError(f"image folder {data_dir!r} has no {'/'.join(IMAGE_EXTENSIONS)} files")
    order = np.random.default_rng(seed).permutation(len(paths))
    check_decodable([paths[i] for i in order], image_size, f"image folder {data_dir!r}")
    if stats is None:
        stats = DecodeStats(f"folder {data_dir}", files_per_epoch=len(paths))
    logger.info("%s: %d image files; unreadable ones are skipped, warned about once and counted",
                stats.name, len(paths))

    def decode(batch_paths):
        return tf_load_batch(batch_paths, image_size, stats)["image"]

    ds = tf.data.Dataset.from_tensor_slices(paths)
    ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True).repeat().batch(batch_size)
    ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    ds = ds.rebatch(batch_size, drop_remainder=True)  # refills batches that lost bad files
    ds.decode_stats = stats
    return ds


def image_folder_pairs(
    data_dir: str,
    image_size: int = 128,
    batch_size: int = 50,
    seed: int = 0,
    *,
    target_warp: WarpParams = TARGET_WARP,
    source_warp: WarpParams = SOURCE_WARP,
    deterministic: bool = True,
    stats: DecodeStats | None = None,
) -> tf.data.Dataset:
    """Endless TPS training pairs from an image folder (module docstring).

    Args:
      data_dir: root folder, searched recursively (symlinked folders are not followed).
      deterministic: keep element order fixed (reproducible batches); False lets a slow
        batch of files (e.g. huge ones) be overtaken by the next, at the cost of
        reproducibility.
      stats: a ``DecodeStats`` to record skipped files in; by default a new one, reachable
        as ``dataset.decode_stats``.
    Returns:
      Batched dicts ``{"image", "future_image": [B, S, S, 3] float32 RGB in [0, 255],
      "mask": [B, S, S, 1] float32}`` (``warps.warp_pairs``: a fresh warp per image; pixel
      ``(x, y)`` as in ``geometry.py``), static shapes, every batch full.
    Raises:
      FileNotFoundError / ValueError naming ``data_dir`` if it holds no readable image.
    """
    images = image_folder_batches(data_dir, image_size, batch_size, seed, deterministic=deterministic, stats=stats)

    ds = warps.warp_batches(images, seed, target_warp, source_warp, deterministic=deterministic)
    ds.decode_stats = images.decode_stats
    return ds


def annotated_folder(
    data_dir: str,
    csv_path: str | None = None,
    image_size: int = 128,
    batch_size: int = 50,
    *,
    split: str | None = None,
    points: Sequence[str] | None = None,
    stats: DecodeStats | None = None,
) -> tf.data.Dataset:
    """Annotated images in CSV order: ``{"image": [B, S, S, 3] float32 RGB [0, 255],
    "landmarks": [B, P, 2] float32 pixel (x, y) of the S x S image}``.

    Args:
      data_dir: folder the CSV's ``file`` paths are relative to.
      csv_path: the CSV (module docstring); default ``<data_dir>/landmarks.csv``.
      split, points: row and point selection (module docstring).
      stats: records missing and unreadable images (skipped); default a new one,
        reachable as ``dataset.decode_stats``.
    The last batch may be smaller than ``batch_size``. ``dataset.point_names`` holds the
    ``P`` point names in landmark order (``points``, or the header's order).
    Raises:
      ValueError (``read_landmarks_csv``), also for a ``file`` outside ``data_dir``.
    """
    paths, landmarks, names, stats = annotated_rows(data_dir, csv_path, split, points, stats)

    def load(path, points_xy):
        ex = tf_load_crop_resize(path, image_size, stats)
        affine = ex["affine"]
        moved = points_xy * affine[None, :2] + affine[None, 2:]
        return {"image": tf.cast(ex["image"], tf.float32), "landmarks": moved, "ok": ex["ok"]}

    ds = tf.data.Dataset.from_tensor_slices((paths, landmarks))
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.filter(_is_ok).map(_without_ok)
    ds = ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    ds.decode_stats = stats
    ds.point_names = tuple(names)
    return ds


__all__ = [
    "list_images", "image_folder_batches", "image_folder_pairs", "read_landmarks_csv",
    "annotated_folder",
]

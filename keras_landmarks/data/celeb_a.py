"""CelebA through TensorFlow Datasets (``tfds`` name ``celeb_a``), with the MAFL split.

Preprocessing (official code, ``imm/datasets/celeba_dataset.py``): the aligned 178x218
(w x h) image is resized to ``R x R`` with ``R = round(1.25 * image_size)`` (160 for 128),
ignoring the aspect ratio, and the centre ``image_size`` square is kept (offset
``m = (R - image_size) // 2``). We resize bilinearly with anti-aliasing and half-pixel
centres (the official TF1 code used ``align_corners=True``: a sub-pixel difference), so a
landmark moves exactly as ``x' = (x + 0.5) R / 178 - 0.5 - m``,
``y' = (y + 0.5) R / 218 - 0.5 - m`` (pixel ``(x, y)``, 0-based, integer = pixel centre).

MAFL: with ``mafl_dir`` holding MAFL's ``training.txt`` and ``testing.txt`` (CelebA file
names, one per line), the annotated ``train``/``test`` splits are those images and the
training pairs exclude the MAFL test images; without it, CelebA's own partitions are used.
TFDS stores no file names, but it writes every split in the order of the md5 hash of the
example key (the file name) salted with the split name, a documented invariant (changing it
would change every dataset's order); ``storage_order`` rebuilds that order and
``tfds_id`` (``<file>-<shard>-of-<n>__<index>``) locates each example in it.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
import tensorflow as tf

from keras_landmarks.pairs import warps
from keras_landmarks.config import SOURCE_WARP, TARGET_WARP, WarpParams

TFDS_NAME = "celeb_a"
# CelebA's list_eval_partition.txt: contiguous file numbers per split.
PARTITIONS = {"train": (1, 162770), "validation": (162771, 182637), "test": (182638, 202599)}
LANDMARK_NAMES = ("lefteye", "righteye", "nose", "leftmouth", "rightmouth")
ALIGNED_HW = (218, 178)
MANUAL_FILES = ("img_align_celeba.zip", "list_eval_partition.txt", "list_landmarks_align_celeba.txt",
                "list_attr_celeba.txt", "identity_CelebA.txt")


def missing_data_message(data_dir: str | None) -> str:
    root = data_dir or "~/tensorflow_datasets"
    return (
        f"CelebA is not prepared in {root!r} (looked for {root}/{TFDS_NAME}/<version>/dataset_info.json) "
        "and cannot be downloaded on an offline machine. To prepare it: download CelebA's "
        "aligned-and-cropped images and annotations from https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html "
        f"({', '.join(MANUAL_FILES)}), put those five files in {root}/downloads/manual/, then run "
        f"`tfds build {TFDS_NAME} --data_dir={root}` (TFDS's manual-download route; ~1.4 GB, writes "
        f"{root}/{TFDS_NAME}/2.1.0/). Or run `tfds build {TFDS_NAME} --data_dir=DIR` on a machine with "
        f"internet and copy DIR/{TFDS_NAME} into {root}. Then pass data_dir={root!r} (trainer flag --data_dir)."
    )


def load_builder(data_dir: str | None = None):
    """The prepared TFDS CelebA builder; ``FileNotFoundError`` (``missing_data_message``) if absent."""
    import tensorflow_datasets as tfds

    builder = tfds.builder(TFDS_NAME, data_dir=data_dir)
    if not builder.is_prepared():
        raise FileNotFoundError(missing_data_message(data_dir))
    return builder


def storage_order(split: str) -> list[str]:
    """CelebA file names of ``split`` (``"000001.jpg"``...) in TFDS storage order."""
    first, last = PARTITIONS[split]
    salt = hashlib.md5(split.encode())

    def key(name: str) -> int:
        md5 = salt.copy()
        md5.update(name.encode())
        return int(md5.hexdigest(), 16)

    return sorted((f"{i:06d}.jpg" for i in range(first, last + 1)), key=key)


def read_mafl(mafl_dir: str) -> dict[str, set[str]]:
    """``{"train": names, "test": names}`` from MAFL's ``training.txt`` / ``testing.txt``."""
    out = {}
    for split, fname in (("train", "training.txt"), ("test", "testing.txt")):
        path = os.path.join(mafl_dir, fname)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"mafl_dir {mafl_dir!r} has no {fname} (MAFL's list of CelebA "
                                    "file names, one per line, e.g. 000001.jpg)")
        with open(path) as f:
            out[split] = {line.split()[0] for line in f if line.strip()}
        if not out[split]:
            raise ValueError(f"{path} lists no images")
    return out


def landmark_affine(image_size: int, hw: tuple[int, int] = ALIGNED_HW) -> np.ndarray:
    """``(sx, sy, tx, ty)``: pixel ``(x, y)`` of the aligned image -> ``(sx x + tx, sy y + ty)``
    in the ``image_size`` crop (module docstring)."""
    r = int(round(1.25 * image_size))
    m = (r - image_size) // 2
    sx, sy = r / hw[1], r / hw[0]
    return np.array([sx, sy, 0.5 * sx - 0.5 - m, 0.5 * sy - 0.5 - m], np.float32)


def preprocess(example: dict, image_size: int) -> dict:
    """TFDS-shaped example -> ``{"image": [S, S, 3] float32 RGB [0, 255], "landmarks": [5, 2]
    float32 pixel (x, y)}`` (``LANDMARK_NAMES`` order). ``example["image"]`` is JPEG bytes
    or ``[218, 178, 3]`` uint8; ``example["landmarks"]`` has ``lefteye_x``... int64 scalars."""
    image = example["image"]
    if image.dtype == tf.string:
        image = tf.io.decode_jpeg(image, channels=3)
    r = int(round(1.25 * image_size))
    m = (r - image_size) // 2
    image = tf.image.resize(image, [r, r], method="bilinear", antialias=True)
    image = tf.clip_by_value(image[m:m + image_size, m:m + image_size], 0.0, 255.0)
    lm = example["landmarks"]
    xy = tf.cast(tf.stack([tf.stack([lm[f"{n}_x"], lm[f"{n}_y"]]) for n in LANDMARK_NAMES]), tf.float32)
    affine = landmark_affine(image_size)
    image.set_shape([image_size, image_size, 3])
    return {"image": image, "landmarks": xy * affine[:2] + affine[2:]}


def _examples(builder, splits: tuple[str, ...], keep_names: set[str] | None = None,
              drop_names: set[str] | None = None, shuffle_seed: int | None = None) -> tf.data.Dataset:
    """Raw examples (image as JPEG bytes, ``tfds_id``) of ``splits`` in TFDS order (shuffled
    file order with ``shuffle_seed``), keeping the file names in ``keep_names`` (if given)
    and dropping those in ``drop_names``."""
    import tensorflow_datasets as tfds

    read = tfds.ReadConfig(add_tfds_id=True, shuffle_seed=shuffle_seed)
    ds = builder.as_dataset(split="+".join(splits), shuffle_files=shuffle_seed is not None,
                            read_config=read, decoders={"image": tfds.decode.SkipDecoding()})
    if keep_names is None and drop_names is None:
        return ds
    keep, shard_keys, shard_offsets = [], [], []
    for split in splits:
        info, names = builder.info.splits[split], storage_order(split)
        if info.num_examples != len(names):
            raise ValueError(f"TFDS {TFDS_NAME} split {split!r} has {info.num_examples} examples, CelebA's "
                             f"partition has {len(names)}: not the CelebA that MAFL's file names refer to")
        start = sum(len(k) for k in keep)
        for shard, offset in enumerate(np.concatenate([[0], np.cumsum(info.shard_lengths)[:-1]])):
            shard_keys.append(f"{split}/{shard}")
            shard_offsets.append(start + int(offset))
        mask = np.ones(len(names), bool)
        if keep_names is not None:
            mask &= np.isin(names, sorted(keep_names))
        if drop_names is not None:
            mask &= ~np.isin(names, sorted(drop_names))
        keep.append(mask)
    keep = tf.constant(np.concatenate(keep))
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(shard_keys, tf.constant(shard_offsets, tf.int64)), -1)

    def kept(example):  # tfds_id: "celeb_a-train.tfrecord-00003-of-00016__123"
        file_index = tf.strings.split(example["tfds_id"], "__")
        shard = tf.strings.regex_replace(file_index[0], r"^.*-([a-z]+)\.[A-Za-z_]+-0*(\d+)-of-\d+$", r"\1/\2")
        return keep[table.lookup(shard) + tf.strings.to_number(file_index[1], tf.int64)]

    return ds.filter(kept)


def celeb_a_pairs(
    data_dir: str | None = None,
    image_size: int = 128,
    batch_size: int = 50,
    seed: int = 0,
    mafl_dir: str | None = None,
    *,
    target_warp: WarpParams = TARGET_WARP,
    source_warp: WarpParams = SOURCE_WARP,
) -> tf.data.Dataset:
    """Endless TPS training pairs from CelebA's ``train`` partition (MAFL test images removed
    when ``mafl_dir`` is given). Batch ``i`` is warped with stateless seed ``[seed, i]``.

    Returns:
      Batched ``{"image", "future_image": [B, S, S, 3] float32 [0, 255], "mask": [B, S, S, 1]}``.
    Raises:
      FileNotFoundError with download instructions if CelebA is not prepared in ``data_dir``.
    """
    builder = load_builder(data_dir)
    drop = read_mafl(mafl_dir)["test"] if mafl_dir else None
    ds = _examples(builder, ("train",), drop_names=drop, shuffle_seed=seed)
    ds = ds.shuffle(10_000, seed=seed, reshuffle_each_iteration=True).repeat()
    ds = ds.map(lambda ex: preprocess(ex, image_size)["image"], num_parallel_calls=tf.data.AUTOTUNE)
    return warps.warp_batches(ds.batch(batch_size, drop_remainder=True), seed, target_warp, source_warp)


def celeb_a_annotated(
    split: str,
    data_dir: str | None = None,
    image_size: int = 128,
    batch_size: int = 50,
    mafl_dir: str | None = None,
) -> tf.data.Dataset:
    """Annotated CelebA in a fixed order: ``{"image": [B, S, S, 3] float32 [0, 255],
    "landmarks": [B, 5, 2] float32 pixel (x, y)}`` (left eye, right eye, nose, left and right
    mouth corner; "left" = on the image's left).

    Args:
      split: with ``mafl_dir``: ``"train"`` or ``"test"`` (MAFL's lists, drawn from every
        CelebA partition, in TFDS storage order); without: ``"train"``, ``"validation"`` or
        ``"test"`` (CelebA's partitions).
    """
    choices = ("train", "test") if mafl_dir else tuple(PARTITIONS)
    if split not in choices:
        raise ValueError(f"celeb_a_annotated: split must be one of {choices}{' with mafl_dir' if mafl_dir else ''}, got {split!r}")
    builder = load_builder(data_dir)
    if mafl_dir:
        ds = _examples(builder, tuple(PARTITIONS), keep_names=read_mafl(mafl_dir)[split])
    else:
        ds = _examples(builder, (split,))
    ds = ds.map(lambda ex: preprocess(ex, image_size), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


__all__ = [
    "PARTITIONS",
    "LANDMARK_NAMES",
    "missing_data_message",
    "load_builder",
    "storage_order",
    "read_mafl",
    "landmark_affine",
    "preprocess",
    "celeb_a_pairs",
    "celeb_a_annotated",
]

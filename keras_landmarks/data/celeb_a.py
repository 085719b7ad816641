"""CelebA through TensorFlow Datasets (``tfds`` name ``celeb_a``), with the MAFL split.

Preprocessing (official code, ``imm/datasets/celeba_dataset.py``): the aligned 178x218
(w x h) image is resized to ``R x R`` with ``R = round(1.25 * image_size)`` (160 for 128),
ignoring the aspect ratio, and the centre ``image_size`` square is kept (offset
``m = (R - image_size) // 2``). We resize bilinearly with anti-aliasing and half-pixel
centres (the official TF1 code used ``align_corners=True``: a sub-pixel difference), so a
landmark moves exactly as ``x' = (x + 0.5) R / 178 - 0.5 - m``,
``y' = (y + 0.5) R / 218 - 0.5 - m`` (pixel ``(x, y)``, 0-based, integer = pixel centre).

MAFL: with ``mafl_dir`` holding MAFL's ``training.txt`` and ``testing.txt`` (CelebA file
names, one per line), the annotated ``train``/``test`` splits are those images and the pairs
are, as in the paper, all of CelebA but MAFL's test images (201,599). Without it, CelebA's
partitions: pairs from ``PAIR_PARTITIONS`` (182,637), its ``test`` (the annotated one) unseen.
TFDS stores no file names, but it writes every split in the order of the md5 hash of the
example key (the file name) salted with the split name; ``storage_order`` rebuilds that
order and ``tfds_id`` (``<shard file>__<index>``) locates each example in it.

That mapping is verified, not assumed: ``shard_layout`` checks the shards TFDS reports
against the rebuilt order (ValueError), and every example read is checked, image by image,
against CelebA's ``list_landmarks_align_celeba.txt`` (TFDS's own source of the landmarks,
keyed by file name): an example whose tfds_id is outside the layout or whose 10 landmark
integers differ from its mapped file name's row stops the pipeline (InvalidArgumentError).
"""

from __future__ import annotations

import hashlib
import os
import re

import numpy as np
import tensorflow as tf

from keras_landmarks.pairs import warps
from keras_landmarks.config import SOURCE_WARP, TARGET_WARP, WarpParams

TFDS_NAME = "celeb_a"
# CelebA's list_eval_partition.txt: contiguous file numbers per split.
PARTITIONS = {"train": (1, 162770), "validation": (162771, 182637), "test": (182638, 202599)}
PAIR_PARTITIONS = ("train", "validation")  # the pairs' partitions without MAFL's lists
LANDMARK_NAMES = ("lefteye", "righteye", "nose", "leftmouth", "rightmouth")
LANDMARK_KEYS = tuple(f"{n}_{c}" for n in LANDMARK_NAMES for c in "xy")  # TFDS / CelebA columns
LANDMARKS_FILE = "list_landmarks_align_celeba.txt"
HOMEPAGE = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"
ALIGNED_HW = (218, 178)
MANUAL_FILES = ("img_align_celeba.zip", "list_eval_partition.txt", "list_landmarks_align_celeba.txt",
                "list_attr_celeba.txt", "identity_CelebA.txt")


def missing_data_message(data_dir: str | None) -> str:
    root = data_dir or "~/tensorflow_datasets"
    return (
        f"CelebA is not prepared in {root!r} (looked for {root}/{TFDS_NAME}/<version>/dataset_info.json) "
        "and cannot be downloaded on an offline machine. To prepare it: download CelebA's "
        f"aligned-and-cropped images and annotations from {HOMEPAGE} "
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


def partition_of(name: str) -> str | None:
    """CelebA partition (``PARTITIONS`` key) of file name ``"000123.jpg"``; None if it is none."""
    m = re.fullmatch(r"(\d{6})\.jpg", name)
    return next((s for s, (a, b) in PARTITIONS.items() if m and a <= int(m[1]) <= b), None)


def read_mafl(mafl_dir: str) -> dict[str, set[str]]:
    """``{"train": names, "test": names}`` from MAFL's ``training.txt`` / ``testing.txt``.
    Raises ValueError if a name is no CelebA file or the two lists share a name."""
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
        bad = sorted(n for n in out[split] if partition_of(n) is None)
        if bad:
            raise ValueError(f"{path} lists {len(bad)} names that are no CelebA file (first: {bad[:3]}; "
                             f"expected 000001.jpg..., within {PARTITIONS}): use MAFL's original lists")
    shared = sorted(out["train"] & out["test"])
    if shared:
        raise ValueError(f"MAFL's training.txt and testing.txt in {mafl_dir!r} share {len(shared)} names "
                         f"(first: {shared[:3]}): test faces would be trained on; use MAFL's original lists")
    return out


def find_landmarks_file(mafl_dir: str, builder) -> str:
    """Path of CelebA's ``list_landmarks_align_celeba.txt``: in ``mafl_dir``, ``mafl_dir/../Anno``
    (CelebA's own layout) or TFDS's manual folder ``<data_dir>/downloads/manual``."""
    root = os.path.dirname(os.path.dirname(str(builder.data_dir)))  # <root>/celeb_a/<version>
    places = [mafl_dir, os.path.join(mafl_dir, os.pardir, "Anno"), os.path.join(root, "downloads", "manual")]
    for place in places:
        if os.path.isfile(os.path.join(place, LANDMARKS_FILE)):
            return os.path.join(place, LANDMARKS_FILE)
    raise FileNotFoundError(f"MAFL needs CelebA's {LANDMARKS_FILE} to verify, image by image, which TFDS "
                            f"example is which CelebA file (TFDS stores no file names); looked in {places}. "
                            f"Copy it from CelebA's Anno/ folder ({HOMEPAGE}) into {mafl_dir!r}.")


def read_landmarks(path: str, names: list[str]) -> np.ndarray:
    """``[len(names), 10]`` int32 rows (LANDMARK_KEYS order) of ``names`` in CelebA's landmark
    file (line 1: count, line 2: column names, then ``000001.jpg x y ...``)."""
    with open(path) as f:
        lines = f.read().splitlines()
    header = lines[1].split() if len(lines) > 1 else []
    if sorted(header) != sorted(LANDMARK_KEYS):
        raise ValueError(f"{path} is not CelebA's {LANDMARKS_FILE}: its 2nd line should name the columns "
                         f"{' '.join(LANDMARK_KEYS)}, got {lines[1:2]}")
    cols = [header.index(k) + 1 for k in LANDMARK_KEYS]
    table = {row[0]: [int(row[c]) for c in cols] for row in map(str.split, lines[2:]) if row}
    missing = [n for n in names if n not in table]
    if missing:
        raise ValueError(f"{path} has no row for {len(missing)} CelebA files (first: {missing[:3]}): "
                         f"use CelebA's complete {LANDMARKS_FILE}")
    return np.array([table[n] for n in names], np.int32).reshape(len(names), len(LANDMARK_KEYS))


def shard_layout(builder, splits: tuple[str, ...]) -> tuple[list[str], dict[str, tuple[int, int]]]:
    """File names of ``splits`` in TFDS storage order, concatenated (``[N]``), and per shard file
    (the tfds_id prefix, e.g. ``celeb_a-train.tfrecord-00003-of-00016``) ``(start, length)``:
    its examples are names ``[start, start + length)``. ValueError if TFDS's reported shards
    (``builder.info.splits[split]``) disagree with the rebuilt order."""
    names, shards = [], {}
    for split in splits:
        info, order = builder.info.splits[split], storage_order(split)
        lengths, files = [int(n) for n in info.shard_lengths], list(info.filenames)
        if info.num_examples != len(order) or sum(lengths) != len(order) or len(files) != len(lengths):
            raise ValueError(f"TFDS {TFDS_NAME} split {split!r} has {info.num_examples} examples in shards of "
                             f"{lengths} ({len(files)} shard files), CelebA's partition has {len(order)}: not the "
                             f"CelebA that MAFL's file names refer to; rebuild it with `tfds build {TFDS_NAME}`")
        for k, file in enumerate(files):
            m = re.search(r"-(\d+)-of-(\d+)$", file)
            if not m or (int(m[1]), int(m[2])) != (k, len(lengths)) or file in shards:
                raise ValueError(f"TFDS {TFDS_NAME} split {split!r}: shard file {file!r} is not shard {k} of "
                                 f"{len(lengths)} (files {files}): unknown layout, cannot map file names")
            shards[file] = (len(names) + sum(lengths[:k]), lengths[k])
        names += order
    if len(set(names)) != len(names):
        raise ValueError(f"splits {splits} share file names: PARTITIONS overlap ({PARTITIONS})")
    return names, shards


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


def _examples(builder, splits: tuple[str, ...], mafl_dir: str | None = None, keep: str | None = None,
              shuffle_seed: int | None = None) -> tf.data.Dataset:
    """Raw examples (image as JPEG bytes, ``tfds_id``) of ``splits`` in TFDS order (shuffled
    file order with ``shuffle_seed``). With ``mafl_dir``: only MAFL's ``keep`` list
    (``"train"``/``"test"``), or, with ``keep=None``, all but MAFL's test images; every
    example read is then verified against CelebA's landmark file (``_verified_filter``)."""
    import tensorflow_datasets as tfds

    read = tfds.ReadConfig(add_tfds_id=True, shuffle_seed=shuffle_seed)
    ds = builder.as_dataset(split="+".join(splits), shuffle_files=shuffle_seed is not None,
                            read_config=read, decoders={"image": tfds.decode.SkipDecoding()})
    if mafl_dir is None:
        return ds
    mafl, (names, shards) = read_mafl(mafl_dir), shard_layout(builder, splits)
    listed = np.isin(names, sorted(mafl[keep or "test"]))  # read_mafl: every name is in a partition
    mask = listed if keep else ~listed
    path = find_landmarks_file(mafl_dir, builder)
    return ds.filter(_verified_filter(names, shards, read_landmarks(path, names), mask, path))


def _verified_filter(names: list[str], shards: dict[str, tuple[int, int]], expected: np.ndarray,
                     mask: np.ndarray, landmarks_path: str):
    """Predicate on a TFDS example: ``mask[i]`` for its position ``i`` in ``names`` (``[N]``,
    from its tfds_id and ``shards``), after asserting that the tfds_id lies in ``shards`` and that
    its landmarks equal ``expected[i]`` (``[N, 10]`` int32, LANDMARK_KEYS order); a failed
    assertion raises InvalidArgumentError naming the example and the file it was taken for."""
    files = sorted(shards)
    slots = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(files, tf.range(len(files), dtype=tf.int64)), -1)
    starts = tf.constant([shards[f][0] for f in files], tf.int64)
    lengths = tf.constant([shards[f][1] for f in files], tf.int64)
    names_t, expected_t, mask_t = tf.constant(names), tf.constant(expected), tf.constant(mask)
    redo = (f"this TFDS {TFDS_NAME} is not stored in the order celeb_a.storage_order rebuilds (or the landmark "
            f"file is not CelebA's), so MAFL's split cannot be trusted: rebuild it with `tfds build {TFDS_NAME}`")

    def kept(example):  # tfds_id: "celeb_a-train.tfrecord-00003-of-00016__123"
        file_index = tf.strings.split(example["tfds_id"], "__")
        slot, index = slots.lookup(file_index[0]), tf.strings.to_number(file_index[-1], tf.int64)
        known = (slot >= 0) & (index >= 0) & (index < tf.gather(lengths, tf.maximum(slot, 0)))
        in_layout = tf.debugging.Assert(known, [
            "CelebA/MAFL mapping: TFDS example", example["tfds_id"], "is outside the shard layout that "
            f"TFDS reports ({len(files)} shard files); {redo}"])
        with tf.control_dependencies([in_layout]):
            i = tf.gather(starts, slot) + index
        got = tf.cast(tf.stack([example["landmarks"][k] for k in LANDMARK_KEYS]), tf.int32)
        same = tf.debugging.Assert(tf.reduce_all(got == expected_t[i]), [
            "CelebA/MAFL mapping mismatch: TFDS example", example["tfds_id"], "was mapped to", names_t[i],
            "but its landmarks", got, f"differ from that file's row in {landmarks_path}", expected_t[i],
            f"({' '.join(LANDMARK_KEYS)}); {redo}"], summarize=len(LANDMARK_KEYS))
        with tf.control_dependencies([same]):
            return tf.identity(mask_t[i])

    return kept


def celeb_a_pairs(data_dir: str | None = None, image_size: int = 128, batch_size: int = 50, seed: int = 0,
                  mafl_dir: str | None = None, *, target_warp: WarpParams = TARGET_WARP,
                  source_warp: WarpParams = SOURCE_WARP) -> tf.data.Dataset:
    """Endless TPS training pairs: with ``mafl_dir``, all of CelebA but MAFL's test images (the
    paper's training set); without, CelebA's ``PAIR_PARTITIONS`` (all but its ``test``
    partition). Batch ``i`` is warped with stateless seed ``[seed, i]``.

    Returns:
      Batched ``{"image", "future_image": [B, S, S, 3] float32 [0, 255], "mask": [B, S, S, 1]}``.
    Raises:
      FileNotFoundError with download instructions if CelebA (or, with ``mafl_dir``, its
      ``list_landmarks_align_celeba.txt``: ``find_landmarks_file``) is missing; ValueError if
      MAFL's lists or TFDS's shards do not fit the rebuilt order; InvalidArgumentError, when
      iterated, on an example that is not the file it was mapped to (module docstring).
    """
    ds = _examples(load_builder(data_dir), tuple(PARTITIONS) if mafl_dir else PAIR_PARTITIONS, mafl_dir,
                   shuffle_seed=seed)
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
    Raises:
      As ``celeb_a_pairs``; with ``mafl_dir`` every example read is verified image by image.
    """
    choices = ("train", "test") if mafl_dir else tuple(PARTITIONS)
    if split not in choices:
        raise ValueError(f"celeb_a_annotated: split must be one of {choices}{' with mafl_dir' if mafl_dir else ''}, got {split!r}")
    ds = _examples(load_builder(data_dir), tuple(PARTITIONS) if mafl_dir else (split,), mafl_dir, keep=split)
    ds = ds.map(lambda ex: preprocess(ex, image_size), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


__all__ = [
    "PARTITIONS", "PAIR_PARTITIONS", "LANDMARK_NAMES", "LANDMARK_KEYS", "LANDMARKS_FILE", "missing_data_message", "load_builder",
    "storage_order", "partition_of", "read_mafl", "find_landmarks_file", "read_landmarks", "shard_layout",
    "landmark_affine", "preprocess", "celeb_a_pairs", "celeb_a_annotated",
]

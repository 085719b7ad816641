"""Training-pair throughput of the data pipelines (pairs per second, CPU).

Sources:
  jpeg_folder  ``image_folder_pairs`` on a JPEG folder: decode + crop/resize + fresh TPS
               warps per image (the training configuration). Without ``--data_dir`` it
               writes ``--num_files`` random smooth JPEGs of ``--file_size`` px to /tmp.
  decode_only  the same folder, decode + crop/resize + batch, no warp.
  warp_only    ``tps.warp_pairs`` on one constant batch in a parallel ``tf.data`` map.
  remap_only   the same warps (same random grids from ``tps``) sampled by OpenCV's
               ``cv2.remap`` in a ``tf.numpy_function``: a candidate for the sampling step,
               checked here against ``tps.warp_pairs`` (max difference printed).
  jpeg_remap   jpeg_folder with the ``cv2.remap`` sampling instead of ``tps.warp_pairs``.
  synthetic    ``synthetic_pairs`` (generated toy faces).
  video        ``video_pairs`` on ``--data_dir``.

The rate is the median over ``--windows`` timed windows of ``--steps`` batches each, after
``--warmup`` batches. Numbers depend on the machine and its load; quote the command.

    .venv/bin/python bench/pairs.py --source=jpeg_folder --image_size=128 --batch_size=50 --steps=20
    .venv/bin/python bench/pairs.py --source=jpeg_folder --data_dir=/work/shared/data/ytfaces/images

The last line is ``pairs_per_s=<median>``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_landmarks import tps  # noqa: E402
from keras_landmarks.config import SOURCE_WARP, TARGET_WARP  # noqa: E402
from keras_landmarks.data import decode, folders  # noqa: E402

SOURCES = ("jpeg_folder", "decode_only", "warp_only", "remap_only", "jpeg_remap", "synthetic", "video")


def write_jpegs(folder: str, count: int, size: int, seed: int = 0) -> str:
    """``count`` smooth random ``size x size`` JPEGs (quality 90) in ``folder``; reused if present."""
    os.makedirs(folder, exist_ok=True)
    if len([f for f in os.listdir(folder) if f.endswith(".jpg")]) >= count:
        return folder
    rng = np.random.default_rng(seed)
    for i in range(count):
        low = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        img = cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC)
        img = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(os.path.join(folder, f"{i:05d}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return folder


def decode_only(data_dir: str, image_size: int, batch_size: int, seed: int) -> tf.data.Dataset:
    """``image_folder_pairs`` up to batching (same ops), without the warp."""
    paths = folders.list_images(data_dir)
    stats = decode.DecodeStats("bench", files_per_epoch=len(paths))
    ds = tf.data.Dataset.from_tensor_slices(paths).shuffle(len(paths), seed=seed).repeat()
    ds = ds.map(lambda p: decode.tf_load_crop_resize(p, image_size, stats), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.filter(_is_ok).map(_as_float)
    return ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def _is_ok(ex):
    return ex["ok"]


def _as_float(ex):
    return tf.cast(ex["image"], tf.float32)


def remap_warp_pairs(images, seed, coarse: int = 0) -> dict:
    """``tps.warp_pairs`` (default warps) with the bilinear sampling done by ``cv2.remap``.

    ``coarse > 0``: evaluate the spline on a ``coarse x coarse`` grid and upsample it
    bilinearly (corner-aligned, like the ``linspace(-1, 1)`` grid). Measured at 128 px:
    33 -> max 0.08 px, mean 0.01 px from the full-resolution grid (source warp).
    """
    images = tf.cast(images, tf.float32)
    size = images.shape[1]
    seeds = tf.random.experimental.stateless_split(tf.convert_to_tensor(seed), 2)
    batch = tf.shape(images)[0]
    grids = []
    for k, params in enumerate((TARGET_WARP, SOURCE_WARP)):
        n = coarse or size
        grid = tps.tps_warp_grid(*tps.random_tps_params(seeds[k], batch, params), n, n)
        if coarse:
            grid = tf.compat.v1.image.resize(grid, [size, size], method="bilinear", align_corners=True)
        grids.append(grid)
    mask = tps.border_mask(size, size)

    def sample(imgs, grid_t, grid_s):
        half = (size - 1) / 2.0
        out = np.empty((2,) + imgs.shape, np.float32)
        masks = np.empty(imgs.shape[:3] + (1,), np.float32)
        for b in range(len(imgs)):
            px, py = [(grid_t[b, ..., c] + 1.0) * half for c in (0, 1)]
            target = cv2.remap(np.dstack([imgs[b], mask]), px, py, cv2.INTER_LINEAR, borderValue=0)
            px, py = [(grid_s[b, ..., c] + 1.0) * half for c in (0, 1)]
            out[0, b] = cv2.remap(target[..., :3], px, py, cv2.INTER_LINEAR, borderValue=0)
            out[1, b], masks[b] = target[..., :3], target[..., 3:]
        return out, masks

    pair, masks = tf.numpy_function(sample, [images, *grids], (tf.float32, tf.float32), stateful=False)
    pair.set_shape([2] + images.shape.as_list())
    masks.set_shape(images.shape[:3].as_list() + [1])
    return {"image": pair[0], "future_image": pair[1], "mask": masks}


def warp_only(image_size: int, batch_size: int, seed: int, warp=tps.warp_pairs) -> tf.data.Dataset:
    """One constant random batch, warped afresh every step (seed ``[seed, step]``)."""
    images = tf.random.stateless_uniform([batch_size, image_size, image_size, 3], [seed, 0], 0, 255)
    ds = tf.data.Dataset.from_tensors(images).repeat().enumerate()
    ds = ds.map(lambda i, x: warp(x, folders.batch_seed(seed, i)), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def check_remap(image_size: int, coarse: int) -> None:
    low = tf.random.stateless_uniform([4, 8, 8, 3], [1, 2], 0, 255)  # smooth, like photos
    images = tf.image.resize(low, [image_size, image_size], method="bicubic")
    ref, new = tps.warp_pairs(images, [3, 4]), remap_warp_pairs(images, [3, 4], coarse)
    diff = [tf.abs(ref[k] - new[k]) for k in ("image", "future_image")]
    print(f"cv2.remap vs tps.warp_pairs: |difference| max {max(float(tf.reduce_max(d)) for d in diff):.2g}, "
          f"mean {np.mean([float(tf.reduce_mean(d)) for d in diff]):.2g} (pixel values 0..255)")


def build(args) -> tf.data.Dataset:
    size, batch, seed = args.image_size, args.batch_size, args.seed
    if args.source in ("remap_only", "jpeg_remap"):
        check_remap(size, args.coarse_grid)
    if args.source == "remap_only":
        return warp_only(size, batch, seed, lambda x, s: remap_warp_pairs(x, s, args.coarse_grid))
    if args.source in ("jpeg_folder", "decode_only", "jpeg_remap"):
        data_dir = args.data_dir or write_jpegs(
            f"/tmp/keras_landmarks_bench_jpegs_{args.file_size}", args.num_files, args.file_size)
        print(f"folder: {data_dir} ({len(folders.list_images(data_dir))} images)")
        if args.source == "decode_only":
            return decode_only(data_dir, size, batch, seed)
        if args.source == "jpeg_remap":
            ds = decode_only(data_dir, size, batch, seed).enumerate()
            ds = ds.map(lambda i, x: remap_warp_pairs(x, folders.batch_seed(seed, i), args.coarse_grid),
                        num_parallel_calls=tf.data.AUTOTUNE)
            return ds.prefetch(tf.data.AUTOTUNE)
        return folders.image_folder_pairs(data_dir, size, batch, seed, deterministic=not args.nondeterministic)
    if args.source == "warp_only":
        return warp_only(size, batch, seed)
    if args.source == "synthetic":
        from keras_landmarks.data.synthetic import synthetic_pairs

        return synthetic_pairs(image_size=size, batch_size=batch, seed=seed)
    from keras_landmarks.data.video import video_pairs

    if not args.data_dir:
        raise SystemExit("--source=video needs --data_dir (a folder of videos or frame folders)")
    return video_pairs(args.data_dir, image_size=size, batch_size=batch, seed=seed)


def measure(ds: tf.data.Dataset, batch_size: int, warmup: int, steps: int, windows: int) -> list[float]:
    """Pairs per second of each timed window."""
    it = iter(ds)
    for _ in range(warmup):
        next(it)
    rates = []
    for _ in range(windows):
        start = time.perf_counter()
        for _ in range(steps):
            next(it)
        rates.append(steps * batch_size / (time.perf_counter() - start))
    del it  # stop the pipeline's threads before the interpreter exits
    return rates


def main(argv=None) -> float:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", default="jpeg_folder", choices=SOURCES)
    p.add_argument("--data_dir", default=None, help="image folder (jpeg_folder/decode_only) or video folder")
    p.add_argument("--image_size", type=int, default=128)
    p.add_argument("--batch_size", type=int, default=50)
    p.add_argument("--steps", type=int, default=20, help="batches per timed window")
    p.add_argument("--windows", type=int, default=5)
    p.add_argument("--warmup", type=int, default=10, help="batches before timing")
    p.add_argument("--num_files", type=int, default=2000, help="generated JPEGs without --data_dir")
    p.add_argument("--file_size", type=int, default=128, help="side of the generated JPEGs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nondeterministic", action="store_true", help="deterministic=False in the maps")
    p.add_argument("--coarse_grid", type=int, default=0, help="remap sources: spline grid side (0 = full)")
    p.add_argument("--threads", type=int, default=0, help="tf.data private threadpool size (0 = default)")
    args = p.parse_args(argv)
    ds = build(args)
    if args.threads:
        options = tf.data.Options()
        options.threading.private_threadpool_size = args.threads
        ds = ds.with_options(options)
    rates = measure(ds, args.batch_size, args.warmup, args.steps, args.windows)
    median = float(np.median(rates))
    print(f"source={args.source} image_size={args.image_size} batch_size={args.batch_size} "
          f"cpus={os.cpu_count()} windows={[round(r) for r in rates]}")
    print(f"pairs_per_s={median:.0f}")
    return median


if __name__ == "__main__":
    main()

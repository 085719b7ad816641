"""Training-pair throughput of the data pipelines (pairs per second, CPU).

Sources:
  jpeg_folder  ``image_folder_pairs`` on a JPEG folder: decode (one ``numpy_function`` per
               batch of paths) + crop/resize + fresh TPS warps per image, exactly as training
               uses it (``warps.PIPELINE_SAMPLER``, ``warps.PIPELINE_COARSE_GRID``). Without
               ``--data_dir`` it writes ``--num_files`` random smooth JPEGs of ``--file_size``
               px to /tmp.
  jpeg_warp    the library's decoded batches (``image_folder_batches``) warped here, with
               ``--sampler`` / ``--coarse_grid`` / ``--warp_calls`` to compare variants (e.g.
               the old ``--sampler=tf --coarse_grid=0``); ``--decode=image``: the former
               path, one ``numpy_function`` per file, then ``filter`` + ``batch``;
               ``--decode=fused``: decode and warp in one ``numpy_function`` per batch of
               paths, refilled after the warp (the alternative measured against the library).
  decode_only  the same decoded batches (``--decode=batch|image``), no warp.
  warp_only    ``warps.warp_pairs`` (``--sampler``, ``--coarse_grid``) on one constant uint8
               batch in a parallel ``tf.data`` map: the warp alone.
  synthetic    ``synthetic_pairs`` (generated toy faces, 64 px unless ``--image_size``).
  video        ``video_pairs(tps=True)`` on ``--data_dir``.
  numpy_folder the NumPy pipeline (``numpy_pairs.FolderPairs``, no TensorFlow in its batches)
               on the same JPEG folder: ``dataset[i]`` for i = 0, 1, ... in this thread.

``--output_pool=0`` replaces ``cv2_sampler``'s recycled output arrays by fresh aligned ones
per call (the pool's measured worth).

Rates are medians over ``--windows`` timed windows of ``--steps`` batches each, after
``--warmup`` batches. The machine is shared, so besides the wall-clock rate we report the
process's CPU time per pair (all its threads; other processes do not inflate it much) and
``cores / cpu_ms_per_pair``: the rate this process would reach if it had every core alone
and scaled perfectly (an upper bound, not a measurement). Quote the command and the load.

    .venv/bin/python bench/pairs.py --source=jpeg_folder --data_dir=/work/shared/data/ytfaces/images
    .venv/bin/python bench/pairs.py --source=jpeg_warp --decode=image    # the per-file decoder
    .venv/bin/python bench/pairs.py --source=jpeg_warp --sampler=tf --coarse_grid=0   # the old warp

The last line is ``pairs_per_s=<median> cpu_ms_per_pair=<x> load=<1-min load average>``.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2
import numpy as np
import tensorflow as tf

from keras_landmarks.pairs import cv2_sampler as tps_cv2, tps, warps
from keras_landmarks.config import SOURCE_WARP, TARGET_WARP
from keras_landmarks.data import decode, folders

SOURCES = ("jpeg_folder", "jpeg_warp", "decode_only", "warp_only", "synthetic", "video", "numpy_folder")


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


def _calls(n: int):
    return tf.data.AUTOTUNE if n <= 0 else n


def per_file_batches(data_dir: str, image_size: int, batch_size: int, seed: int) -> tf.data.Dataset:
    """The former ``image_folder_batches``: one ``numpy_function`` per file, filter, batch."""
    paths = folders.list_images(data_dir)
    stats = decode.DecodeStats("bench", files_per_epoch=len(paths))
    ds = tf.data.Dataset.from_tensor_slices(paths).shuffle(len(paths), seed=seed).repeat()
    ds = ds.map(lambda p: decode.tf_load_crop_resize(p, image_size, stats), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.filter(lambda ex: ex["ok"]).map(lambda ex: ex["image"])
    return ds.batch(batch_size, drop_remainder=True)


def fused_pairs(data_dir: str, image_size: int, batch_size: int, seed: int) -> tf.data.Dataset:
    """Decode + ``tps_cv2`` warp in one ``numpy_function`` per batch of paths, then ``rebatch``
    (warps of batch ``i`` of paths drawn from ``[seed, i]`` for a full batch, the first ``m`` used)."""
    paths = folders.list_images(data_dir)
    stats = decode.DecodeStats("bench", files_per_epoch=len(paths))
    size, mask, grid = image_size, warps.border_mask(image_size, image_size), warps.PIPELINE_COARSE_GRID

    def kernel(batch_paths, displacement):
        images = decode.load_batch(batch_paths, size, stats)[0]
        return tps_cv2.warp_pair_batch(images, displacement[: len(images)], mask)

    def fused(index, batch_paths):
        seeds = warps.split_seed(warps.batch_seed(seed, index))
        disp = [tps.pixel_displacement(*warps.random_tps_params(s, batch_size, w), size, size, grid)
                for s, w in ((seeds[0], TARGET_WARP), (seeds[1], SOURCE_WARP))]
        out = tf.numpy_function(kernel, [batch_paths, tf.concat(disp, -1)], (tf.float32,) * 3, stateful=False)
        shapes = ([None, size, size, 3], [None, size, size, 3], [None, size, size, 1])
        return {k: tf.ensure_shape(t, sh) for k, t, sh in zip(("image", "future_image", "mask"), out, shapes)}

    ds = tf.data.Dataset.from_tensor_slices(paths).shuffle(len(paths), seed=seed).repeat().batch(batch_size)
    ds = ds.enumerate().map(fused, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.rebatch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def _warp_fn(args):
    grid = args.coarse_grid or None
    return lambda i, x: warps.warp_pairs(x, warps.batch_seed(args.seed, i), sampler=args.sampler, coarse_grid=grid)


def warp_only(args) -> tf.data.Dataset:
    """One constant random uint8 batch, warped afresh every step (seed ``[seed, step]``)."""
    shape = [args.batch_size, args.image_size, args.image_size, 3]
    images = tf.cast(tf.random.stateless_uniform(shape, [args.seed, 0], 0, 256, tf.int32), tf.uint8)
    ds = tf.data.Dataset.from_tensors(images).repeat().enumerate()
    return ds.map(_warp_fn(args), num_parallel_calls=_calls(args.warp_calls)).prefetch(tf.data.AUTOTUNE)


class _Batches:
    """``iter()`` over a ``PyDataset``'s batches 0, 1, ... built in this thread."""

    def __init__(self, pairs):
        self.pairs = pairs

    def __iter__(self):
        return (self.pairs[i] for i in range(2**62))


def _fresh_outputs() -> None:
    """``cv2_sampler`` without its output pool: fresh aligned arrays every call."""
    def take(shapes):
        return {"arrays": tuple(tps_cv2.aligned_empty(s) for s in shapes), "busy": True}

    tps_cv2._OUTPUTS.take = take


def build(args) -> tf.data.Dataset:
    size, batch, seed = args.image_size, args.batch_size, args.seed
    if args.source == "warp_only":
        return warp_only(args)
    if args.source in ("jpeg_folder", "jpeg_warp", "decode_only", "numpy_folder"):
        data_dir = args.data_dir or write_jpegs(
            f"/tmp/keras_landmarks_bench_jpegs_{args.file_size}", args.num_files, args.file_size)
        print(f"folder: {data_dir} ({len(folders.list_images(data_dir))} images)")
        if args.source == "numpy_folder":
            from keras_landmarks.data.numpy_pairs import FolderPairs

            pairs = FolderPairs(data_dir, size, batch, seed, workers=1)
            return _Batches(pairs)
        if args.source == "jpeg_folder":
            return folders.image_folder_pairs(data_dir, size, batch, seed, deterministic=not args.nondeterministic)
        if args.decode == "fused":
            return fused_pairs(data_dir, size, batch, seed)
        if args.decode == "image":
            ds = per_file_batches(data_dir, size, batch, seed)
        else:
            ds = folders.image_folder_batches(data_dir, size, batch, seed, deterministic=not args.nondeterministic)
        if args.source == "decode_only":
            return ds.prefetch(tf.data.AUTOTUNE)
        ds = ds.enumerate().map(_warp_fn(args), num_parallel_calls=_calls(args.warp_calls),
                                deterministic=not args.nondeterministic)
        return ds.prefetch(tf.data.AUTOTUNE)
    if args.source == "synthetic":
        from keras_landmarks.data.synthetic import synthetic_pairs

        return synthetic_pairs(image_size=size, batch_size=batch, seed=seed)
    from keras_landmarks.data.video import video_pairs

    if not args.data_dir:
        raise SystemExit("--source=video needs --data_dir (a folder of videos or frame folders)")
    return video_pairs(args.data_dir, image_size=size, batch_size=batch, seed=seed, tps=True)


def measure(ds: tf.data.Dataset, batch_size: int, warmup: int, steps: int, windows: int):
    """``(pairs/s of each window, CPU ms per pair of each window)``."""
    it = iter(ds)
    for _ in range(warmup):
        next(it)
    rates, cpu = [], []
    for _ in range(windows):
        start, cpu_start = time.perf_counter(), time.process_time()
        for _ in range(steps):
            next(it)
        rates.append(steps * batch_size / (time.perf_counter() - start))
        cpu.append((time.process_time() - cpu_start) * 1e3 / (steps * batch_size))
    del it  # stop the pipeline's threads before the interpreter exits
    return rates, cpu


def main(argv=None) -> float:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", default="jpeg_folder", choices=SOURCES)
    p.add_argument("--data_dir", default=None, help="image folder (jpeg_*/decode_only) or video folder")
    p.add_argument("--image_size", type=int, default=128)
    p.add_argument("--batch_size", type=int, default=50)
    p.add_argument("--steps", type=int, default=20, help="batches per timed window")
    p.add_argument("--windows", type=int, default=5)
    p.add_argument("--warmup", type=int, default=10, help="batches before timing")
    p.add_argument("--num_files", type=int, default=2000, help="generated JPEGs without --data_dir")
    p.add_argument("--file_size", type=int, default=128, help="side of the generated JPEGs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sampler", default=warps.PIPELINE_SAMPLER, choices=warps.SAMPLERS, help="jpeg_warp, warp_only")
    p.add_argument("--coarse_grid", type=int, default=warps.PIPELINE_COARSE_GRID, help="jpeg_warp, warp_only; 0 = exact")
    p.add_argument("--decode", default="batch", choices=("batch", "image", "fused"),
                   help="jpeg_warp/decode_only: one numpy_function per batch of files (the library) or per file; "
                        "fused: decode + warp in one call (jpeg_warp)")
    p.add_argument("--warp_calls", type=int, default=0, help="jpeg_warp, warp_only: warp map parallelism (0 = AUTOTUNE)")
    p.add_argument("--nondeterministic", action="store_true", help="deterministic=False in the maps")
    p.add_argument("--threads", type=int, default=0, help="tf.data private threadpool size (0 = default)")
    p.add_argument("--output_pool", type=int, default=1, help="0: cv2_sampler allocates fresh outputs per call")
    p.add_argument("--intra_op", type=int, default=0, help="tf.data max_intra_op_parallelism (0 = default)")
    args = p.parse_args(argv)
    if not args.output_pool:
        _fresh_outputs()
    ds = build(args)
    if isinstance(ds, tf.data.Dataset):
        options = tf.data.Options()
        if args.threads:
            options.threading.private_threadpool_size = args.threads
        if args.intra_op:
            options.threading.max_intra_op_parallelism = args.intra_op
        ds = ds.with_options(options)
    load_before = os.getloadavg()[0]
    rates, cpu = measure(ds, args.batch_size, args.warmup, args.steps, args.windows)
    median, cpu_ms = float(np.median(rates)), float(np.median(cpu))
    cores = os.cpu_count()
    print(f"source={args.source} output_pool={args.output_pool} image_size={args.image_size} batch_size={args.batch_size} cpus={cores} "
          f"windows={[round(r) for r in rates]} cpu_ms_per_pair={[round(c, 3) for c in cpu]} "
          f"load_1min={load_before:.2f}->{os.getloadavg()[0]:.2f} "
          f"all_cores_bound={cores * 1e3 / cpu_ms:.0f}/s")
    print(f"pairs_per_s={median:.0f} cpu_ms_per_pair={cpu_ms:.3f} load={os.getloadavg()[0]:.2f}")
    return median


if __name__ == "__main__":
    main()

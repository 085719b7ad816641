"""Throughput of ``keras_landmarks.warps.warp_pairs`` on CPU, per sampler and grid.

One "warp" here is one training pair made from one image: a target warp of the image and
its border mask, then a source warp of the result (two TPS warps, two bilinear samplings).
Reported for batch 50 at 64 and 128 px: the TF sampler (exact grid) in a ``tf.function``,
the same with ``jit_compile=True``, and ``tf.data`` maps (``num_parallel_calls=AUTOTUNE``)
of every ``(sampler, coarse_grid)`` in ``SETTINGS``; each rate comes with the process CPU
time per warp. The last line is the pipelines' setting (``warps.PIPELINE_SAMPLER``,
``warps.PIPELINE_COARSE_GRID``) at 128 px, with the 1-minute load average.

    .venv/bin/python bench/tps.py [--steps 20]

Numbers depend on the machine and on what else runs on it: quote the command with them.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

from keras_landmarks.pairs import warps
from keras_landmarks.pairs.warps import warp_pairs

BATCH = 50
SETTINGS = (("tf", None), ("tf", 33), ("cv2", None), ("cv2", 33))


def _rate(run_step, steps: int) -> tuple[float, float]:
    """``(warps/s, CPU ms per warp)``."""
    run_step(0)  # trace / compile outside the timing
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(1, steps + 1):
        run_step(i)
    return steps * BATCH / (time.perf_counter() - start), (time.process_time() - cpu) * 1e3 / (steps * BATCH)


def bench_function(images: tf.Tensor, steps: int, jit: bool):
    fn = tf.function(lambda x, s: warp_pairs(x, s)["image"], jit_compile=jit)
    return _rate(lambda i: fn(images, tf.constant([0, i], tf.int64)).numpy(), steps)


def bench_tf_data(images: tf.Tensor, steps: int, sampler: str, coarse_grid):
    def warp(i, x):
        return warp_pairs(x, tf.stack([tf.constant(0, tf.int64), i]), sampler=sampler, coarse_grid=coarse_grid)

    ds = tf.data.Dataset.from_tensors(images).repeat().enumerate()
    it = iter(ds.map(warp, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE))
    return _rate(lambda i: next(it)["image"].numpy(), steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed batches per setting")
    args = parser.parse_args()
    rate = 0.0
    for size in (64, 128):
        images = tf.constant(np.random.default_rng(0).integers(0, 256, (BATCH, size, size, 3)), tf.uint8)
        runs = [("tf.function tf exact", lambda: bench_function(images, args.steps, jit=False)),
                ("tf.function(jit_compile=True) tf exact", lambda: bench_function(images, args.steps, jit=True))]
        for sampler, grid in SETTINGS:
            runs.append((f"tf.data map {sampler} {'exact' if grid is None else f'coarse_grid={grid}'}",
                         lambda s=sampler, g=grid: bench_tf_data(images, args.steps, s, g)))
        for name, run in runs:
            rate, cpu_ms = run()
            print(f"size={size} batch={BATCH} {name}: {rate:.0f} warps/s, {cpu_ms:.3f} CPU ms/warp, "
                  f"load {os.getloadavg()[0]:.2f}", flush=True)
        rate, cpu_ms = bench_tf_data(images, args.steps, warps.PIPELINE_SAMPLER, warps.PIPELINE_COARSE_GRID)
    print(f"warps_per_s={rate:.0f} cpu_ms_per_warp={cpu_ms:.3f} load={os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

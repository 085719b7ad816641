"""Throughput of ``keras_landmarks.tps.warp_pairs`` on CPU.

One "warp" here is one training pair made from one image: a target warp of the image and
its border mask, then a source warp of the result (two TPS warps, two bilinear samplings).
Reported for batch 50 at 64 and 128 px in three settings: a ``tf.function`` called
eagerly, the same with ``jit_compile=True``, and a ``tf.data`` pipeline that maps
``warp_pairs`` over batches (``num_parallel_calls=AUTOTUNE``). The last line is the
``tf.data`` rate at 128 px, the training configuration.

    .venv/bin/python bench/tps.py [--steps 20]

Numbers depend on the machine and on what else runs on it: quote the command with them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_landmarks.tps import warp_pairs  # noqa: E402

BATCH = 50


def _rate(run_step, steps: int) -> float:
    run_step(0)  # trace / compile outside the timing
    start = time.perf_counter()
    for i in range(1, steps + 1):
        run_step(i)
    return steps * BATCH / (time.perf_counter() - start)


def bench_function(images: tf.Tensor, steps: int, jit: bool) -> float:
    fn = tf.function(lambda x, s: warp_pairs(x, s)["image"], jit_compile=jit)
    return _rate(lambda i: fn(images, tf.constant([0, i], tf.int64)).numpy(), steps)


def bench_tf_data(images: tf.Tensor, steps: int) -> float:
    ds = (
        tf.data.Dataset.from_tensors(images)
        .repeat()
        .enumerate()
        .map(lambda i, x: warp_pairs(x, tf.stack([tf.constant(0, tf.int64), i])),
             num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
    it = iter(ds)
    return _rate(lambda i: next(it)["image"].numpy(), steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed batches per setting")
    args = parser.parse_args()
    rate = 0.0
    for size in (64, 128):
        images = tf.constant(np.random.default_rng(0).uniform(0, 255, (BATCH, size, size, 3)), tf.float32)
        for name, run in (
            ("tf.function", lambda: bench_function(images, args.steps, jit=False)),
            ("tf.function(jit_compile=True)", lambda: bench_function(images, args.steps, jit=True)),
            ("tf.data map", lambda: bench_tf_data(images, args.steps)),
        ):
            rate = run()
            print(f"size={size} batch={BATCH} {name}: {rate:.0f} warps/s", flush=True)
    print(f"warps_per_s={rate:.0f}")


if __name__ == "__main__":
    main()

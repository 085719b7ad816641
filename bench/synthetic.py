"""Throughput of the toy-face renderer (``keras_landmarks.data.synthetic``) on CPU.

For batch 50 at 64 and 128 px it reports faces/s of: parameter sampling + rendering as a
``tf.data`` pipeline (``synthetic_annotated``-style: sample, render, prefetch), the
same with ``jit_compile=False`` (plain TF ops) called from a ``tf.function``, and the
full ``synthetic_pairs`` stream (render + TPS warps) at 64 px. The last line is
``faces_per_s=..``: the ``tf.data`` rendering rate at 64 px, the demo's configuration.
``--grid PATH`` also writes a 4x4 PNG of faces with their 5 landmarks drawn
(red/green: left/right eye, blue: nose tip, yellow/cyan: left/right mouth corner).

    .venv/bin/python bench/synthetic.py [--steps 20] [--grid /tmp/toy_faces.png]

Numbers depend on the machine and on what else runs on it: quote the command with them.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

from keras_landmarks.data import synthetic

BATCH = 50


def _rate(next_batch, steps: int) -> float:
    next_batch()  # trace / compile outside the timing
    start = time.perf_counter()
    for _ in range(steps):
        next_batch()
    return steps * BATCH / (time.perf_counter() - start)


def bench_tf_data(size: int, steps: int) -> float:
    it = iter(synthetic.synthetic_annotated("train", 10**9, size, BATCH).repeat())
    return _rate(lambda: next(it)["image"].numpy(), steps)


def bench_plain(size: int, steps: int) -> float:
    @tf.function
    def make(i):
        identity = synthetic.sample_identity([0, 1], BATCH, i * BATCH)
        pose = synthetic.sample_pose([0, 2], BATCH, i * BATCH)
        return synthetic.render_faces(identity, pose, size, jit_compile=False)[0]

    counter = iter(range(10**9))
    return _rate(lambda: make(tf.constant(next(counter), tf.int64)).numpy(), steps)


def bench_pairs(size: int, steps: int) -> float:
    it = iter(synthetic.synthetic_pairs(size, BATCH, mode="tps"))
    return _rate(lambda: next(it)["image"].numpy(), steps)


def save_grid(path: str, size: int = 64, seed: int = 0) -> None:
    """Write 16 test-split faces, upscaled x4 (nearest) with their landmarks, as a PNG."""
    import cv2

    batch = next(iter(synthetic.synthetic_annotated("test", 16, size, 16, seed=seed)))
    images, points = batch["image"].numpy(), batch["landmarks"].numpy()
    up, colours = 4, [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255)]
    tiles = []
    for image, pts in zip(images, points):
        tile = cv2.resize(image.astype(np.uint8), (size * up, size * up),
                          interpolation=cv2.INTER_NEAREST)
        for (x, y), colour in zip(pts, colours):
            centre = (int(round((x + 0.5) * up - 0.5)), int(round((y + 0.5) * up - 0.5)))
            cv2.circle(tile, centre, 3, colour, 1)
        tiles.append(tile)
    grid = np.concatenate([np.concatenate(tiles[r * 4:r * 4 + 4], 1) for r in range(4)], 0)
    if not cv2.imwrite(path, grid[..., ::-1]):
        raise OSError(f"--grid: could not write {path}")
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed batches per setting")
    parser.add_argument("--grid", default="", help="also write a 4x4 PNG grid of faces here")
    args = parser.parse_args()
    if args.steps < 1:
        parser.error("--steps must be >= 1")
    if args.grid:
        save_grid(args.grid)
    print(f"cpu threads visible: {os.cpu_count()}, batch {BATCH}")
    print(f"size=128 tf.data (XLA) faces/s: {bench_tf_data(128, args.steps):.0f}")
    print(f"size=128 plain TF faces/s: {bench_plain(128, args.steps):.0f}")
    print(f"size=64 plain TF faces/s: {bench_plain(64, args.steps):.0f}")
    print(f"size=64 synthetic_pairs (render + TPS) pairs/s: {bench_pairs(64, args.steps):.0f}")
    print(f"faces_per_s={bench_tf_data(64, args.steps):.0f}")


if __name__ == "__main__":
    main()

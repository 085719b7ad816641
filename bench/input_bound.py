r"""Is the train step ever waiting for the input pipeline? Real JPEG pairs vs cached tensors.

Times ``LandmarkModel``'s compiled train step fed by (a) the real training pipeline,
``image_folder_pairs`` (JPEG decode + fresh TPS warps per image, ``tps.PIPELINE_*``), and
(b) one batch of that pipeline cached in memory (``dataset.take(1).cache().repeat()``,
no input work at all). Both iterators live side by side and are timed in alternating
windows, so machine-load drift hits both alike. Each step's time includes fetching its
batch; that fetch is also reported alone (the wait). If the pipeline keeps up, the waits
are ~0 and the step times agree (ratio ~1); a ratio above 1 with small waits means the
pipeline's background work slowed the step by sharing the CPU. Also printed: the
pipeline's own rate and CPU time per batch next to the step time (the headroom).

    .venv/bin/python bench/input_bound.py --data_dir=/work/shared/data/ytfaces/images
    .venv/bin/python bench/input_bound.py --perceptual=l2,vgg19_random --batch_size=50 --rounds=2

Without ``--data_dir`` it generates JPEGs like ``bench/pairs.py``. Numbers depend on the
machine and its load; the load average is printed with them. The last line is
``real_step_s=<median> cached_step_s=<median> ratio=<real/cached> ...`` of the last config.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import tensorflow as tf

from pairs import write_jpegs  # bench/pairs.py, beside this script (run as python bench/input_bound.py)
from keras_landmarks import LandmarkConfig, LandmarkModel
from keras_landmarks.data import folders


def pipeline_rate(ds: tf.data.Dataset, batch_size: int, batches: int) -> tuple[float, float]:
    """``(pairs/s, CPU s per batch)`` of the pipeline alone (after 3 warm-up batches)."""
    it = iter(ds)
    for _ in range(3):
        next(it)
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(batches):
        next(it)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    del it
    return batches * batch_size / wall, cpu / batches


def step_times(model: LandmarkModel, feeds: dict, warmup: int, rounds: int, window: int) -> dict:
    """``{feed: (step seconds, wait seconds)}``, timed in alternating windows of ``window`` steps.

    A step is ``next(iterator)`` (the wait: how long the pipeline kept the step waiting)
    plus Keras' compiled train step on that batch (``train_function([batch])`` runs the
    same ``one_step_on_data`` that ``fit`` runs after its own ``get_next``).
    """
    model.make_train_function()
    step = model.train_function
    iterators = {name: iter(ds) for name, ds in feeds.items()}
    for it in iterators.values():
        for _ in range(warmup):  # traces once, fills the pipeline's buffers
            float(step([next(it)])["loss"])
    times = {name: ([], []) for name in feeds}
    for _ in range(rounds):
        for name, it in iterators.items():
            for _ in range(window):
                start = time.perf_counter()
                batch = next(it)
                waited = time.perf_counter() - start
                float(step([batch])["loss"])  # forces the step to finish
                times[name][0].append(time.perf_counter() - start)
                times[name][1].append(waited)
    iterators.clear()
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data_dir", default=None, help="JPEG folder (default: generated JPEGs)")
    p.add_argument("--image_size", type=int, default=128)
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--perceptual", default="l2,vgg19_random", help="comma-separated LandmarkConfig.perceptual")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per feed")
    p.add_argument("--rounds", type=int, default=3, help="alternating timed windows per feed")
    p.add_argument("--window", type=int, default=2, help="steps per window")
    p.add_argument("--jit_compile", action="store_true")
    args = p.parse_args()

    data_dir = args.data_dir or write_jpegs("/tmp/keras_landmarks_bench_jpegs_128", 2000, 128)
    size, batch = args.image_size, args.batch_size
    rate, cpu_per_batch = pipeline_rate(folders.image_folder_pairs(data_dir, size, batch, seed=1), batch, 40)
    print(f"pipeline alone: {rate:.0f} pairs/s, {cpu_per_batch * 1e3:.0f} ms CPU per batch of {batch} "
          f"(load {os.getloadavg()[0]:.2f}, {os.cpu_count()} cpus, {data_dir})", flush=True)
    line = ""
    for perceptual in args.perceptual.split(","):
        cfg = LandmarkConfig(image_size=size, perceptual=perceptual, batch_size=batch)
        model = LandmarkModel(cfg)
        model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), jit_compile=args.jit_compile)
        real = folders.image_folder_pairs(data_dir, size, batch, seed=0)
        feeds = {"real": real, "cached": real.take(1).cache().repeat()}
        load = os.getloadavg()[0]
        times = step_times(model, feeds, args.warmup, args.rounds, args.window)
        real_s, cached_s = statistics.median(times["real"][0]), statistics.median(times["cached"][0])
        ratio, wait = real_s / cached_s, max(times["real"][1])
        print(f"perceptual={perceptual} image_size={size} batch={batch}: step real {real_s:.3f} s, "
              f"cached {cached_s:.3f} s, ratio {ratio:.3f}; longest wait for a real batch {wait * 1e3:.1f} ms; "
              f"pipeline CPU per batch = {cpu_per_batch / cached_s:.1%} of a cached step; "
              f"load {load:.2f}->{os.getloadavg()[0]:.2f}; "
              f"real {[round(t, 2) for t in times['real'][0]]} cached {[round(t, 2) for t in times['cached'][0]]}",
              flush=True)
        line = (f"real_step_s={real_s:.4f} cached_step_s={cached_s:.4f} ratio={ratio:.3f} max_wait_s={wait:.4f} "
                f"perceptual={perceptual} batch={batch} pipeline_pairs_per_s={rate:.0f} "
                f"load={os.getloadavg()[0]:.2f}")
    print(line)


if __name__ == "__main__":
    main()

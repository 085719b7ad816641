r"""One-command check of a GPU machine with JAX or PyTorch and no TensorFlow (8 minutes).

    KERAS_BACKEND=jax python bench/gpu_check.py --data_dir=faces --points=le,re,n,lm,rm
    python bench/gpu_check.py --backend=torch --data_dir=faces --points=le,re,n,lm,rm
    python bench/gpu_check.py --smoke --data_dir=D --points=a,b     # tiny, on a CPU

``--data_dir`` is an annotated folder (``landmarks.csv`` with a ``split`` column, e.g.
``../shared/data/ytfaces``). Prints, as Markdown tables:

1. the train step's samples/s at 128 px, batch 32 and 50, float32 and ``mixed_bfloat16``,
   ``jit_compile`` on and off, with the peak device memory of each (PyTorch: the row's own
   peak, reset before it; JAX cannot reset its counter, so a JAX row shows the peak of the
   process so far: the largest of it and the rows above);
2. the CPU data path (``data.numpy_pairs.FolderPairs``, NumPy + OpenCV on this machine's
   cores) in pairs/s, against the pairs/s the fastest step consumes;
3. a ``--train_minutes`` (5) training on the ``train`` split's images (labels unused) with
   ``training.train`` and the NumPy pipeline, then the paper's protocol: a linear regressor
   on the train split's labels, the error on the ``test`` split.

The last line says whether TensorFlow was imported (it must not be).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import statistics
import sys
import tempfile
import time


def _args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "jax"), choices=["jax", "torch"])
    p.add_argument("--data_dir", required=True, help="annotated folder: landmarks.csv with a split column")
    p.add_argument("--points", required=True, help="the CSV's point names, eyes first (le,re,n,lm,rm)")
    p.add_argument("--image_size", type=int, default=128)
    p.add_argument("--batches", default="32,50")
    p.add_argument("--perceptual", default="vgg19_random", help="of the step timings (the paper's cost)")
    p.add_argument("--train_perceptual", default="l2", help="of the training (no ImageNet file offline)")
    p.add_argument("--train_minutes", type=float, default=5.0)
    p.add_argument("--steps", type=int, default=10, help="timed steps per row")
    p.add_argument("--width", type=int, default=32, help="of the step timings' detector and generator")
    p.add_argument("--smoke", action="store_true",
                   help="a run-through on a CPU: 32 px, width 8, batch 2, 3 steps, 0.1-minute training")
    a = p.parse_args()
    if a.smoke:
        a.image_size, a.width, a.batches, a.steps, a.train_minutes = 32, 8, "2", 3, 0.1
    return a


def _memory():
    """``(reset, peak_bytes)`` of the accelerator, or ``None`` on a CPU."""
    import keras

    if keras.config.backend() == "torch":
        import torch

        if torch.cuda.is_available():
            return torch.cuda.reset_peak_memory_stats, torch.cuda.max_memory_allocated
        return None
    import jax

    device = jax.devices()[0]
    if device.platform == "cpu" or not (device.memory_stats() or {}).get("peak_bytes_in_use"):
        return None
    return (lambda: None), (lambda: device.memory_stats()["peak_bytes_in_use"])  # JAX: peak since start


def _torch_devices() -> list[str]:
    import torch

    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] or ["cpu"]


def step_table(a) -> float:
    """Print the step table; returns the best samples/s."""
    import keras
    import numpy as np

    from keras_landmarks import LandmarkConfig, training

    memory, best = _memory(), 0.0
    print("| batch | precision | jit_compile | samples/s | peak memory |\n|---|---|---|---|---|")
    for batch in (int(b) for b in a.batches.split(",")):
        rng = np.random.default_rng(0)
        x = rng.uniform(0, 255, (batch, a.image_size, a.image_size, 3)).astype("float32")
        data = {"image": x, "future_image": np.roll(x, 4, axis=1),
                "mask": np.ones((batch, a.image_size, a.image_size, 1), "float32")}
        for precision in ("float32", "mixed_bfloat16"):
            for jit in (True, False):
                cfg = LandmarkConfig(image_size=a.image_size, width=a.width, perceptual=a.perceptual, batch_size=batch)
                if memory:
                    memory[0]()
                model = training.build_model(cfg, mixed_precision=precision, jit_compile=jit)
                times = []
                for i in range(2 + a.steps):
                    t = time.perf_counter()
                    float(model.train_on_batch(data, return_dict=True)["loss"])
                    times.append(time.perf_counter() - t)
                rate = batch / statistics.median(times[2:])
                best = max(best, rate)
                peak = f"{memory[1]() / 2**30:.2f} GiB" if memory else "n/a (CPU)"
                print(f"| {batch} | {precision} | {'on' if jit else 'off'} | {rate:.1f} | {peak} |", flush=True)
                del model
                keras.backend.clear_session()
    return best


def data_rate(a, folder: str, consumed: float) -> None:
    """Print the CPU data path's pairs/s on all cores against the step's."""
    from keras_landmarks.data.numpy_pairs import FolderPairs

    cores = len(os.sched_getaffinity(0))
    batch = int(a.batches.split(",")[0])
    pairs = FolderPairs(folder, a.image_size, batch, seed=0, workers=cores)
    count = 3 if a.smoke else 8 * cores
    pairs[0]  # warm (OpenCV's thread pools, the file cache)
    t = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(cores) as pool:
        list(pool.map(pairs.__getitem__, range(1, count + 1)))
    rate = count * batch / (time.perf_counter() - t)
    print(f"\n| CPU data path ({cores} cores, {a.image_size} px) | pairs/s | the fastest step consumes |\n"
          f"|---|---|---|\n| FolderPairs, {cores} threads | {rate:.0f} | {consumed:.0f} "
          f"({'enough' if rate >= consumed else f'{consumed / rate:.1f}x short: the step would wait'}) |")


def train_and_evaluate(a, folder: str) -> None:
    from keras_landmarks import training
    from keras_landmarks.config import preset
    from keras_landmarks.data.numpy_pairs import annotated_batches
    from keras_landmarks.evaluation import protocol

    cfg = preset("folder", image_size=a.image_size, perceptual=a.train_perceptual,
                 **({"width": a.width, "batch_size": 4, "num_landmarks": 3} if a.smoke else {}))
    logdir = tempfile.mkdtemp(prefix="gpu_check_")
    t = time.perf_counter()
    model = training.train(cfg, dataset="folder", data_dir=folder, steps=1_000_000, logdir=logdir,
                           save_every=20 if a.smoke else 500, verbose=0, max_minutes=a.train_minutes,
                           pipeline="numpy")
    seconds = time.perf_counter() - t
    points = tuple(a.points.split(","))
    splits = [annotated_batches(a.data_dir, cfg.image_size, 64, split=s, points=points) for s in ("train", "test")]
    (tr_det, tr_gt, _), (te_det, te_gt, _) = (protocol.collect(model.detector, s) for s in splits)
    r = protocol.evaluate_points(tr_det, tr_gt, te_det, te_gt)
    print(f"\n| training ({cfg.image_size} px, {cfg.perceptual}, batch {cfg.batch_size}) | steps | seconds | "
          f"test error % | mean-shape baseline % |\n|---|---|---|---|---|\n"
          f"| {a.train_minutes:g} minutes, numpy pipeline | {training.current_step(model)} | {seconds:.0f} | "
          f"{r['error_percent']:.2f} | {r['baseline_error_percent']:.2f} |")


def main() -> None:
    a = _args()
    os.environ["KERAS_BACKEND"] = a.backend
    import keras

    from keras_landmarks.data import landmarks_csv

    devices = keras.distribution.list_devices() if a.backend == "jax" else _torch_devices()
    print(f"gpu_check: backend {keras.config.backend()}, devices {devices}, "
          f"{len(os.sched_getaffinity(0))} CPU cores, {time.strftime('%Y-%m-%d %H:%M')}\n")
    start = time.perf_counter()
    best = step_table(a)
    folder = landmarks_csv.split_folder(a.data_dir, "train")
    data_rate(a, folder, best)
    train_and_evaluate(a, folder)
    print(f"\ntotal {time.perf_counter() - start:.0f} s; tensorflow imported: "
          f"{'yes' if sys.modules.get('tensorflow') is not None else 'no'}")


if __name__ == "__main__":
    main()

r"""Does it matter that ``model.keras`` pairs the weights' moving average with BatchNorm statistics
gathered under the raw weights? (issue 28 item 3)

    taskset -c 1 python bench/ema_batchnorm.py --steps=200,1000

Trains the demo's recipe (``PRESETS["demo"]``: moving average 0.99 of the weights) at 32 px with
``train_on_batch`` (``fit`` would copy the average into the model at its end), and at each step
count evaluates, by the paper's protocol on held-out toy faces (1,000 train / 500 test):
the raw weights; the averaged weights with the run's statistics (what ``model.keras`` holds);
the averaged weights with statistics recomputed under them (the exact mean of the batch
statistics of 64 training batches, "precise BN"); and how far the averaged model's points move
between the two statistics (pixels of the 32 px image).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_landmarks import data, training  # noqa: E402
from keras_landmarks.config import preset  # noqa: E402
from keras_landmarks.evaluation import protocol  # noqa: E402

SIZE = 32


def _statistics(bns) -> list[np.ndarray]:
    return [keras.ops.convert_to_numpy(v).copy() for l in bns for v in (l.moving_mean, l.moving_variance)]


def _set_statistics(bns, values) -> None:
    for l, m, v in zip(bns, values[0::2], values[1::2]):
        l.moving_mean.assign(m)
        l.moving_variance.assign(v)


def precise_batchnorm(model, bns, batches) -> None:
    """Moving statistics := the exact mean of the batch statistics over ``batches`` (eager calls)."""
    momenta = [l.momentum for l in bns]
    for i, batch in enumerate(batches):
        for l in bns:
            l.momentum = 1.0 - 1.0 / (i + 1)  # a running mean: the first batch replaces
        model({"image": batch["image"], "future_image": batch["future_image"]}, training=True)
    for l, m in zip(bns, momenta):
        l.momentum = m


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", default="200,1000", help="step counts to evaluate at (comma list)")
    args = p.parse_args()
    cfg = preset("demo", image_size=SIZE, heatmap_size=16, num_landmarks=32)
    model = training.build_model(cfg, jit_compile=False)
    bns = [l for net in (model.detector, model.appearance_encoder, model.renderer) for l in net._flatten_layers()
           if isinstance(l, keras.layers.BatchNormalization)]
    recalibration = list(data.training_pairs("synthetic", image_size=SIZE, batch_size=cfg.batch_size, seed=0).take(64))
    splits = {s: list(data.annotated("synthetic", split=s, image_size=SIZE, batch_size=100, num_images=n))
              for s, n in (("train", 1000), ("test", 500))}

    def evaluate():
        (tr, trg, _), (te, teg, _) = (protocol.collect(model.detector, splits[s]) for s in ("train", "test"))
        return protocol.evaluate_points(tr, trg, te, teg)["error_percent"], te

    train = iter(data.training_pairs("synthetic", image_size=SIZE, batch_size=cfg.batch_size, seed=1))
    done, start = 0, time.time()
    print(f"backend={keras.config.backend()} cpus={os.cpu_count()} config: demo preset at {SIZE} px, K=32")
    for target in (int(s) for s in args.steps.split(",")):
        for _ in range(target - done):
            model.train_on_batch(next(train))
        done = target
        raw, _ = evaluate()
        run_stats = _statistics(bns)
        with training.averaged_weights(model):
            saved, saved_points = evaluate()
            precise_batchnorm(model, bns, recalibration)
            recomputed_stats = _statistics(bns)
            recomputed, recomputed_points = evaluate()
            _set_statistics(bns, run_stats)
        change = max(np.abs(a - b).max() / (np.abs(b).max() + 1e-6) for a, b in zip(run_stats, recomputed_stats))
        shift = np.linalg.norm(saved_points - recomputed_points, axis=-1)
        print(f"step {target} ({time.time() - start:.0f} s): error % raw {raw:.2f} | averaged, run's statistics "
              f"{saved:.2f} | averaged, recomputed statistics {recomputed:.2f} | points move {shift.mean():.3f} px "
              f"(max {shift.max():.3f}) | largest statistic change {100 * change:.1f} % of its layer's largest",
              flush=True)


if __name__ == "__main__":
    main()

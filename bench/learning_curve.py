r"""Landmark error against training steps and time for one recipe on the toy faces.

Trains a ``LandmarkModel`` exactly as ``trainers/demo.py`` does (``training.build_model``,
synthetic two-pose pairs, the official optimiser) and, every ``--eval_every`` steps,
measures it with the demo's protocol (the regressor fitted on the same 2,000 annotated
toy faces, the error on the same 500 held-out ones). Prints one row per evaluation, so
recipes (image size, K, learning rate, loss) can be compared at equal steps *and* at
equal training time: the way the demo's settings were chosen (BUILD.md, "The demo").

    .venv/bin/python bench/learning_curve.py --image_size=64 --num_landmarks=20 --steps=3000
    .venv/bin/python bench/learning_curve.py --image_size=32 --steps=6000 --eval_every=1000

Training time excludes the evaluations. The last line is
``error_percent=<last> steps=<n> train_s=<seconds> load=<1-min load average>``.
"""

from __future__ import annotations

import argparse
import os
import time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras

from keras_landmarks import data, evaluation, preset, training
from keras_landmarks.evaluation import protocol as lm_eval


class Curve(keras.callbacks.Callback):
    """Evaluate at every epoch end and print a row; ``train_s`` excludes the evaluations."""

    def __init__(self, every: int, train_split, test_split):
        super().__init__()
        self.every, self.train_split, self.test_split = every, train_split, test_split
        self.train_s, self.report = 0.0, None

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        self.train_s += time.monotonic() - self.start
        tr_det, tr_gt, _ = lm_eval.collect(self.model.detector, self.train_split)
        te_det, te_gt, _ = lm_eval.collect(self.model.detector, self.test_split)
        self.report = r = lm_eval.evaluate_points(tr_det, tr_gt, te_det, te_gt)
        print(f"{(epoch + 1) * self.every:>6} {self.train_s:>8.0f} {r['error_percent']:>8.2f} "
              f"{r['baseline_error_percent']:>10.2f} {(logs or {}).get('loss', float('nan')):>10.4g}",
              flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--image_size", type=int, default=64)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--num_landmarks", type=int, default=20)  # the demo's
    p.add_argument("--perceptual", default="l2", help="l2, vgg19_random, vgg19:<file>, vgg19_imagenet")
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--learning_rate", type=float, default=1e-3)
    p.add_argument("--pairs", choices=["video", "tps"], default="video")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--eval_every", type=int, default=500)
    p.add_argument("--num_train", type=int, default=2000)
    p.add_argument("--num_test", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    if a.steps % a.eval_every:
        p.error(f"--steps={a.steps} must be a multiple of --eval_every={a.eval_every}")

    cfg = preset("synthetic", image_size=a.image_size, width=a.width, num_landmarks=a.num_landmarks,
                 perceptual=a.perceptual, batch_size=a.batch_size, learning_rate=a.learning_rate,
                 seed=a.seed)
    keras.utils.set_random_seed(cfg.seed)
    model = training.build_model(cfg)
    pairs = data.training_pairs("synthetic", image_size=cfg.image_size, batch_size=cfg.batch_size,
                                seed=cfg.seed, mode=a.pairs)
    train_split, test_split = evaluation.annotated_splits(
        "synthetic", image_size=cfg.image_size, batch_size=250, num_train=a.num_train,
        num_test=a.num_test)

    print(f"toy faces {cfg.image_size}px, K={cfg.num_landmarks}, width {cfg.width}, "
          f"{cfg.perceptual}, batch {cfg.batch_size}, lr {cfg.learning_rate:g}, {a.pairs} pairs; "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print(f"{'step':>6} {'train_s':>8} {'error %':>8} {'baseline %':>10} {'loss':>10}")
    # One fit over all the steps (one data stream, as in training.train), evaluated at each
    # epoch end; the evaluation's time is left out of the training time.
    curve = Curve(a.eval_every, train_split, test_split)
    model.fit(pairs, steps_per_epoch=a.eval_every, epochs=a.steps // a.eval_every,
              callbacks=[curve], shuffle=False, verbose=0)
    report, train_s = curve.report, curve.train_s
    print(f"error_percent={report['error_percent']:.2f} steps={a.steps} train_s={train_s:.0f} "
          f"load={os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

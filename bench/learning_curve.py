r"""Landmark error against training steps and CPU time for one recipe, toy or real faces.

Trains a ``LandmarkModel`` as the trainer does (``training.build_model``, the source's
training pairs, the official optimiser) and, every ``--eval_every`` steps, measures it with
the paper's protocol and the label-free diagnostics. Prints one row per evaluation, so
recipes (image size, K, learning rate, loss, warps) can be compared at equal steps *and*
at equal training time: the way the demo's and the ``real_faces`` preset's settings were
chosen (BUILD.md, "Experiment log").

* ``--dataset=synthetic``: the toy faces (regressor on 2,000 annotated ones, error on 500).
* ``--dataset=folder --data_dir=D``: a folder with a ``landmarks.csv`` that has a ``split``
  column (``annotated_folder``). Training sees the ``--train_split`` rows' images only,
  without their labels; the regressor is fitted on the train split's labels and the
  error measured on the test split (``../shared/data/ytfaces`` with
  ``--points=le,re,n,lm,rm`` is the paper's 5-point protocol).

    .venv/bin/python bench/learning_curve.py --image_size=64 --num_landmarks=20 --steps=3000
    .venv/bin/python bench/learning_curve.py --dataset=folder --data_dir=../shared/data/ytfaces \
        --points=le,re,n,lm,rm --preset=real_faces --max_minutes=60 --eval_every=1000

Training time excludes the evaluations. ``--logdir`` saves the model at every evaluation
(``<logdir>/model.keras``: with ``--weight_ema`` the average, what the row evaluated, as
``landmarks-train`` saves it; then ``<logdir>/resume.keras`` holds the raw weights) and, run
again, resumes from the raw weights (step and CPU time carried in ``<logdir>/curve.json``), so one
curve can be continued over several runs. The last line is
``error_percent=<last> steps=<n> train_s=<seconds> load=<1-min load average>``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from keras_landmarks import data, evaluation, preset, training
from keras_landmarks.config import PRESETS, override_fields, parse_value, with_overrides
from keras_landmarks.data import landmarks_csv
from keras_landmarks.evaluation import diagnostics
from keras_landmarks.evaluation import protocol as lm_eval


class Curve(keras.callbacks.Callback):
    """Evaluate every ``every`` steps and print a row; ``train_s`` excludes the evaluations."""

    def __init__(self, every, splits, probe, logdir=None, start=(0, 0.0), max_seconds=None):
        super().__init__()
        self.every, self.splits, self.probe, self.logdir = every, splits, probe, logdir
        (self.step0, self.train_s), self.max_seconds = start, max_seconds
        self.report, self.last_step = None, self.step0

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        self.train_s += time.monotonic() - self.start
        step = self.last_step = self.step0 + (epoch + 1) * self.every
        loss = (logs or {}).get("loss", float("nan"))
        if not np.isfinite(loss):  # nothing to evaluate: keep the last good save
            print(f"loss is {loss} at step {step}: stopping", flush=True)
            self.model.stop_training = True
            return
        # resume.keras: the raw weights, when the run keeps an average (without one, model.keras
        # is both and is what a resume reads).
        if self.logdir and getattr(self.model.optimizer, "use_ema", False):
            self.model.save(os.path.join(self.logdir, "resume.keras"))
        # The error, the diagnostics (before 2026-12-07 06:10 UTC these columns were of the raw
        # weights) and model.keras are of the weights' average when the run keeps one: what is
        # exported and shipped, as landmarks-train writes it. One swap in and out per evaluation.
        with training.averaged_weights(self.model):
            (tr_det, tr_gt, _), (te_det, te_gt, _) = (lm_eval.collect(self.model.detector, s) for s in self.splits)
            d = diagnostics.diagnose(self.model, self.probe)
            if self.logdir:
                self.model.save(os.path.join(self.logdir, "model.keras"))
        self.report = r = lm_eval.evaluate_points(tr_det, tr_gt, te_det, te_gt)
        print(f"{step:>6} {self.train_s:>8.0f} {r['error_percent']:>8.2f} {r['baseline_error_percent']:>10.2f} "
              f"{d['equivariance_px']:>7.2f} {d['mean_spread_px']:>7.2f} {d['collapsed']:>4} "
              f"{d['reliance']:>6.3f} {loss:>10.4g} {d['consistency_ratio']:>6.2f} {d['shape_ratio']:>7.2f} "
              f"{d['patch_gain']:>6.3f}  {d['verdict']}", flush=True)
        if self.logdir:  # last: a resume trusts the step only once both models are written
            with open(os.path.join(self.logdir, "curve.json"), "w") as f:
                json.dump({"step": step, "train_s": self.train_s}, f)
        if self.max_seconds is not None and self.train_s >= self.max_seconds:
            self.model.stop_training = True


def _args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", choices=["synthetic", "folder"], default="synthetic")
    p.add_argument("--data_dir", help="folder: the annotated folder (landmarks.csv with a split column)")
    p.add_argument("--points", help="folder: the CSV's point names, eyes first (le,re,n,lm,rm)")
    p.add_argument("--train_split", default="train")
    p.add_argument("--extra_train_dir", action="append", default=[],
                   help="folder: another annotated folder whose --train_split images are added to the "
                        "unlabelled training images (repeatable); the error stays on --data_dir")
    p.add_argument("--train_video", help="folder: train on video pairs of the clips in this folder instead "
                   "(two frames of one clip); the regressor and the error stay on --data_dir")
    p.add_argument("--video_tps", action="store_true", help="--train_video: also TPS-warp both frames")
    p.add_argument("--preset", help=f"start from a preset ({', '.join(sorted(PRESETS))}); flags override")
    # Every LandmarkConfig field but the seed (below), generated as for landmarks-train's
    # --config.<field> (docs/configuration.md), here without the prefix: --image_size=64,
    # --target_warp.rotation_deg=10, --alpha_init=1,1,1,1,1,1, --sync_batchnorm=false.
    for name, tp in override_fields().items():
        if name != "seed":
            p.add_argument(f"--{name}", type=lambda text, tp=tp: parse_value(tp, text), metavar=tp.__name__.upper(),
                           help=f"LandmarkConfig.{name} (default: the preset's)")
    p.add_argument("--mixed_precision", choices=training.PRECISIONS, default="none",
                   help="mixed_bfloat16: bf16 convs (AVX512_BF16 / AMX CPUs, GPUs)")
    p.add_argument("--pairs", choices=["video", "tps"], default="video", help="synthetic only")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--max_minutes", type=float, help="also stop after this much training time")
    p.add_argument("--eval_every", type=int, default=500)
    p.add_argument("--num_train", type=int, default=2000, help="synthetic only")
    p.add_argument("--num_test", type=int, default=500, help="synthetic only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--logdir", help="save at every evaluation; resume from it")
    a = p.parse_args()
    if a.steps % a.eval_every:
        p.error(f"--steps={a.steps} must be a multiple of --eval_every={a.eval_every}")
    if a.dataset == "folder" and not (a.data_dir and a.points):
        p.error("--dataset=folder needs --data_dir and --points")
    if a.train_video and a.dataset != "folder":
        p.error("--train_video needs --dataset=folder (the annotated folder to measure on)")
    return a


def _config(a):
    name = a.preset or ("demo" if a.dataset == "synthetic" else "folder")  # demo: make demo's model
    over = {k: v for k, v in vars(a).items() if k in override_fields() and v is not None}
    return with_overrides(preset(name), over)


def main() -> None:
    a = _args()
    cfg = _config(a)
    keras.utils.set_random_seed(cfg.seed)
    start = (0, 0.0)
    if a.logdir and os.path.exists(os.path.join(a.logdir, "curve.json")):
        with open(os.path.join(a.logdir, "curve.json")) as f:
            state = json.load(f)
        start = (state["step"], state["train_s"])
        resume = os.path.join(a.logdir, "resume.keras")  # runs with a weight average (since 2026-12-07)
        model = keras.models.load_model(resume if os.path.exists(resume) else os.path.join(a.logdir, "model.keras"))
        print(f"resuming {a.logdir} at step {start[0]} ({start[1]:.0f} s trained)")
    else:
        model = training.build_model(cfg, mixed_precision=a.mixed_precision)
        if a.logdir:
            os.makedirs(a.logdir, exist_ok=True)
    warps = {"target_warp": cfg.target_warp, "source_warp": cfg.source_warp}
    size = {"image_size": cfg.image_size, "batch_size": cfg.batch_size, "seed": cfg.seed + start[0]}
    if a.dataset == "synthetic":
        pairs = data.training_pairs("synthetic", mode=a.pairs, **size)
        splits = evaluation.annotated_splits("synthetic", image_size=cfg.image_size, batch_size=250,
                                             num_train=a.num_train, num_test=a.num_test)
        where = "toy faces"
    else:
        if a.train_video:
            pairs = data.training_pairs("video", data_dir=a.train_video, tps=a.video_tps, **size, **warps)
            where = f"{a.train_video} (video pairs{', TPS' if a.video_tps else ''}) -> {a.data_dir}"
        else:
            pairs = data.training_pairs("folder", **size, **warps,
                                        data_dir=landmarks_csv.split_folder([a.data_dir, *a.extra_train_dir], a.train_split))
            where = f"{' + '.join([a.data_dir, *a.extra_train_dir])} ({a.train_split} images)"
        splits = evaluation.annotated_splits("folder", image_size=cfg.image_size, batch_size=250,
                                             data_dir=a.data_dir, points=tuple(a.points.split(",")))
    probe = next(iter(pairs.take(1)))
    probe = {k: v[:16] for k, v in probe.items()}

    print(f"{where} {cfg.image_size}px, K={cfg.num_landmarks}, width {cfg.width}, {cfg.perceptual}, "
          f"{cfg.normalization} norm, {a.mixed_precision} precision, batch {cfg.batch_size}, "
          f"lr {cfg.learning_rate:g} x{cfg.lr_decay_rate:g}/{cfg.lr_decay_steps}, EMA {cfg.weight_ema:g}, sigma {cfg.gaussian_sigma:g}, "
          f"target warp {tuple(vars(cfg.target_warp).values())}, source warp "
          f"{tuple(vars(cfg.source_warp).values())}; {len(os.sched_getaffinity(0))} CPUs, "
          f"load {os.getloadavg()[0]:.1f}")
    print(f"{'step':>6} {'train_s':>8} {'error %':>8} {'baseline %':>10} {'equi_px':>7} {'spread':>7} "
          f"{'coll':>4} {'relian':>6} {'loss':>10} {'cons_r':>6} {'shape_r':>7} {'patch':>6}  verdict")
    # One fit over all the steps (one data stream, as in training.train), evaluated at each
    # epoch end; the evaluation's time is left out of the training time.
    max_s = None if a.max_minutes is None else 60.0 * a.max_minutes
    curve = Curve(a.eval_every, splits, probe, a.logdir, start, max_s)
    todo = max(0, a.steps - start[0])
    model.fit(pairs, steps_per_epoch=a.eval_every, epochs=todo // a.eval_every, callbacks=[curve],
              shuffle=False, verbose=0)
    report = curve.report or {"error_percent": float("nan")}
    print(f"error_percent={report['error_percent']:.2f} steps={curve.last_step} train_s={curve.train_s:.0f} "
          f"load={os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

r"""The main job (``make demo``): learn landmarks on toy faces, offline, on a CPU.

    python trainers/demo.py --logdir=runs/demo      # what make demo runs

1. trains a LandmarkModel on the procedural ``synthetic`` toy faces (no download: the
   data are generated), through ``keras_landmarks.training.train`` like any run;
2. evaluates it with the paper's protocol on held-out toy faces (linear regression from
   the K learned points to the 5 ground-truth points, error in % of the inter-ocular
   distance, next to the mean-shape baseline);
3. exports the detector (SavedModel, TFLite, ONNX) with a parity check;
4. animates a held-out toy face with another toy face's motion through the trained
   generator (``landmarks-animate``'s code): ``<logdir>/animation.gif`` (source | driving
   with its points | result) and the strip ``<logdir>/animation.png``;
5. writes ``<logdir>/REPORT.md`` with what it reached and how long each part took.

The defaults (64x64, width 16, K=64, Adam 2e-3, a 0.99 moving average of the weights as the
detector, pixel-L2 loss, two-pose "video" pairs, 11 minutes of training) were chosen by
measurement on 2-core CPUs (BUILD.md, "The demo"): the whole job takes ~12-13 minutes
whatever the CPU's speed, and a faster CPU trains more steps in it. Running the same command again resumes an interrupted run, or trains a finished one for
another budget.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import sys
import time

from absl import app, flags

from keras_landmarks.cli._flags import import_tensorflow, run_main
from keras_landmarks.config import PRESETS

_DEMO = PRESETS["demo"]  # the model's defaults, shared with bench/learning_curve.py

logger = logging.getLogger("keras_landmarks.demo")

FLAGS = flags.FLAGS
flags.DEFINE_string("logdir", "runs/demo", "Where the run, report and exported detector go.")
flags.DEFINE_integer("steps", 50_000, "At most this many training steps (a cap: --max_minutes "
                     "ends the demo's training first on a CPU).")
flags.DEFINE_float("max_minutes", 11.0, "Training time budget in minutes (0: none, train --steps). "
                   "Running the same command again trains another budget from where it stopped.")
flags.DEFINE_integer("save_every", 500, "Steps between saves of model.keras and the resume state.")
flags.DEFINE_integer("batch_size", _DEMO["batch_size"], "Global batch size.")
flags.DEFINE_integer("image_size", _DEMO["image_size"], "Image side (power of two).")
flags.DEFINE_integer("width", _DEMO["width"], "Encoder width (official 32).")
flags.DEFINE_integer("num_landmarks", _DEMO["num_landmarks"], "K (more points cost little here and give the "
                     "regressor more to combine: BUILD.md, 'The demo').")
flags.DEFINE_string("perceptual", _DEMO["perceptual"], "Reconstruction loss (see landmarks-train --config.perceptual).")
flags.DEFINE_enum("pairs", "video", ["video", "tps"],
                  "Toy-face pairs: two poses of one face (video) or two TPS warps of one image.")
flags.DEFINE_float("learning_rate", _DEMO["learning_rate"], "Adam learning rate.")
flags.DEFINE_float("weight_ema", _DEMO["weight_ema"], "Momentum of the weights' moving average that "
                   "is evaluated and exported (0: the raw weights; BUILD.md, 'The demo').")
flags.DEFINE_integer("num_train", 2000, "Annotated toy faces to fit the regressor.")
flags.DEFINE_integer("num_test", 500, "Held-out toy faces to measure on.")
flags.DEFINE_bool("export", True, "Export the trained detector (SavedModel, TFLite, ONNX).")
flags.DEFINE_bool("animate", True, "Animate a toy face with another's motion (animation.gif, .png).")
flags.DEFINE_integer("verbose", 1, "Training progress: 0 quiet, 1 bar, 2 one line per 5 %.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    import_tensorflow()
    from keras_landmarks import evaluation, training  # noqa: PLC0415 (TensorFlow)
    from keras_landmarks.config import preset  # noqa: PLC0415
    from keras_landmarks.model import model_file  # noqa: PLC0415
    from keras_landmarks.training.rundir import current_step  # noqa: PLC0415

    cfg = preset("demo", image_size=FLAGS.image_size, width=FLAGS.width,
                 num_landmarks=FLAGS.num_landmarks, perceptual=FLAGS.perceptual,
                 batch_size=FLAGS.batch_size, learning_rate=FLAGS.learning_rate,
                 weight_ema=FLAGS.weight_ema)
    timings = {}
    start = time.time()
    model = training.train(cfg, dataset="synthetic", steps=FLAGS.steps, logdir=FLAGS.logdir,
                           save_every=FLAGS.save_every, summary_every=50, verbose=FLAGS.verbose,
                           data_kwargs={"mode": FLAGS.pairs},
                           max_minutes=FLAGS.max_minutes or None)
    timings["train_s"] = time.time() - start
    trained_steps = current_step(model)
    del model

    start = time.time()
    model_path = model_file(FLAGS.logdir)
    report = evaluation.evaluate_saved_model(
        model_path, FLAGS.logdir, dataset="synthetic", num_train=FLAGS.num_train,
        num_test=FLAGS.num_test)
    timings["evaluate_s"] = time.time() - start

    exported = None
    if FLAGS.export:
        start = time.time()
        exported = _export(model_path, os.path.join(FLAGS.logdir, "export"))
        timings["export_s"] = time.time() - start
    animation = None
    if FLAGS.animate:
        start = time.time()
        animation = _animate(model_path, FLAGS.logdir, cfg.image_size)
        timings["animate_s"] = time.time() - start
    _write_report(cfg, report, timings, exported, trained_steps, animation)


def _export(model_path: str, output_dir: str) -> dict:
    from keras_landmarks.export.exporter import export_all  # noqa: PLC0415
    from keras_landmarks.export.serving import load_keras_detector  # noqa: PLC0415

    return export_all(load_keras_detector(model_path), output_dir,
                      formats=["saved_model", "tflite", "onnx"],
                      quantizations=["none", "float16", "int8"],
                      representative_data="synthetic", overwrite=True)


def _animate(model_path: str, logdir: str, image_size: int) -> dict:
    """Held-out toy face 1 driven by toy face 0's motion (relative), written as files and run
    through ``apps.animate`` like ``landmarks-animate``: ``animation.gif`` and ``animation.png``."""
    import numpy as np  # noqa: PLC0415

    from keras_landmarks.evaluation import pictures  # noqa: PLC0415
    from keras_landmarks.apps.animate import animate  # noqa: PLC0415
    from keras_landmarks.data.synthetic import toy_clip  # noqa: PLC0415
    from keras_landmarks.export.generator import keras_runners  # noqa: PLC0415

    folder = os.path.join(logdir, "animation")
    driving = os.path.join(folder, "driving")
    os.makedirs(driving, exist_ok=True)
    frames = np.asarray(toy_clip(0, 48, image_size)[0]).astype(np.uint8)
    for t, frame in enumerate(frames):
        pictures.write_png(os.path.join(driving, f"{t:03d}.png"), frame)
    source = os.path.join(folder, "source.png")
    pictures.write_png(source, np.asarray(toy_clip(1, 2, image_size)[0][0]).astype(np.uint8))
    detector, generator = keras_runners(model_path)
    common = {"layout": "side_by_side", "display_size": 128, "progress": False}
    gif = animate(detector, generator, source, driving, os.path.join(logdir, "animation.gif"), **common)
    animate(detector, generator, source, driving, os.path.join(logdir, "animation.png"), strip_frames=6, **common)
    return gif


def _write_report(cfg, report: dict, timings: dict, exported, trained_steps: int, animation=None) -> None:
    lines = [
        "# keras-landmarks demo run",
        "",
        f"Command: `python trainers/demo.py {shlex.join(sys.argv[1:])}` "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs).",
        "",
        f"- data: synthetic toy faces, {FLAGS.pairs} pairs, {cfg.image_size}x{cfg.image_size}",
        f"- model: K={cfg.num_landmarks}, width {cfg.width}, loss {cfg.perceptual}, "
        f"sigma {cfg.gaussian_sigma:g}, batch {cfg.batch_size}, learning rate {cfg.learning_rate:g}, "
        f"weight EMA {cfg.weight_ema:g}, "
        f"**{trained_steps} steps** trained (cap {FLAGS.steps}"
        + (f", budget {FLAGS.max_minutes:g} min of training per run)" if FLAGS.max_minutes else ")"),
        f"- **landmark error: {report['error_percent']:.2f} % of the inter-ocular distance** "
        f"(mean-shape baseline {report['baseline_error_percent']:.2f} %), "
        f"{report['num_train']} train / {report['num_test']} held-out test faces",
        "- per point: " + ", ".join(f"{k} {v:.2f} %" for k, v in report["per_point_error_percent"].items()),
        "- time: " + ", ".join(f"{k[:-2]} {v:.0f} s" for k, v in timings.items()),
        "",
        "Files: `metrics.json`, `landmarks.png` (ground truth x, regressed dots), "
        "`detections.png` (the K learned points), `model.keras`, `tensorboard/`"
        + (", `export/` (detector in every format)" if exported is not None else "") + ".",
    ]
    if animation is not None:
        lines += [
            "",
            f"Animation (`animation.gif`, {animation['frames']} frames): a held-out toy face (left) "
            "redrawn by the generator with the motion of another (middle, with its detected points); "
            "relative motion, as `landmarks-animate` makes it. Rows of the strip: source, driving, result.",
            "",
            "![animation strip](animation.png)",
        ]
    path = os.path.join(FLAGS.logdir, "REPORT.md")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(FLAGS.logdir, "timings.json"), "w") as f:
        json.dump({**timings, "steps": trained_steps}, f, indent=2)
    logger.info("%s\n\nReport: %s", "\n".join(lines[4:8]), path)


def run() -> None:
    """``python trainers/demo.py`` (what ``make demo`` runs)."""
    run_main(main, "demo.py", __name__)


if __name__ == "__main__":
    run()

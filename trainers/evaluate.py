r"""Evaluate a trained detector with the paper's protocol (linear regression to labels).

    python trainers/evaluate.py --model=runs/demo --dataset=synthetic
    python trainers/evaluate.py --model=runs/faces/model.keras --dataset=folder \
        --data_dir=../shared/data/ytfaces --points=le,re,n,lm,rm
    python trainers/evaluate.py --model=runs/celeba --dataset=celeb_a --mafl_dir=/data/MAFL

Fits the regressor on the ``train`` split, measures on ``test``, prints the
inter-ocular-normalised error (%), per-point errors and the mean-shape baseline, and
writes ``metrics.json`` and ``landmarks.png`` (test images: ground truth as crosses,
regressed points as dots; the detector's own K points in ``detections.png``).
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "A .keras LandmarkModel, or a training logdir holding model.keras.")
flags.DEFINE_enum("dataset", "synthetic", ["synthetic", "folder", "celeb_a"], "Annotated source.")
flags.DEFINE_string("data_dir", None, "Folder of the annotated images (folder) or TFDS data_dir (celeb_a).")
flags.DEFINE_string("csv_path", None, "Landmarks CSV for --dataset=folder (default <data_dir>/landmarks.csv).")
flags.DEFINE_list("points", None, "Point names to evaluate from the CSV, eyes first (e.g. le,re,n,lm,rm).")
flags.DEFINE_string("mafl_dir", None, "Folder with MAFL training.txt/testing.txt (celeb_a).")
flags.DEFINE_integer("num_train", 2000, "Synthetic: annotated training faces for the regressor.")
flags.DEFINE_integer("num_test", 500, "Synthetic: held-out test faces.")
flags.DEFINE_integer("batch_size", 50, "Inference batch size.")
flags.DEFINE_bool("intercept", False, "Fit the regressor with an intercept (official: no).")
flags.DEFINE_string("output_dir", None, "Where to write metrics.json and PNGs (default <model dir>/eval).")


def resolve_model_path(path: str) -> str:
    """A .keras file, or a logdir containing ``model.keras``."""
    candidate = os.path.join(path, "model.keras") if os.path.isdir(path) else path
    if not os.path.isfile(candidate):
        raise FileNotFoundError(
            f"--model={path}: no model there (expected a .keras file or a training logdir "
            "with model.keras; train one with trainers/train.py)"
        )
    return candidate


def annotated_splits(dataset: str, image_size: int, batch_size: int, data_dir=None, csv_path=None,
                     points=None, mafl_dir=None, num_train=2000, num_test=500):
    """``(train, test)`` annotated datasets of one source at ``image_size``."""
    from keras_landmarks import data

    kw: dict = {}
    if dataset == "synthetic":
        return tuple(
            data.annotated("synthetic", split=s, image_size=image_size, batch_size=batch_size,
                           num_images=n)
            for s, n in (("train", num_train), ("test", num_test))
        )
    if dataset == "folder":
        kw = {"csv_path": csv_path, "points": points}
    elif dataset == "celeb_a":
        kw = {"mafl_dir": mafl_dir}
    return tuple(
        data.annotated(dataset, split=s, data_dir=data_dir, image_size=image_size,
                       batch_size=batch_size, **kw)
        for s in ("train", "test")
    )


def run(model_path: str, output_dir: str, intercept: bool = False, batch_size: int = 50,
        **source) -> dict:
    """Evaluate, print the report and write ``metrics.json`` / PNGs; returns the report."""
    import keras
    import numpy as np

    import keras_landmarks  # noqa: F401  (registers the custom classes)
    from keras_landmarks import eval as lm_eval
    from keras_landmarks import viz

    model = keras.models.load_model(resolve_model_path(model_path))
    size = model.config.image_size
    train, test = annotated_splits(image_size=size, batch_size=batch_size, **source)
    train_det, train_gt, _ = lm_eval.collect(model.detector, train)
    test_det, test_gt, images = lm_eval.collect(model.detector, test, keep_images=32)
    report = lm_eval.evaluate_points(train_det, train_gt, test_det, test_gt, intercept=intercept)
    pred = report.pop("predictions")
    report.update(model=os.path.abspath(resolve_model_path(model_path)), image_size=size,
                  num_landmarks=model.config.num_landmarks, source=source.get("dataset"))

    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, "metrics.json"), "w") as f:
        json.dump(report, f, indent=2)
    factor = max(1, 128 // size)  # draw on >= 128 px images so markers stay small
    shown, raw = [], []
    for i in range(len(images)):
        big = viz.enlarge(images[i], factor)
        gt, regressed, detected = (viz.enlarge_points(p[i], factor) for p in (test_gt, pred, test_det))
        shown.append(viz.draw_points(viz.draw_points(big, gt, marker="cross"), regressed))
        raw.append(viz.draw_points(big, detected))
    viz.write_png(os.path.join(output_dir, "landmarks.png"), viz.grid(np.stack(shown)))
    viz.write_png(os.path.join(output_dir, "detections.png"), viz.grid(np.stack(raw)))
    _print_report(report, output_dir)
    return report


def _print_report(report: dict, output_dir: str) -> None:
    print(f"\nLandmark regression ({report['num_train']} train / {report['num_test']} test images, "
          f"K={report['num_landmarks']} -> {len(report['per_point_error_percent'])} points)")
    print(f"  error (% of inter-ocular distance): {report['error_percent']:.2f}")
    print(f"  mean-shape baseline:                {report['baseline_error_percent']:.2f}")
    for name, err in report["per_point_error_percent"].items():
        print(f"    {name:<12s} {err:6.2f}")
    print(f"  wrote {output_dir}/metrics.json, landmarks.png, detections.png")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not FLAGS.model:
        raise app.UsageError("--model is required (a .keras file or a training logdir)")
    try:
        model_path = resolve_model_path(FLAGS.model)
        output_dir = FLAGS.output_dir or os.path.join(os.path.dirname(model_path), "eval")
        run(model_path, output_dir, intercept=FLAGS.intercept, batch_size=FLAGS.batch_size,
            dataset=FLAGS.dataset, data_dir=FLAGS.data_dir, csv_path=FLAGS.csv_path,
            points=FLAGS.points, mafl_dir=FLAGS.mafl_dir, num_train=FLAGS.num_train,
            num_test=FLAGS.num_test)
    except (FileNotFoundError, ValueError) as err:
        print(f"evaluate.py: error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    app.run(main)

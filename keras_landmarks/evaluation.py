"""End-to-end evaluation of a saved model: annotated splits -> protocol -> report files.

The protocol itself (regression, errors, baseline) is ``keras_landmarks.eval``; this
module loads a model, runs its detector on an annotated source's ``train`` and ``test``
splits, and writes ``metrics.json``, ``landmarks.png`` (ground truth as crosses,
regressed points as dots) and ``detections.png`` (the detector's own K points).
"""

from __future__ import annotations

import json
import os

import keras
import numpy as np

from keras_landmarks import data, viz
from keras_landmarks import eval as lm_eval
from keras_landmarks.train_callbacks import model_file
from keras_landmarks.model import LandmarkModel  # noqa: F401  (registers the classes for loading)


def resolve_model_path(path: str) -> str:
    """A .keras file, or a logdir containing ``model.keras``."""
    candidate = model_file(path)
    if not os.path.isfile(candidate):
        raise FileNotFoundError(
            f"--model={path}: no model there (expected a .keras file or a training logdir "
            "with model.keras; train one with trainers/train.py)"
        )
    return candidate


def annotated_splits(dataset: str, image_size: int, batch_size: int, data_dir=None, csv_path=None,
                     points=None, mafl_dir=None, num_train=2000, num_test=500):
    """``(train, test)`` annotated datasets of one source at ``image_size``."""
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


def evaluate_saved_model(model_path: str, output_dir: str, intercept: bool = False,
                         batch_size: int = 50, **source) -> dict:
    """Evaluate a saved ``LandmarkModel``, print the report, write ``metrics.json`` and PNGs.

    ``source``: ``dataset`` and its options (``annotated_splits``). Returns the report
    (``eval.evaluate_points`` keys without ``predictions``, plus model facts).
    """
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

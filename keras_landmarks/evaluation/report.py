"""End-to-end evaluation of a saved model: annotated splits -> protocol -> report files.

The protocol itself (regression, errors, baseline) is ``protocol``, the pictures ``pictures``; this
module loads a model, runs its detector on an annotated source's ``train`` and ``test``
splits, and writes ``metrics.json``, ``landmarks.png`` (ground truth as crosses,
regressed points as dots) and ``detections.png`` (the detector's own K points).

Point names and the inter-ocular pair: for ``folder`` they follow the CSV selection
(``points=``, else the header's order), and the first two points are the eyes; for
``synthetic`` and ``celeb_a`` the points are MAFL's (``protocol.MAFL_POINT_NAMES``: eyes
first). All points are pixel ``(x, y)``, 0-based, integer = pixel centre.
"""

from __future__ import annotations

import json
import logging
import os

import keras
from keras_landmarks import data
from keras_landmarks.evaluation import pictures
from keras_landmarks.evaluation import protocol as lm_eval
from keras_landmarks.model import LandmarkModel, model_file  # noqa: F401  (registers the classes for loading)

logger = logging.getLogger("keras_landmarks.evaluation")


def resolve_model_path(path: str) -> str:
    """A .keras file, or a logdir containing ``model.keras``."""
    candidate = model_file(path)
    if not os.path.isfile(candidate):
        raise FileNotFoundError(
            f"--model={path}: no model there (expected a .keras file or a training logdir "
            "with model.keras; train one with landmarks-train or trainers/train.py)"
        )
    return candidate


def annotated_splits(dataset: str, image_size: int, batch_size: int, data_dir=None, csv_path=None,
                     points=None, mafl_dir=None, num_train=2000, num_test=500):
    """``(train, test)`` annotated datasets of one source at ``image_size``.

    ``points``: ``folder`` only, the CSV's point names in order, eyes first. Raises
    ``ValueError`` for options the source does not read (``mafl_dir`` without ``celeb_a``,
    ``csv_path`` / ``points`` without ``folder``).
    """
    if mafl_dir and dataset != "celeb_a":
        raise ValueError(f"--mafl_dir is for --dataset=celeb_a (the MAFL splits), not {dataset!r}")
    if (csv_path or points) and dataset != "folder":
        raise ValueError(f"--csv_path / --points are for --dataset=folder, not {dataset!r}")
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
    (``protocol.evaluate_points`` keys without ``predictions``, plus model facts):
    ``per_point_error_percent`` is keyed by the source's point names (``folder``: the
    ``points`` given, or the CSV header's), normalised by the distance of the first two
    (``eyes``).
    """
    file = resolve_model_path(model_path)
    model = keras.models.load_model(file)
    size = model.config.image_size
    train, test = annotated_splits(image_size=size, batch_size=batch_size, **source)
    train_det, train_gt, _ = lm_eval.collect(model.detector, train)
    test_det, test_gt, images = lm_eval.collect(model.detector, test, keep_images=32)
    names = getattr(test, "point_names", None) or lm_eval.MAFL_POINT_NAMES  # folder: its CSV's
    report = lm_eval.evaluate_points(train_det, train_gt, test_det, test_gt, intercept=intercept,
                                     point_names=names, eyes=(0, 1))
    pred = report.pop("predictions")
    report.update(model=os.path.abspath(file), image_size=size,
                  num_landmarks=model.config.num_landmarks, source=source.get("dataset"))

    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, "metrics.json"), "w") as f:
        json.dump(report, f, indent=2)
    pictures.write_evaluation_pictures(output_dir, images, test_gt, pred, test_det)
    _print_report(report, output_dir)
    return report


def _print_report(report: dict, output_dir: str) -> None:
    lines = [f"\nLandmark regression ({report['num_train']} train / {report['num_test']} test images, "
             f"K={report['num_landmarks']} -> {len(report['per_point_error_percent'])} points)",
             f"  error (% of inter-ocular distance): {report['error_percent']:.2f}",
             f"  mean-shape baseline:                {report['baseline_error_percent']:.2f}",
             "  eyes (inter-ocular pair):           {} to {}".format(*report["eyes"])]
    lines += [f"    {name:<12s} {err:6.2f}" for name, err in report["per_point_error_percent"].items()]
    lines.append(f"  wrote {output_dir}/metrics.json, landmarks.png, detections.png")
    logger.info("%s", "\n".join(lines))

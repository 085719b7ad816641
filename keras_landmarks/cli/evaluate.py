r"""Evaluate a trained detector with the paper's protocol (linear regression to labels).

    landmarks-evaluate --model=runs/demo --dataset=synthetic
    landmarks-evaluate --model=runs/faces/model.keras --dataset=folder \
        --data_dir=../shared/data/ytfaces --points=le,re,n,lm,rm
    landmarks-evaluate --model=faces --dataset=folder --data_dir=my_faces   # the shipped detector
    landmarks-evaluate --model=runs/celeba --dataset=celeb_a --mafl_dir=/data/MAFL

(``python trainers/evaluate.py`` is the same program.)

Fits the regressor on the ``train`` split, measures on ``test``, prints the
inter-ocular-normalised error (%), per-point errors and the mean-shape baseline, and
writes ``metrics.json`` and ``landmarks.png`` (test images: ground truth as crosses,
regressed points as dots; the detector's own K points in ``detections.png``).
The eyes are the first two points: of ``--points`` (or the CSV header) for ``folder``, MAFL's
left and right eye for ``synthetic`` and ``celeb_a``; per-point errors carry the same names.
"""

from __future__ import annotations

import os
import sys

from absl import flags

from keras_landmarks import pretrained
from keras_landmarks.cli._flags import (check_mafl_dir, define_enum_with_aliases, import_tensorflow, require_model,
                                        run_main)
from keras_landmarks.data import ANNOTATED_SOURCES, source_name

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "A .keras LandmarkModel, a training logdir holding model.keras, or a "
                    "pretrained detector's name (faces).")
# Required: the labels define what is measured, and a default (toy faces) would score a model
# of real faces on the wrong data without a word.
define_enum_with_aliases("dataset", None, ANNOTATED_SOURCES, "Annotated source (required): folder = "
                         "images + landmarks.csv (--data_dir), celeb_a = MAFL (--mafl_dir), "
                         "synthetic = generated toy faces.")
flags.DEFINE_string("data_dir", None, "Folder of the annotated images (folder) or TFDS data_dir (celeb_a).")
flags.DEFINE_string("csv_path", None, "Landmarks CSV for --dataset=folder (default <data_dir>/landmarks.csv).")
flags.DEFINE_list("points", None, "--dataset=folder: the CSV's point names to evaluate, in order; "
                  "the first two are the eyes (their distance normalises the errors) and the "
                  "per-point errors are keyed by these names (e.g. le,re,n,lm,rm). Default: "
                  "every point of the CSV header, in its order (eyes first).")
flags.DEFINE_string("mafl_dir", None, "celeb_a only: folder with MAFL training.txt/testing.txt.")
flags.DEFINE_integer("num_train", 2000, "Synthetic: annotated training faces for the regressor.")
flags.DEFINE_integer("num_test", 500, "Synthetic: held-out test faces.")
flags.DEFINE_integer("batch_size", 50, "Inference batch size.")
flags.DEFINE_bool("intercept", False, "Fit the regressor with an intercept (official: no).")
flags.DEFINE_string("output_dir", None, "Where to write metrics.json and PNGs (default <model dir>/eval; "
                    "eval_<name> for a pretrained detector).")

flags.register_multi_flags_validator(["dataset", "mafl_dir"], check_mafl_dir, message=None)


@flags.multi_flags_validator(["dataset", "csv_path", "points"], message=None)
def _check_folder_flags(values) -> bool:
    name, points = values["dataset"] and source_name(values["dataset"], warn=False), values["points"]
    if (values["csv_path"] or points is not None) and name != "folder":
        raise flags.ValidationError(f"--csv_path / --points are for --dataset=folder, not "
                                    f"--dataset={name} (its points are MAFL's)")
    if points is not None and (len(points) < 2 or len(set(points)) != len(points)
                               or not all(points)):
        raise flags.ValidationError(f"--points={','.join(points)}: need at least two distinct "
                                    "names, the eyes first")
    return True


def main(argv):
    require_model(argv)
    dataset = source_name(FLAGS.dataset)
    import_tensorflow()
    from keras_landmarks import evaluation  # noqa: PLC0415 (TensorFlow)

    try:
        shipped = pretrained.resolve_model(FLAGS.model)
        model_path = evaluation.resolve_model_path(shipped)
        # A shipped detector's folder is the installed package's: write beside the user instead.
        default_dir = f"eval_{FLAGS.model}" if shipped != FLAGS.model else os.path.join(os.path.dirname(model_path), "eval")
        output_dir = FLAGS.output_dir or default_dir
        evaluation.evaluate_saved_model(
            model_path, output_dir, intercept=FLAGS.intercept, batch_size=FLAGS.batch_size,
            dataset=dataset, data_dir=FLAGS.data_dir, csv_path=FLAGS.csv_path,
            points=FLAGS.points, mafl_dir=FLAGS.mafl_dir and os.path.expanduser(FLAGS.mafl_dir),
            num_train=FLAGS.num_train, num_test=FLAGS.num_test)
    except (FileNotFoundError, ValueError) as err:
        print(f"evaluate.py: error: {err}", file=sys.stderr)
        sys.exit(2)


def run() -> None:
    """Console script ``landmarks-evaluate`` (and ``python trainers/evaluate.py``)."""
    flags.mark_flag_as_required("dataset")
    run_main(main, "evaluate.py", __name__)


if __name__ == "__main__":
    run()

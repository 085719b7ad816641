r"""Label-free diagnostics against the labelled error, over saved models of real runs.

For each ``--models`` entry (``<name>=<model.keras>``, or a folder of ``<step>.keras``
snapshots, every one of which becomes a row) measures, on ``--data_dir`` (an annotated
folder with a ``split`` column, e.g. ``../shared/data/helen``):

* the labelled error of the paper's protocol (regressor on the train split, error on the
  test split) and the mean-shape baseline; their ratio ``x base`` (< 1: learned something);
* the label-free diagnostics of ``evaluation.diagnostics`` on a batch of the train split's
  training pairs (the model's own warps): the equivariance error and its ratio to the
  warp's own motion under the training target warp (``equi_r``) and under the larger
  ``diagnostics.CONSISTENCY_WARP`` (``cons_r``), the keypoint spread, the renderer's
  reliance, and the verdict.

    .venv/bin/python bench/diagnostics_table.py --data_dir=../shared/data/helen \
        --models rf32=/work/runs/helen_rf/snaps r64=/work/runs/helen_64/model.keras

Prints one row per model: the table of README / docs "Is my run learning?".
"""

from __future__ import annotations

import argparse
import glob
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from keras_landmarks import data, evaluation  # noqa: E402
from keras_landmarks.data import landmarks_csv  # noqa: E402
from keras_landmarks.evaluation import diagnostics  # noqa: E402
from keras_landmarks.evaluation import protocol as lm_eval  # noqa: E402


def _entries(specs):
    for spec in specs:
        name, _, path = spec.partition("=")
        if os.path.isdir(path):
            snaps = sorted(glob.glob(os.path.join(path, "*.keras")),
                           key=lambda p: int(os.path.splitext(os.path.basename(p))[0]))
            for p in snaps:
                yield f"{name}@{os.path.splitext(os.path.basename(p))[0]}", p
        else:
            yield name, path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data_dir", required=True)
    p.add_argument("--points", default="le,re,n,lm,rm")
    p.add_argument("--models", nargs="+", required=True, help="name=<.keras or folder of <step>.keras>")
    p.add_argument("--num_images", type=int, default=64)
    p.add_argument("--every", type=int, default=1, help="keep every n-th snapshot of a folder")
    a = p.parse_args()
    splits_by_size, pairs_by_key = {}, {}
    train_dir = landmarks_csv.split_folder(a.data_dir, "train")
    print(f"{'model':<22} {'error %':>8} {'base %':>7} {'x base':>6} {'equi_px':>7} {'equi_r':>6} "
          f"{'cons_px':>7} {'cons_r':>6} {'shape_r':>7} {'patch':>6} {'spread':>6} {'relian':>6}  verdict")
    entries = list(_entries(a.models))
    for i, (name, path) in enumerate(entries):
        if "@" in name and i % a.every and i != len(entries) - 1:
            continue
        model = keras.models.load_model(path)
        cfg = model.config
        size = cfg.image_size
        if size not in splits_by_size:
            splits_by_size[size] = evaluation.annotated_splits(
                "folder", image_size=size, batch_size=250, data_dir=a.data_dir, points=tuple(a.points.split(",")))
        key = (size, cfg.target_warp, cfg.source_warp)
        if key not in pairs_by_key:
            pairs = data.training_pairs("folder", data_dir=train_dir, image_size=size,
                                        batch_size=a.num_images, seed=1234, target_warp=cfg.target_warp,
                                        source_warp=cfg.source_warp)
            pairs_by_key[key] = {k: v for k, v in next(iter(pairs.take(1))).items()
                                 if k in ("image", "future_image", "mask")}
        (tr_det, tr_gt, _), (te_det, te_gt, _) = (lm_eval.collect(model.detector, s) for s in splits_by_size[size])
        r = lm_eval.evaluate_points(tr_det, tr_gt, te_det, te_gt)
        d = diagnostics.diagnose(model, pairs_by_key[key], seed=(7, 1))
        ratio = r["error_percent"] / r["baseline_error_percent"]
        print(f"{name:<22} {r['error_percent']:>8.2f} {r['baseline_error_percent']:>7.2f} {ratio:>6.2f} "
              f"{d['equivariance_px']:>7.2f} {d['equivariance_ratio']:>6.2f} {d['consistency_px']:>7.2f} "
              f"{d['consistency_ratio']:>6.2f} {d['shape_ratio']:>7.2f} {d['patch_gain']:>6.3f} {d['mean_spread_px']:>6.2f} {d['reliance']:>6.2f}  "
              f"{d['verdict']}", flush=True)


if __name__ == "__main__":
    main()

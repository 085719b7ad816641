"""Pack a trained model as a shipped detector (``keras_landmarks.pretrained``).

``build(model_path, name, labelled_dirs, ...)`` writes ``keras_landmarks/pretrained/<name>/``:
the ``.keras`` model, TFLite float32 and int8 detectors (int8 calibrated on the labelled
sets' train images), and ``card.json``: the point map (keypoints -> the CSVs' named points,
least squares with an intercept on the train splits of every labelled set together), the
protocol's test error on each set (the paper's protocol, no intercept, per set; plus the
point map's own error), the outputs on ``pretrained.reference_images`` of the Keras model
and of both TFLite files, their sizes, and whatever the caller records about the training
(``training``: command, steps, time, machine, date).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shutil

import keras
import numpy as np

from keras_landmarks import geometry, pretrained
from keras_landmarks.data import landmarks_csv
from keras_landmarks.evaluation import protocol, report
from keras_landmarks.export import to_tflite

POINTS = ("le", "re", "n", "lm", "rm")  # the CSV names of the MAFL-style points


def _detect(detector, images: np.ndarray, batch: int = 256) -> np.ndarray:
    """``[N, K, 2]`` pixels of ``images`` ``[N, S, S, 3]``."""
    size = images.shape[1]
    out = [keras.ops.convert_to_numpy(detector(images[i:i + batch].astype(np.float32), training=False)["keypoints"])
           for i in range(0, len(images), batch)]
    return np.asarray(geometry.normalized_to_pixels(np.concatenate(out), size), np.float64)


def _labelled_set(detector, data_dir: str, size: int) -> dict:
    """``{"train": (images, points, detected), "test": (...)}`` of one annotated folder: images
    ``[N, S, S, 3]`` uint8 (the protocol's images rounded: what a deployed detector receives),
    labelled points ``[N, 5, 2]`` and the detector's ``[N, K, 2]``, both ``(x, y)`` pixels of the
    ``S x S`` crop. Read and detected once, for every use below."""
    out = {}
    splits = report.annotated_splits("folder", image_size=size, batch_size=250, data_dir=data_dir, points=POINTS)
    for split, ds in zip(("train", "test"), splits):
        images, points = [], []
        for batch in ds:
            images.append(np.clip(np.round(np.asarray(batch["image"])), 0, 255).astype(np.uint8))
            points.append(np.asarray(batch["landmarks"]))
        images = np.concatenate(images)
        out[split] = (images, np.concatenate(points).astype(np.float64), _detect(detector, images))
    return out


def _evaluate(sets: dict) -> tuple[dict, protocol.Regressor]:
    """Each set's protocol error and the point map (intercept, all train splits) with its error."""
    evaluation = {}
    for set_name, splits in sets.items():
        (_, tr_gt, tr_det), (te_im, te_gt, te_det) = splits["train"], splits["test"]
        r = protocol.evaluate_points(tr_det, tr_gt, te_det, te_gt)
        evaluation[set_name] = {k: r[k] for k in ("error_percent", "baseline_error_percent")}
        evaluation[set_name]["test_images"] = len(te_im)
    regressor = protocol.fit_regressor(np.concatenate([s["train"][2] for s in sets.values()]),
                                       np.concatenate([s["train"][1] for s in sets.values()]), intercept=True)
    for set_name, splits in sets.items():
        _, te_gt, te_det = splits["test"]
        pred = regressor.predict(te_det)
        evaluation[set_name]["point_map_error_percent"] = float(100.0 * protocol.normalized_errors(pred, te_gt).mean())
    return evaluation, regressor


def _write_tflite(detector, folder: str, sets: dict, calibration_images: int) -> tuple[dict, dict]:
    """Both TFLite files in ``folder``; ``(recorded reference outputs, gap to Keras on the test images)``."""
    calib = np.concatenate([s["train"][0] for s in sets.values()])
    calib = calib[np.random.default_rng(0).permutation(len(calib))[:calibration_images]]
    size = calib.shape[1]
    refs = pretrained.reference_images(size)
    test_images = np.concatenate([s["test"][0] for s in sets.values()])
    keras_test = np.concatenate([s["test"][2] for s in sets.values()])
    recorded, gaps = {"keras": _detect(detector, refs).tolist()}, {}
    for quantization, file in pretrained.TFLITE_FILES.items():
        flat = to_tflite.convert(detector, quantization="none" if quantization == "float32" else quantization,
                                 representative_images=lambda: (im[None] for im in calib))
        with open(os.path.join(folder, file), "wb") as f:
            f.write(flat)
        runner = to_tflite.load(os.path.join(folder, file), num_threads=1)
        recorded[f"tflite_{quantization}"] = np.asarray(runner(refs)["keypoints"], np.float64).tolist()
        got = np.concatenate([np.asarray(runner(test_images[i:i + 64])["keypoints"], np.float64)
                              for i in range(0, len(test_images), 64)])
        gap = np.linalg.norm(got - keras_test, axis=-1)
        gaps[quantization] = {"mean_px": float(gap.mean()), "max_px": float(gap.max())}
    return recorded, gaps


def build(model_path: str, name: str, labelled_dirs: list[str], training: dict | None = None,
          out_root: str = pretrained.HOME, calibration_images: int = 300) -> dict:
    """Write the shipped detector ``name`` from the ``LandmarkModel`` at ``model_path``; the card."""
    import keras_landmarks.model  # noqa: F401, PLC0415 (registers LandmarkModel)

    model = keras.models.load_model(model_path)
    detector, size = model.detector, model.config.image_size
    sets = {os.path.basename(os.path.normpath(d)): _labelled_set(detector, d, size) for d in labelled_dirs}
    evaluation, regressor = _evaluate(sets)
    folder = os.path.join(out_root, name)
    tmp = folder + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    model.save(os.path.join(tmp, pretrained.MODEL_FILE))
    recorded, gaps = _write_tflite(detector, tmp, sets, calibration_images)
    card = {
        "name": name, "image_size": size, "num_landmarks": model.config.num_landmarks,
        "config": model.config.to_dict(), "training": training or {}, "evaluation": evaluation,
        "tflite_vs_keras_on_test_images": gaps,
        "point_map": {"names": list(protocol.MAFL_POINT_NAMES), "weights": regressor.weights.tolist(),
                      "fitted_on": {k: len(v["train"][0]) for k, v in sets.items()}},
        "reference_outputs": recorded,
        "built": {"date": datetime.date.today().isoformat(), "machine": platform.processor() or platform.machine(),
                  "keras": keras.__version__},
        # Sizes of the other files (the card's own size would change as it is written).
        "files_bytes": {f: os.path.getsize(os.path.join(tmp, f)) for f in sorted(os.listdir(tmp))},
    }
    with open(os.path.join(tmp, pretrained.CARD), "w") as f:
        json.dump(card, f, indent=1)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    pretrained.card.cache_clear()
    return card


__all__ = ["POINTS", "build"]

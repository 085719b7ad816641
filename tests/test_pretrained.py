"""The shipped detectors (keras_landmarks.pretrained): the files load, give the outputs their
card recorded at build time, TFLite matches Keras, the point map and the photo path are
right, the three CLIs take ``--model=faces``, and ``build`` packs a model."""

import csv
import json
import os
import subprocess
import sys

import cv2
import keras
import numpy as np
import pytest

from keras_landmarks import LandmarkModel, geometry, pretrained
from keras_landmarks.config import LandmarkConfig
from keras_landmarks.data.images import fit_to_square

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = pretrained.available()


def test_the_package_ships_the_faces_detector_under_10_mb():
    assert "faces" in SHIPPED
    folder = os.path.dirname(pretrained.path("faces"))
    files = {f: os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder)}
    assert {"model.keras", "card.json", *pretrained.TFLITE_FILES.values()} <= set(files)
    assert sum(files.values()) < 10 * 2**20, files


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_files_give_the_outputs_recorded_at_build_time(name):
    card = pretrained.card(name)
    det = pretrained.load(name)
    refs = pretrained.reference_images(det.image_size)
    recorded = {k: np.asarray(v) for k, v in card["reference_outputs"].items()}
    np.testing.assert_allclose(det.keypoints(refs), recorded["keras"], atol=1e-3)
    from keras_landmarks.export import to_tflite

    for quantization, file in pretrained.TFLITE_FILES.items():
        got = to_tflite.load(pretrained.path(name, file), num_threads=1)(refs)["keypoints"]
        np.testing.assert_allclose(got, recorded[f"tflite_{quantization}"], atol=1e-3)
    # float32 TFLite is the Keras model; int8 is within a fraction of a pixel of it.
    keras_pts = det.keypoints(refs)
    f32 = to_tflite.load(pretrained.path(name, pretrained.TFLITE_FILES["float32"]), num_threads=1)(refs)
    np.testing.assert_allclose(f32["keypoints"], keras_pts, atol=1e-3)
    int8 = to_tflite.load(pretrained.path(name, pretrained.TFLITE_FILES["int8"]), num_threads=1)(refs)
    assert np.abs(int8["keypoints"] - keras_pts).max() < 0.1 * det.image_size


def test_the_point_map_is_the_affine_least_squares_map():
    rng = np.random.default_rng(0)
    k, p = 4, 3
    weights = rng.normal(size=(2 * k + 1, 2 * p))
    kp = rng.normal(size=(6, k, 2))
    got = pretrained.PointMap(weights, ["a", "b", "c"])(kp)
    for b in range(6):  # one image at a time, written out
        flat = np.append(kp[b].reshape(-1), 1.0)
        np.testing.assert_allclose(got[b], (flat @ weights).reshape(p, 2))
    with pytest.raises(ValueError, match="takes 4 keypoints"):
        pretrained.PointMap(weights, ["a", "b", "c"])(kp[:, :3])


def test_predict_maps_points_back_to_photos_of_any_size():
    det = pretrained.load("faces")
    rng = np.random.default_rng(1)
    photos = [rng.integers(0, 256, (90, 140, 3), dtype=np.uint8), rng.integers(0, 256, (70, 70, 3), dtype=np.uint8)]
    out = det.predict([photos[0]]), det.predict([photos[1]], fit="pad")
    for photo, fit, got in zip(photos, ("crop", "pad"), out):
        square, transform = fit_to_square(photo, det.image_size, fit)
        kp = det.keypoints(square[None])
        np.testing.assert_allclose(got["keypoints"][0], transform.to_original(kp[0]), atol=1e-3)
        np.testing.assert_allclose(got["points"][0], transform.to_original(det.point_map(kp)[0]), atol=1e-3)
        assert got["points"].shape == (1, len(det.point_names), 2)


def test_unknown_names_are_clear_errors_and_paths_pass_through(tmp_path):
    with pytest.raises(ValueError, match="no pretrained detector 'hands'.*faces"):
        pretrained.load("hands")
    assert pretrained.resolve_model(str(tmp_path)) == str(tmp_path)  # an existing path wins
    assert pretrained.resolve_model("no/such/model.keras") == "no/such/model.keras"
    assert pretrained.resolve_model("faces") == pretrained.path("faces")


def _run(script, *args, cwd):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "trainers", script), *args], capture_output=True,
                          text=True, timeout=600, cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_predict_cli_writes_named_points_of_the_shipped_detector(tmp_path):
    photo = np.random.default_rng(2).integers(0, 256, (80, 100, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "photo.jpg"), photo)
    _run("predict.py", "--model=faces", "photo.jpg", cwd=tmp_path)
    rows = list(csv.DictReader(open(tmp_path / "landmarks_output" / "keypoints.csv")))
    det = pretrained.load("faces")
    assert [r["landmark"] for r in rows] == list(det.point_names)
    decoded = cv2.cvtColor(cv2.imread(str(tmp_path / "photo.jpg")), cv2.COLOR_BGR2RGB)  # the JPEG as read back
    want = det.predict([decoded])["points"][0]
    got = np.array([[float(r["x"]), float(r["y"])] for r in rows])
    np.testing.assert_allclose(got, want, atol=2e-3)
    assert (tmp_path / "landmarks_output" / "photo.jpg.png").is_file()


def _annotated_folder(root, size=32, n_train=48, n_test=16):
    """Toy faces with their 5 MAFL-style points as an annotated folder (``split`` column)."""
    from keras_landmarks import data

    os.makedirs(root / "images")
    header = ["split", "file"] + [f"{p}_{a}" for p in ("le", "re", "n", "lm", "rm") for a in "xy"]
    rows = []
    for split, n in (("train", n_train), ("test", n_test)):
        batch = next(iter(data.annotated("synthetic", split=split, image_size=size, batch_size=n, num_images=n)))
        for i, (im, lm) in enumerate(zip(np.asarray(batch["image"]), np.asarray(batch["landmarks"]))):
            name = f"images/{split}_{i:03d}.png"
            cv2.imwrite(str(root / name), cv2.cvtColor(np.clip(im, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR))
            rows.append([split, name] + [f"{v:.3f}" for v in lm.reshape(-1)])
    with open(root / "landmarks.csv", "w", newline="") as f:
        csv.writer(f).writerows([header, *rows])


def test_build_packs_a_model_whose_card_matches_its_files(tmp_path):
    from keras_landmarks.apps.build_pretrained import build

    _annotated_folder(tmp_path / "set")
    cfg = LandmarkConfig(image_size=32, width=4, num_landmarks=4, heatmap_size=8, perceptual="l2")
    model = LandmarkModel(cfg)
    x = np.zeros((1, 32, 32, 3), np.float32)
    model({"image": x, "future_image": x})
    model.save(tmp_path / "m.keras")
    card = build(str(tmp_path / "m.keras"), "tiny", [str(tmp_path / "set")], training={"steps": 0},
                       out_root=str(tmp_path / "out"), calibration_images=16)
    folder = tmp_path / "out" / "tiny"
    assert json.loads((folder / "card.json").read_text())["files_bytes"] == card["files_bytes"]
    assert card["evaluation"]["set"]["test_images"] == 16
    assert card["point_map"]["fitted_on"] == {"set": 48}
    # The recorded Keras outputs are the saved model's, in pixels of the S x S input.
    saved = keras.models.load_model(folder / "model.keras")
    refs = pretrained.reference_images(32)
    kp = geometry.normalized_to_pixels(keras.ops.convert_to_numpy(saved.detector(refs.astype("float32"))["keypoints"]), 32)
    np.testing.assert_allclose(card["reference_outputs"]["keras"], kp, atol=1e-4)
    # The point map is the least-squares map with an intercept from train keypoints to the labels.
    assert np.asarray(card["point_map"]["weights"]).shape == (2 * 4 + 1, 2 * 5)


def test_evaluate_and_export_clis_take_the_shipped_detector(tmp_path):
    k = pretrained.card("faces")["num_landmarks"]  # the regression needs more than 2K train images
    _annotated_folder(tmp_path / "set", size=64, n_train=2 * k + 10, n_test=12)
    _run("evaluate.py", "--model=faces", "--dataset=folder", f"--data_dir={tmp_path / 'set'}",
         "--points=le,re,n,lm,rm", cwd=tmp_path)
    metrics = json.loads((tmp_path / "eval_faces" / "metrics.json").read_text())
    # The protocol's error, recomputed here from the shipped detector on the same images.
    from keras_landmarks import evaluation
    from keras_landmarks.evaluation import protocol

    tr, te = evaluation.annotated_splits("folder", image_size=64, batch_size=64, data_dir=str(tmp_path / "set"),
                                         points=("le", "re", "n", "lm", "rm"))
    det = pretrained.load("faces").detector
    (a, ag, _), (b, bg, _) = protocol.collect(det, tr), protocol.collect(det, te)
    assert metrics["error_percent"] == pytest.approx(protocol.evaluate_points(a, ag, b, bg)["error_percent"], rel=1e-4)
    _run("export.py", "--model=faces", f"--output_dir={tmp_path / 'exp'}", "--formats=tflite",
         "--tflite_quantization=none", "--parity_data=synthetic", cwd=tmp_path)
    from keras_landmarks.export import to_tflite

    files = [f for f in os.listdir(tmp_path / "exp") if f.endswith(".tflite")]
    assert len(files) == 1
    refs = pretrained.reference_images(64)
    got = to_tflite.load(str(tmp_path / "exp" / files[0]), num_threads=1)(refs)["keypoints"]
    np.testing.assert_allclose(got, pretrained.card("faces")["reference_outputs"]["keras"], atol=1e-3)

"""trainers/evaluate.py end to end on generated data (subprocess, as a user runs it)."""

import json
import os
import subprocess
import sys

import cv2
import keras
import numpy as np
import pytest
from protocol_check import protocol_errors, synthetic_split

from keras_landmarks import LandmarkConfig, LandmarkModel, data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "trainers", "evaluate.py")
S = 32


def _run(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    path = tmp_path_factory.mktemp("run")
    cfg = LandmarkConfig(image_size=S, width=4, num_landmarks=4, heatmap_size=8, perceptual="l2")
    LandmarkModel(cfg).save(str(path / "model.keras"))
    return path


def test_evaluate_synthetic_writes_report_and_pictures(logdir):
    out = logdir / "eval"
    proc = _run(f"--model={logdir}", "--dataset=synthetic", "--num_train=60", "--num_test=20",
                f"--output_dir={out}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((out / "metrics.json").read_text())
    assert report["num_train"] == 60 and report["num_test"] == 20 and report["num_landmarks"] == 4
    # The baseline depends only on the annotations: recompute it independently.
    def points(split, n):
        ds = data.annotated("synthetic", split=split, image_size=S, batch_size=25, num_images=n)
        return np.concatenate([b["landmarks"].numpy() for b in ds]).astype(np.float64)
    train, test = points("train", 60), points("test", 20)
    iod = np.linalg.norm(test[:, 0] - test[:, 1], axis=-1)
    want = 100 * np.mean(np.linalg.norm(train.mean(0)[None] - test, axis=-1) / iod[:, None])
    assert report["baseline_error_percent"] == pytest.approx(want, rel=1e-5)
    # The errors too, recomputed with numpy from the saved model's detector (protocol_check).
    model = keras.models.load_model(str(logdir / "model.keras"))
    per_point, error = protocol_errors(model.detector, synthetic_split("train", 60, S), synthetic_split("test", 20, S))
    assert report["error_percent"] == pytest.approx(error, rel=1e-4)
    np.testing.assert_allclose(list(report["per_point_error_percent"].values()), per_point, rtol=1e-4)
    grid = cv2.imread(str(out / "landmarks.png"))
    assert grid is not None and grid.shape[0] >= 128  # drawn on enlarged (>= 128 px) faces
    assert "error (% of inter-ocular distance)" in proc.stdout


def test_missing_model_is_one_clear_line(tmp_path):
    proc = _run(f"--model={tmp_path / 'nothing'}", "--dataset=synthetic")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "no model there" in proc.stderr and "nothing" in proc.stderr


def _folder_set(root, num_train=12, num_test=6):
    """S x S noise images (so the crop/resize is the identity) and a CSV with 4 points;
    returns ``{split: [N, 4, 2]}`` of the CSV's (x, y), points in header order le, re, n, m."""
    rng = np.random.default_rng(7)
    rows, points = [], {"train": [], "test": []}
    for i, split in enumerate(["train"] * num_train + ["test"] * num_test):
        name = f"faces/{i:02d}.png"
        os.makedirs(root / "faces", exist_ok=True)
        cv2.imwrite(str(root / name), rng.integers(0, 255, (S, S, 3), np.uint8))
        pts = rng.uniform(3, S - 4, (4, 2)).round(2)
        points[split].append(pts)
        rows.append(",".join([name, split] + [f"{v:.2f}" for v in pts.ravel()]))
    (root / "landmarks.csv").write_text("file,split,le_x,le_y,re_x,re_y,n_x,n_y,m_x,m_y\n"
                                        + "\n".join(rows) + "\n")
    return {k: np.array(v) for k, v in points.items()}


def _baseline(train, test, a, b):
    iod = np.linalg.norm(test[:, a] - test[:, b], axis=-1)
    return 100 * np.mean(np.linalg.norm(train.mean(0)[None] - test, axis=-1) / iod[:, None])


def test_evaluate_folder_names_and_eyes_follow_points(logdir, tmp_path):
    points = _folder_set(tmp_path)
    out = tmp_path / "eval"
    proc = _run(f"--model={logdir}", "--dataset=folder", f"--data_dir={tmp_path}",
                "--points=re,n,le", f"--output_dir={out}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((out / "metrics.json").read_text())
    assert list(report["per_point_error_percent"]) == ["re", "n", "le"]
    assert report["eyes"] == ["re", "n"] and "inter-ocular pair):           re to n" in proc.stdout
    # The eyes are the first two given: re (column 1) and n (column 2) of the CSV.
    train, test = points["train"][:, [1, 2, 0]], points["test"][:, [1, 2, 0]]
    assert report["baseline_error_percent"] == pytest.approx(_baseline(train, test, 0, 1), rel=1e-5)
    images = {split: np.stack([cv2.imread(str(tmp_path / f"faces/{i:02d}.png"))[..., ::-1] for i in ids])
              .astype("float32") for split, ids in (("train", range(12)), ("test", range(12, 18)))}
    model = keras.models.load_model(str(logdir / "model.keras"))
    per_point, error = protocol_errors(model.detector, (images["train"], train), (images["test"], test))
    # 12 training images for 8 unknowns: the fit magnifies float32 noise in the points to ~1e-4.
    assert report["error_percent"] == pytest.approx(error, rel=1e-3)
    np.testing.assert_allclose(list(report["per_point_error_percent"].values()), per_point, rtol=1e-3)

    from keras_landmarks import evaluation  # without --points: the header's names and order

    report = evaluation.evaluate_saved_model(str(logdir / "model.keras"), str(tmp_path / "e2"),
                                             dataset="folder", data_dir=str(tmp_path))
    assert list(report["per_point_error_percent"]) == ["le", "re", "n", "m"]
    assert report["eyes"] == ["le", "re"]
    want = _baseline(points["train"], points["test"], 0, 1)
    assert report["baseline_error_percent"] == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize("args, message", [
    (["--dataset=synthetic", "--mafl_dir=DIR"], "--mafl_dir is for --dataset=celeb_a"),
    (["--dataset=folder", "--data_dir=DIR", "--mafl_dir=DIR"], "--mafl_dir is for --dataset=celeb_a"),
    (["--dataset=synthetic", "--points=le,re"], "--points are for --dataset=folder"),
    (["--dataset=folder", "--data_dir=DIR", "--points=le"], "need at least two distinct names"),
])
def test_flags_the_source_does_not_read_are_one_clear_error(tmp_path, args, message):
    proc = _run(f"--model={tmp_path}", *[a.replace("DIR", str(tmp_path)) for a in args])
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("evaluate.py: error: ") and message in lines[0]


def test_dataset_is_required_and_the_old_folder_name_still_works(tmp_path):
    """No default source (a model of real faces would be scored on toy faces without a word);
    ``image_folder``, the trainer's old name of the folder source, is ``folder`` here too."""
    proc = _run(f"--model={tmp_path / 'nothing'}")
    assert proc.returncode == 2 and "--dataset" in proc.stderr and "no model there" not in proc.stderr
    proc = _run(f"--model={tmp_path / 'nothing'}", "--dataset=image_folder", f"--data_dir={tmp_path}",
                "--points=le,re")  # accepted as folder: --points is a folder flag
    assert proc.returncode == 2 and "no model there" in proc.stderr, proc.stderr
    assert proc.stdout.count("deprecated") == 1 and "'folder'" in proc.stdout, proc.stdout

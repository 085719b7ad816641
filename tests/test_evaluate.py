"""trainers/evaluate.py end to end on generated data (subprocess, as a user runs it)."""

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

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
    proc = _run(f"--model={logdir}", "--num_train=60", "--num_test=20", f"--output_dir={out}")
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
    per_point = report["per_point_error_percent"]
    assert np.mean(list(per_point.values())) == pytest.approx(report["error_percent"], rel=1e-6)
    grid = cv2.imread(str(out / "landmarks.png"))
    assert grid is not None and grid.shape[0] >= 128  # drawn on enlarged (>= 128 px) faces
    assert "error (% of inter-ocular distance)" in proc.stdout


def test_missing_model_is_one_clear_line(tmp_path):
    proc = _run(f"--model={tmp_path / 'nothing'}")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "no model there" in proc.stderr and "nothing" in proc.stderr

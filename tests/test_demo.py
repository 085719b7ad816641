"""trainers/demo.py (``make demo``) end to end with a tiny model and budget (subprocess)."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from protocol_check import protocol_errors, synthetic_split

from keras_landmarks import evaluation

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "trainers", "demo.py")


def test_demo_trains_within_its_budget_evaluates_and_reports(tmp_path):
    logdir = tmp_path / "demo"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    # A time budget below one step's time: training stops after its first step (of a
    # 1,000-step cap) and saves it; evaluation and the report follow.
    proc = subprocess.run(
        [sys.executable, SCRIPT, f"--logdir={logdir}", "--steps=1000", "--max_minutes=1e-9",
         "--image_size=32", "--width=4", "--num_landmarks=4", "--batch_size=4",
         "--num_train=40", "--num_test=20", "--noexport", "--verbose=0"],
        capture_output=True, text=True, timeout=600, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads((logdir / "metrics.json").read_text())
    assert metrics["num_train"] == 40 and metrics["num_test"] == 20
    assert json.loads((logdir / "timings.json").read_text())["steps"] == 1
    model = keras.saving.load_model(str(logdir / "model.keras"))
    assert int(model.optimizer.iterations.numpy()) == 1
    # The reported errors are the saved detector's, recomputed with numpy (protocol_check).
    per_point, error = protocol_errors(model.detector, synthetic_split("train", 40, 32), synthetic_split("test", 20, 32))
    assert metrics["error_percent"] == pytest.approx(error, rel=1e-4)
    np.testing.assert_allclose(list(metrics["per_point_error_percent"].values()), per_point, rtol=1e-4)
    report = (logdir / "REPORT.md").read_text()
    assert "**1 steps** trained (cap 1000, budget 1e-09 min" in report
    assert f"{metrics['error_percent']:.2f} %" in report
    # The report's number is the saved model's: evaluating it again gives the same error.
    again = evaluation.evaluate_saved_model(str(logdir / "model.keras"), str(tmp_path / "again"),
                                            dataset="synthetic", num_train=40, num_test=20)
    assert again["error_percent"] == metrics["error_percent"]

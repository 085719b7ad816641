"""Files saved by an earlier release (tests/fixtures/v0_1, made by 0.1.0) load and predict
identically: the ``.keras`` model and the resume backup (weights, optimizer step, alpha)."""

import os
import shutil

import keras
import numpy as np
import pytest

from keras_landmarks import training
from keras_landmarks.training.callbacks import ResumableCheckpoint

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "v0_1")


@pytest.fixture(scope="module")
def expected():
    return dict(np.load(os.path.join(FIXTURE, "expected.npz")))


def _outputs(model, expected):
    out = model({"image": expected["image"], "future_image": expected["future_image"]})
    return {k: keras.ops.convert_to_numpy(v) for k, v in out.items()}


def test_saved_model_file_loads_and_predicts_identically(expected):
    model = keras.models.load_model(os.path.join(FIXTURE, "model.keras"))
    out = _outputs(model, expected)
    np.testing.assert_allclose(out["keypoints"], expected["keypoints"], atol=1e-6)
    np.testing.assert_allclose(out["reconstruction"], expected["reconstruction"], atol=1e-3)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model.alpha), expected["alpha"])
    # The deployable detector inside it gives the same points on its own.
    detected = model.detector(expected["future_image"])["keypoints"]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(detected), expected["keypoints"], atol=1e-6)


def test_backup_restores_step_alpha_and_predictions(expected, tmp_path):
    model = training.build_model(training.load_config(FIXTURE))
    backup = shutil.copytree(os.path.join(FIXTURE, "backup"), tmp_path / "backup")  # restore locks its folder
    ckpt = ResumableCheckpoint(str(tmp_path), str(backup))
    step = ckpt.restore(model)
    ckpt.release()
    assert step == int(expected["step"]) == 3
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == int(expected["opt_iter"])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model.alpha), expected["alpha_backup"])
    out = _outputs(model, expected)
    np.testing.assert_allclose(out["keypoints"], expected["backup_keypoints"], atol=1e-6)
    np.testing.assert_allclose(out["reconstruction"], expected["backup_reconstruction"], atol=1e-3)

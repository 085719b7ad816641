"""The same LandmarkModel on JAX and PyTorch, without TensorFlow, and its file back on TensorFlow.

One subprocess per backend (``KERAS_BACKEND`` is read once per process) runs, with
TensorFlow hidden (``conftest.py``): ``test_model.py``'s backend-neutral tests (alpha's closed
form, zero gradient under the mask, the loss falling on a fixed batch, the ``.keras`` round
trip, the loss's gradients), ``test_equivariance.py`` (the in-graph warp and its term, a fit
with the term's random warps) and ``backend_checks.py`` (a resumed ``training.train`` run on the
NumPy data path; JAX ``DataParallel`` over two host CPUs equal to one device; one step with a
plain optimizer equal to TensorFlow's, written here first: the model clips on every backend). Here, under TensorFlow, the
``.keras`` file that run saved must load, give the keypoints it gave there, and export to
SavedModel, TFLite and ONNX with the exporter's parity checks passing.
"""

import importlib.util
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from test_model import BACKEND_NEUTRAL

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKENDS = [pytest.param(b, marks=pytest.mark.skipif(importlib.util.find_spec(m) is None,
                                                       reason=f"{m} is not installed (pip install -e '.[{b}]')"))
            for b, m in (("jax", "jax"), ("torch", "torch"))]


def _tensorflow_step(out) -> None:
    """TensorFlow's one plain-SGD step (``backend_checks.sgd_step``) for the backend to match."""
    from backend_checks import sgd_step, step_batch

    batch = step_batch()
    before, after, trainable, bias = sgd_step(batch)
    np.savez(os.path.join(out, "tf_step.npz"), count=len(before), trainable=trainable, bias=bias, **batch,
             **{f"start_{i}": w for i, w in enumerate(before)}, **{f"after_{i}": w for i, w in enumerate(after)})


def _run_on(backend: str, out: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, KERAS_BACKEND=backend, KERAS_LANDMARKS_TEST_WITHOUT_TF="1",
               KERAS_LANDMARKS_TEST_OUT=out, XLA_FLAGS="--xla_force_host_platform_device_count=2",
               PYTHONPATH=os.pathsep.join([os.path.join(ROOT, "tests"), os.environ.get("PYTHONPATH", "")]))
    tests = [f"tests/test_model.py::{name}" for name in BACKEND_NEUTRAL] + ["tests/test_equivariance.py",
                                                                                "tests/backend_checks.py"]
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                           "-W", "ignore::DeprecationWarning", *tests],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)


@pytest.mark.parametrize("backend", BACKENDS)
def test_trains_on_the_backend_and_its_file_exports_under_tensorflow(backend, tmp_path):
    assert keras.config.backend() == "tensorflow"
    _tensorflow_step(str(tmp_path))
    result = _run_on(backend, str(tmp_path))
    report = result.stdout[-4000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
    assert " failed" not in result.stdout and " passed" in result.stdout, report
    assert "skipped" not in result.stdout or backend == "torch", report  # TensorFlow's step was there
    if backend == "torch":  # the JAX-only check is skipped there, the rest ran
        assert "1 skipped" in result.stdout, report

    from keras_landmarks.export.exporter import export_all

    loaded = keras.models.load_model(str(tmp_path / "model.keras"))
    saved = np.load(tmp_path / "keypoints.npz")
    here = keras.ops.convert_to_numpy(loaded.detector(saved["images"])["keypoints"])
    np.testing.assert_allclose(here, saved["keypoints"], atol=1e-4)  # [-1, 1] units: 2e-3 px at 32 px
    manifest = export_all(loaded.detector, str(tmp_path / "export"), ["saved_model", "tflite", "onnx"],
                          ["none"], parity_images=8, log=lambda *_: None)
    assert {r["name"] for r in manifest["parity"]} == {"saved_model", "tflite_float32", "onnx"}
    assert all(r["passed"] for r in manifest["parity"]), manifest["parity"]


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_gpu_check_smoke_runs_end_to_end_without_tensorflow(tmp_path):
    """``bench/gpu_check.py --smoke`` on this CPU: every table, the trained model's error
    by the paper's protocol, and no TensorFlow import on the way."""
    import cv2

    rng = np.random.default_rng(0)
    rows = ["file,a_x,a_y,b_x,b_y,split"]
    for i in range(16):
        cv2.imwrite(str(tmp_path / f"{i}.png"), rng.integers(0, 255, (40, 40, 3), np.uint8))
        rows.append(f"{i}.png,{10 + i},{15},{28 - i / 2},{16 + i / 3},{'test' if i % 3 == 0 else 'train'}")
    (tmp_path / "landmarks.csv").write_text("\n".join(rows) + "\n")
    env = dict(os.environ, KERAS_BACKEND="jax", KERAS_LANDMARKS_TEST_WITHOUT_TF="1",
               PYTHONPATH=os.pathsep.join([os.path.join(ROOT, "tests"), os.environ.get("PYTHONPATH", "")]))
    argv = ["bench/gpu_check.py", "--smoke", "--backend=jax", f"--data_dir={tmp_path}", "--points=a,b"]
    hidden = ("import runpy, sys; import conftest; "  # conftest hides TensorFlow
              f"sys.argv = {argv!r}; runpy.run_path(sys.argv[0], run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", hidden], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=600)
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    assert out.count("| mixed_bfloat16 |") == 2 and out.count("| float32 |") == 2  # 1 batch x 2 jit
    assert "| FolderPairs," in out and "numpy pipeline |" in out
    error = float(out.split("numpy pipeline |")[1].split("|")[2])
    assert 0.0 < error < 1000.0
    assert out.rstrip().endswith("tensorflow imported: no"), out[-500:]

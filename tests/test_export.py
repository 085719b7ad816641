"""Exported detectors (SavedModel, TFLite, ONNX): contract, parity, robustness.

One small detector (S=32, width 8, K=4) whose score head is scaled up so that its points
spread over the image (random weights alone give a near-uniform softmax and every point at
the centre, which would make parity meaningless). Exported once per module (~30 s).
"""

import glob
import os
import signal
import subprocess
import sys
import time

import cv2
import keras
import numpy as np
import pytest

from keras_landmarks.export import runners, serving as D
from keras_landmarks.export import to_onnx as onnx_export
from keras_landmarks.export import parity, to_tflite as tflite
from keras_landmarks.export.exporter import QUANTIZATIONS, export_all
from keras_landmarks import LandmarkConfig, build_detector

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
S, K = 32, 4


def make_detector(seed: int = 0, normalization: str = "batch") -> keras.Model:
    keras.utils.set_random_seed(seed)
    det = build_detector(LandmarkConfig(image_size=S, width=8, num_landmarks=K, normalization=normalization))
    head = det.get_layer("score_maps")
    kernel, bias = head.get_weights()
    head.set_weights([kernel * 300.0, bias])  # peaky softmax: points leave the centre
    return det


def write_images(folder: str, count: int, seed: int = 0) -> None:
    """Smooth random colour images of assorted (non-square) sizes, as PNG."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        h, w = rng.integers(24, 72, size=2)
        small = rng.uniform(0, 255, (h // 6 + 2, w // 6 + 2, 3)).astype(np.float32)
        image = cv2.resize(small, (int(w), int(h)), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(os.path.join(folder, f"img_{i:03d}.png"), np.clip(image, 0, 255).astype(np.uint8))


def numpy_soft_argmax(scores: np.ndarray) -> np.ndarray:
    """Independent reference: ``[B, H, W, K]`` -> ``[B, K, 2]`` (x, y) in [-1, 1]."""
    def expectation(profile, n):  # profile [B, n, K]
        e = np.exp(profile - profile.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
        return np.einsum("bnk,n->bk", p, np.linspace(-1.0, 1.0, n))

    scores = scores.astype(np.float64)
    x = expectation(scores.mean(axis=1), scores.shape[2])
    y = expectation(scores.mean(axis=2), scores.shape[1])
    return np.stack([x, y], axis=-1)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("images"))
    write_images(folder, 48)
    return folder


@pytest.fixture(scope="module")
def images(data_dir):
    return parity.load_images(data_dir, S, 32, offset=16)


@pytest.fixture(scope="module")
def det():
    return make_detector()


@pytest.fixture(scope="module")
def exported(det, data_dir, tmp_path_factory):
    out = os.path.join(str(tmp_path_factory.mktemp("export")), "out")
    manifest = export_all(det, out, ["saved_model", "tflite", "onnx"], list(QUANTIZATIONS),
                          representative_data=data_dir, calibration_images=16,
                          parity_images=32, score_maps=True, log=lambda *_: None)
    return out, manifest


def runners_of(exported) -> dict:
    out, manifest = exported
    return {k: runners.load_runner(os.path.join(out, rel)) for k, rel in manifest["files"].items()}


def test_keras_contract_matches_numpy_reference(det, images):
    out = D.KerasRunner("keras", detector=det, score_maps=True)(images)
    normalized = numpy_soft_argmax(out["score_maps"])
    np.testing.assert_allclose(out["keypoints_normalized"], normalized, atol=1e-5)
    np.testing.assert_allclose(out["keypoints"], (normalized + 1) / 2 * (S - 1), atol=1e-4)
    as_float = D.KerasRunner("keras", "float32", detector=det)(images.astype(np.float32))
    np.testing.assert_allclose(as_float["keypoints"], out["keypoints"], atol=1e-5)
    # The fixture is meaningful only if points move with the image.
    assert out["keypoints"].std(axis=0).mean() > 2.0


def test_layout_and_operators(det, exported):
    out, manifest = exported
    version_dir = os.path.join(out, "saved_model", "detector", "1")
    assert os.path.isfile(os.path.join(version_dir, "saved_model.pb"))
    assert os.path.isfile(os.path.join(version_dir, "variables", "variables.index"))
    weight_bytes = sum(w.size * 4 for w in det.get_weights())  # every weight stored once
    data = glob.glob(os.path.join(version_dir, "variables", "variables.data-*"))
    assert weight_bytes <= sum(map(os.path.getsize, data)) < 1.2 * weight_bytes + 4096
    assert (manifest["image_size"], manifest["num_landmarks"]) == (S, K)
    assert set(manifest["files"]) == {"saved_model", "onnx", "tflite_float32",
                                      "tflite_float16", "tflite_dynamic", "tflite_int8"}
    assert not glob.glob(os.path.join(os.path.dirname(out), ".out.tmp-*"))
    sizes = {}
    for key in [k for k in manifest["files"] if k.startswith("tflite")]:
        path = os.path.join(out, manifest["files"][key])
        with open(path, "rb") as f:
            names = tflite.operator_names(f.read())
        assert "CONV_2D" in names and not [n for n in names if n.startswith("CUSTOM")], names
        sizes[key] = os.path.getsize(path)
        ops = runners.load_runner(path).interpreter._get_ops_details()
        conv_in = {np.dtype(o["operand_types"][0]).name for o in ops if o["op_name"] == "CONV_2D"}
        conv_w = {np.dtype(o["operand_types"][1]).name for o in ops if o["op_name"] == "CONV_2D"}
        softmax = {np.dtype(o["operand_types"][0]).name for o in ops if o["op_name"] == "SOFTMAX"}
        if key == "tflite_int8":  # int8 trunk fed raw uint8 pixels, float soft-argmax
            assert conv_in == {"int8"} and conv_w == {"int8"} and softmax == {"float32"}
            assert [np.dtype(t).name for t in ops[0]["operand_types"]] == ["uint8"]
            assert "CAST" not in names
        elif key == "tflite_dynamic":
            assert "int8" in conv_w and "float32" in conv_in
    assert sizes["tflite_float16"] < 0.8 * sizes["tflite_float32"]
    assert sizes["tflite_int8"] < 0.8 * sizes["tflite_float32"]


def test_parity_against_keras(det, exported, images):
    reference = D.KerasRunner("keras", detector=det, score_maps=True)
    rows = {r.name: r for r in parity.compare(reference, runners_of(exported), images)}
    for name in ("saved_model", "onnx", "tflite_float32"):
        assert rows[name].max_px <= 1e-3, rows[name]
    assert rows["tflite_float16"].max_px <= 0.05, rows["tflite_float16"]
    # int8 / dynamic: reported target is S/128 px mean; here a sanity bound.
    assert 0 < rows["tflite_int8"].mean_px < 1.0, rows["tflite_int8"]
    assert 0 < rows["tflite_dynamic"].mean_px < 1.0, rows["tflite_dynamic"]
    ref_maps = reference(images)["score_maps"]
    for name, runner in runners_of(exported).items():
        if name in ("saved_model", "onnx", "tflite_float32"):
            np.testing.assert_allclose(runner(images)["score_maps"], ref_maps, atol=1e-3)
    assert [r["name"] for r in exported[1]["parity"]] == list(exported[1]["files"])


def test_dynamic_batch(exported, images):
    for name, runner in runners_of(exported).items():
        whole = runner(images[:5])
        for b in (1, 3):
            part = runner(images[:b])
            np.testing.assert_allclose(part["keypoints"], whole["keypoints"][:b], atol=1e-3,
                                       err_msg=name)
            assert part["keypoints_normalized"].shape == (b, K, 2)


def test_onnx_graph(exported):
    import onnx

    out, manifest = exported
    model = onnx.load(os.path.join(out, manifest["files"]["onnx"]))
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    (image,) = model.graph.input
    assert image.name == "image" and image.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert image.type.tensor_type.shape.dim[0].dim_param == "batch"
    assert [o.name for o in model.graph.output] == ["keypoints", "keypoints_normalized",
                                                    "score_maps"]


def test_float32_input_variant_without_score_maps(det, images, tmp_path):
    reference = D.KerasRunner("keras", detector=det)(images)
    onnx_path = onnx_export.export_onnx(det, str(tmp_path / "f.onnx"), input_dtype="float32")
    tfl_path = tflite.export_tflite(det, str(tmp_path / "f.tflite"), input_dtype="float32")
    for path in (onnx_path, tfl_path):
        runner = runners.load_runner(path)
        assert runner.input_dtype == np.float32
        out = runner(images.astype(np.float32))
        assert set(out) == {"keypoints", "keypoints_normalized"}
        np.testing.assert_allclose(out["keypoints"], reference["keypoints"], atol=1e-3)


@pytest.mark.parametrize("normalization", ["group", "none"])
def test_other_normalizations_export_with_parity(normalization, images, tmp_path):
    det = make_detector(normalization=normalization)
    reference = D.KerasRunner("keras", detector=det)(images)
    assert np.ptp(reference["keypoints"]) > 1.0  # points that move: parity means something
    for path in (onnx_export.export_onnx(det, str(tmp_path / "d.onnx")),
                 tflite.export_tflite(det, str(tmp_path / "d.tflite"))):
        out = runners.load_runner(path)(images)
        np.testing.assert_allclose(out["keypoints"], reference["keypoints"], atol=1e-3, err_msg=path)


def test_int8_full_integer_softargmax(det, data_dir, images, tmp_path):
    calibration = parity.load_images(data_dir, S, 16)
    path = tflite.export_tflite(det, str(tmp_path / "i8.tflite"), quantization="int8",
                                representative_images=lambda: (im[None] for im in calibration),
                                int8_softargmax=True)
    runner = runners.load_runner(path)
    detail = runner._runner.get_input_details()["image"]
    assert detail["dtype"] == np.uint8 and detail["quantization"] == (1.0, 0)
    ops = runner.interpreter._get_ops_details()
    # Integer from the input to the final DEQUANTIZE of the outputs.
    first_float = min(i for i, o in enumerate(ops) if o["op_name"] == "DEQUANTIZE")
    assert {np.dtype(t).name for o in ops[:first_float] for t in o["operand_types"]} <= {
        "uint8", "int8", "int32"}
    assert "SOFTMAX" in [o["op_name"] for o in ops[:first_float]]
    (row,) = parity.compare(D.KerasRunner("keras", detector=det), {"tflite_int8": runner}, images)
    assert 0 < row.mean_px < 1.0, row


SUBPROCESS_LOAD = r"""
import json, sys
import numpy as np
# The package is installed in this venv: block it, so any import of it while loading fails.
sys.modules["keras_landmarks"] = None
import tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
images = np.load(sys.argv[2])
result = {"signatures": sorted(loaded.signatures)}
for name in ("serving_default", "serving_uint8", "serving_float32"):
    fn = loaded.signatures[name]
    dtype = fn.structured_input_signature[1]["image"].dtype
    out = fn(image=tf.constant(images.astype(dtype.as_numpy_dtype)))
    result[name] = {k: v.numpy().tolist() for k, v in out.items()}
json.dump(result, open(sys.argv[3], "w"))
"""


def test_saved_model_loads_without_project_code(det, exported, images, tmp_path):
    import json

    out, manifest = exported
    np.save(tmp_path / "images.npy", images)
    (tmp_path / "load.py").write_text(SUBPROCESS_LOAD)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "load.py", os.path.join(out, manifest["files"]["saved_model"]),
                    "images.npy", "result.json"], cwd=tmp_path, env=env, check=True,
                   capture_output=True)
    result = json.loads((tmp_path / "result.json").read_text())
    assert {"serving_default", "serving_uint8", "serving_float32"} <= set(result["signatures"])
    reference = D.KerasRunner("keras", detector=det, score_maps=True)(images)
    for name in ("serving_default", "serving_uint8", "serving_float32"):
        for key in ("keypoints", "keypoints_normalized", "score_maps"):
            np.testing.assert_allclose(np.array(result[name][key]), reference[key], atol=1e-3)


def test_bad_inference_input(exported, images):
    for name, runner in runners_of(exported).items():
        with pytest.raises(ValueError, match=r"\[B, 32, 32, 3\] uint8.*got dtype float32"):
            runner(images.astype(np.float32))
        with pytest.raises(ValueError, match=r"got shape \(32, 16, 32, 3\)"):
            runner(images[:, :16])
        with pytest.raises(ValueError, match="numpy array"):
            runner(images.tolist())


def test_missing_and_corrupt_models(tmp_path, det):
    with pytest.raises(ValueError, match="does not exist"):
        runners.load_runner(str(tmp_path / "nothing.onnx"))
    for name in ("bad.tflite", "bad.onnx", "bad.keras"):
        (tmp_path / name).write_bytes(b"\x00not a model" * 10)
        with pytest.raises(ValueError, match=name):
            runners.load_runner(str(tmp_path / name))
    (tmp_path / "sm" / "1").mkdir(parents=True)
    (tmp_path / "sm" / "1" / "saved_model.pb").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a readable SavedModel"):
        runners.load_runner(str(tmp_path / "sm"))
    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    other.save(tmp_path / "other.keras")
    with pytest.raises(ValueError, match="not a LandmarkModel or a detector"):
        D.load_keras_detector(str(tmp_path / "other.keras"))


def test_mixed_precision_checkpoint_exports_float32(tmp_path):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        mixed = make_detector()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    mixed.save(tmp_path / "mixed.keras")
    det = D.load_keras_detector(str(tmp_path / "mixed.keras"))
    assert {layer.dtype_policy.name for layer in det._flatten_layers()} == {"float32"}
    x = np.random.default_rng(0).uniform(0, 255, (4, S, S, 3)).astype(np.float32)
    # float16 activations vs float32: agree to float16 precision.
    np.testing.assert_allclose(det(x)["keypoints"], mixed(x)["keypoints"], atol=0.02)
    out = D.KerasRunner("f32", detector=det)(x.astype(np.uint8))
    assert out["keypoints"].dtype == np.float32


def test_existing_output_refused_then_overwritten(det, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("user data")
    with pytest.raises(FileExistsError, match="--overwrite"):
        export_all(det, str(out), ["onnx"], [], parity_images=0, log=lambda *_: None)
    assert (out / "keep.txt").read_text() == "user data"
    export_all(det, str(out), ["onnx"], [], parity_images=0, overwrite=True, log=lambda *_: None)
    assert sorted(os.listdir(out)) == ["detector.onnx", "export.json"]
    assert sorted(os.listdir(tmp_path)) == ["out"]  # no temporary left behind


@pytest.mark.parametrize("name", ["../../escaped", "sub/model", "ABSOLUTE", "", "..", ".",
                                  "a\\b", ".hidden", None])
def test_name_that_would_leave_the_output_folder_is_refused(det, tmp_path, name):
    out = tmp_path / "exports" / "out"
    name = str(tmp_path / "abs" / "model") if name == "ABSOLUTE" else name
    with pytest.raises(ValueError, match=r"--name=.*must be a plain file name"):
        export_all(det, str(out), ["saved_model", "onnx"], [], parity_images=0, name=name,
                   log=lambda *_: None)
    assert not os.path.exists(tmp_path / "exports")  # refused before anything was written
    assert sorted(os.listdir(tmp_path)) == []


def test_plain_names_and_versions_name_the_files_inside_the_output(det, tmp_path):
    out = tmp_path / "out"
    manifest = export_all(det, str(out), ["saved_model", "onnx"], [], parity_images=0,
                          name="face-v2.1", version=3, log=lambda *_: None)
    assert manifest["files"] == {"saved_model": os.path.join("saved_model", "face-v2.1", "3"),
                                 "onnx": "face-v2.1.onnx"}
    assert (out / "saved_model" / "face-v2.1" / "3" / "saved_model.pb").is_file()
    assert sorted(os.listdir(tmp_path)) == ["out"]
    with pytest.raises(ValueError, match="--version='3': must be an integer >= 0"):
        export_all(det, str(tmp_path / "o2"), ["onnx"], [], parity_images=0, version="3")


def test_failed_export_leaves_nothing(det, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("simulated crash after the SavedModel was written")

    monkeypatch.setattr(onnx_export, "export_onnx", broken)
    with pytest.raises(RuntimeError, match="simulated"):
        export_all(det, str(tmp_path / "out"), ["saved_model", "onnx"], [], parity_images=0,
                   log=lambda *_: None)
    assert os.listdir(tmp_path) == []


def test_killed_export_leaves_nothing(det, tmp_path):
    det.save(tmp_path / "det.keras")
    out = tmp_path / "exports" / "out"
    proc = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "trainers", "export.py"), f"--model={tmp_path}/det.keras",
         f"--output_dir={out}", "--formats=saved_model,tflite,onnx", "--parity_images=0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    try:  # kill -9 as soon as the SavedModel sits in the temporary directory
        while not glob.glob(str(tmp_path / "exports" / ".out.tmp-*" / "out" / "saved_model" /
                                "detector" / "1" / "saved_model.pb")):
            assert proc.poll() is None, "export finished before it could be killed"
            assert time.time() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not out.exists()
    assert os.listdir(tmp_path / "exports")[0].startswith(".out.tmp-")  # hidden leftover only


@pytest.mark.parametrize("flags, message", [
    (["--formats=saved_model,coreml"], "--formats: unknown ['coreml']"),
    (["--tflite_quantization=int4"], "--tflite_quantization: unknown ['int4']"),
    (["--tflite_quantization=int8"], "needs --representative_data"),
    (["--representative_data=/no/such/dir"], "neither an image folder"),
    (["--name=../../escaped"], "--name='../../escaped': must be a plain file name"),
    (["--name="], "--name='': must be a plain file name"),
])
def test_cli_bad_flags(flags, message, tmp_path):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "trainers", "export.py"),
                           "--model=x.keras", f"--output_dir={tmp_path}/o", *flags],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not os.path.exists(tmp_path / "o")


def test_cli_exports_and_prints_parity(det, data_dir, tmp_path):
    det.save(tmp_path / "det.keras")
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "trainers", "export.py"),
         f"--model={tmp_path}/det.keras", f"--output_dir={tmp_path}/o", "--formats=onnx,tflite",
         f"--parity_data={data_dir}", "--parity_images=8"],
        capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert any(line.startswith("model ") and "max_px" in line for line in lines)
    assert any(line.startswith("onnx ") and line.endswith(" ok") for line in lines)
    assert any(line.startswith("tflite_float32 ") and line.endswith(" ok") for line in lines)


def test_parity_math():
    ref = np.zeros((2, 3, 2))
    moved = ref.copy()
    moved[1, 2] = [3.0, 4.0]  # a 3-4-5 triangle
    np.testing.assert_allclose(parity.keypoint_errors(ref, moved), [[0, 0, 0], [0, 0, 5.0]])

    class Shifted(D.Runner):
        def __init__(self, dx):
            super().__init__("fake", S, "uint8", lambda im: {
                "keypoints": np.full((len(im), K, 2), 10.0) + [dx, 0.0]})

    (row,) = parity.compare(Shifted(0.0), {"tflite_float16": Shifted(0.04)},
                            np.zeros((5, S, S, 3), np.uint8))
    assert row.max_px == pytest.approx(0.04) and row.mean_px == pytest.approx(0.04)
    assert row.passed and row.threshold_px == 0.05
    (row,) = parity.compare(Shifted(0.0), {"tflite_int8": Shifted(0.3)},
                            np.zeros((5, S, S, 3), np.uint8))
    assert row.threshold_px == pytest.approx(S / 128) and not row.passed and not row.enforced
    assert tuple(tflite.QUANTIZATIONS) == QUANTIZATIONS

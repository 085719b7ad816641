"""The inference CLI: square fitting and the map back to original pixels, drawing, video."""

import csv
import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

from keras_landmarks.export import runners, serving as D
from keras_landmarks.data.images import fit_to_square
from keras_landmarks.apps.predict import list_inputs, predict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def blob_image(h: int, w: int, cx: float, cy: float, sigma: float = 4.0) -> np.ndarray:
    """``[h, w, 3]`` uint8 with a Gaussian blob centred at pixel ``(cx, cy)``."""
    yy, xx = np.mgrid[0:h, 0:w]
    v = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2))
    return np.repeat(np.round(v * 255).astype(np.uint8)[..., None], 3, axis=-1)


def centroid(image: np.ndarray) -> np.ndarray:
    """Intensity-weighted ``(x, y)`` centroid of channel 0 above a small floor."""
    v = np.maximum(image[..., 0].astype(np.float64) - 8.0, 0.0)
    yy, xx = np.mgrid[0:image.shape[0], 0:image.shape[1]]
    return np.array([(v * xx).sum(), (v * yy).sum()]) / v.sum()


class CentroidRunner(D.Runner):
    """A fake detector with a known answer: one keypoint at the blob's centroid."""

    def __init__(self, size: int):
        super().__init__("centroid", size, "uint8", lambda ims: {
            "keypoints": np.stack([centroid(im)[None] for im in ims]),
            "keypoints_normalized": np.zeros((len(ims), 1, 2))})


@pytest.mark.parametrize("mode", ["crop", "pad"])
@pytest.mark.parametrize("h, w, size", [(90, 140, 32), (140, 90, 64), (40, 50, 128)])
def test_fit_to_square_maps_points_back(mode, h, w, size):
    cx, cy = 0.55 * w + 0.3, 0.45 * h - 0.2
    square, transform = fit_to_square(blob_image(h, w, cx, cy), size, mode)
    assert square.shape == (size, size, 3) and square.dtype == np.uint8
    np.testing.assert_allclose(transform.to_original(centroid(square)), [cx, cy], atol=0.1)
    side = min(h, w) if mode == "crop" else max(h, w)
    assert transform.scale == pytest.approx(side / size)


def test_fit_to_square_rejects_bad_input():
    with pytest.raises(ValueError, match="'crop' or 'pad'"):
        fit_to_square(np.zeros((8, 8, 3), np.uint8), 4, "stretch")
    with pytest.raises(ValueError, match=r"\[H, W, 3\]"):
        fit_to_square(np.zeros((8, 8), np.uint8), 4)


def test_list_inputs_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        list_inputs(str(tmp_path / "missing.png"))
    with pytest.raises(ValueError, match="has no images"):
        list_inputs(str(tmp_path))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="expected an image"):
        list_inputs(str(tmp_path / "notes.txt"))


def read_csv(path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def test_predict_images_in_original_pixels(tmp_path):
    truth = {"a": (70, 50, 40.3, 20.6), "b": (61, 33, 15.2, 35.9), "c": (64, 64, 47.0, 12.5)}
    (tmp_path / "in").mkdir()
    for name, (h, w, cx, cy) in truth.items():
        cv2.imwrite(str(tmp_path / "in" / f"{name}.png"), blob_image(h, w, cx, cy, 3.0))
    stats = predict(CentroidRunner(32), str(tmp_path / "in"), str(tmp_path / "out"), batch_size=2)
    assert stats["images"] == 3
    rows = {r["file"]: r for r in read_csv(tmp_path / "out" / "keypoints.csv")}
    for name, (h, w, cx, cy) in truth.items():
        row = rows[f"{name}.png"]
        np.testing.assert_allclose([float(row["x"]), float(row["y"])], [cx, cy], atol=0.15)
        drawn = cv2.imread(str(tmp_path / "out" / f"{name}.png.png"))
        assert drawn.shape == (h, w, 3)
        # The marker is drawn where the point is: the pixel there is no longer grey.
        b, g, r = drawn[round(cy), round(cx)].astype(int)
        assert max(b, g, r) - min(b, g, r) > 100


def assert_marker_at(drawn_bgr: np.ndarray, x: float, y: float) -> None:
    """The marker is drawn where the point is: the (grey) pixel there became coloured."""
    b, g, r = drawn_bgr[round(y), round(x)].astype(int)
    assert max(b, g, r) - min(b, g, r) > 100


def test_inputs_with_one_stem_get_their_own_outputs_and_rows(tmp_path):
    """``a.png``, ``a.bmp`` and ``a.png.bmp`` (one stem, or one name inside another) each get
    their own drawing, and the CSV rows of each file hold that file's point."""
    truth = {"a.png": (70, 50, 40.3, 20.6), "a.bmp": (61, 33, 15.2, 35.9),
             "a.png.bmp": (48, 64, 30.0, 22.0)}
    (tmp_path / "in").mkdir()
    for name, (h, w, cx, cy) in truth.items():
        assert cv2.imwrite(str(tmp_path / "in" / name), blob_image(h, w, cx, cy, 3.0))
    (tmp_path / "in" / "sub.png").mkdir()  # a folder with an image's name is not an input
    predict(CentroidRunner(32), str(tmp_path / "in"), str(tmp_path / "out"), batch_size=2)
    assert sorted(os.listdir(tmp_path / "out")) == sorted(
        [f"{name}.png" for name in truth] + ["keypoints.csv"])
    rows = read_csv(tmp_path / "out" / "keypoints.csv")
    assert sorted(r["file"] for r in rows) == sorted(truth)
    for r in rows:
        h, w, cx, cy = truth[r["file"]]
        np.testing.assert_allclose([float(r["x"]), float(r["y"])], [cx, cy], atol=0.15)
        drawn = cv2.imread(str(tmp_path / "out" / (r["file"] + ".png")))
        assert drawn.shape == (h, w, 3)
        assert_marker_at(drawn, cx, cy)


def test_output_into_the_input_folder_never_replaces_an_input(tmp_path):
    image = blob_image(40, 40, 20.0, 18.0, 3.0)
    assert cv2.imwrite(str(tmp_path / "a.png"), image)
    before = (tmp_path / "a.png").read_bytes()
    predict(CentroidRunner(32), str(tmp_path), str(tmp_path))
    assert (tmp_path / "a.png").read_bytes() == before
    assert_marker_at(cv2.imread(str(tmp_path / "a.png.png")), 20.0, 18.0)
    # Again: a.png.png is now an input too, and a.png's output would replace it.
    with pytest.raises(ValueError, match=r"a\.png\.png, the output for .*a\.png, is an input"):
        predict(CentroidRunner(32), str(tmp_path), str(tmp_path))
    assert (tmp_path / "a.png").read_bytes() == before


def test_unwritable_outputs_are_clear_errors(tmp_path):
    (tmp_path / "in").mkdir()
    assert cv2.imwrite(str(tmp_path / "in" / "a.png"), blob_image(40, 40, 20.0, 18.0))
    blocked = tmp_path / "out" / "a.png.png"
    blocked.mkdir(parents=True)  # a folder where the drawing goes: cv2.imwrite returns False
    with pytest.raises(ValueError, match="could not write " + re.escape(str(blocked))):
        predict(CentroidRunner(32), str(tmp_path / "in"), str(tmp_path / "out"))
    clip = str(tmp_path / "clip.mp4")
    writer = cv2.VideoWriter(clip, cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (48, 32))
    for i in range(3):
        writer.write(blob_image(32, 48, 20.0 + i, 16.0))
    writer.release()
    blocked = tmp_path / "vout" / "clip.mp4.mp4"
    blocked.mkdir(parents=True)  # the VideoWriter cannot open there
    with pytest.raises(ValueError, match="could not write " + re.escape(str(blocked))):
        predict(CentroidRunner(32), clip, str(tmp_path / "vout"))
    (tmp_path / "cout" / "keypoints.csv").mkdir(parents=True)
    with pytest.raises(ValueError, match="could not write .*keypoints.csv"):
        predict(CentroidRunner(32), str(tmp_path / "in"), str(tmp_path / "cout"))


def test_predict_video(tmp_path):
    path = str(tmp_path / "clip.mp4")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (96, 64))
    centres = [(30.0 + 4 * i, 28.0 + i) for i in range(8)]
    for cx, cy in centres:
        writer.write(blob_image(64, 96, cx, cy, 4.0))
    writer.release()
    predict(CentroidRunner(32), path, str(tmp_path / "out"), batch_size=3)
    rows = read_csv(tmp_path / "out" / "keypoints.csv")
    assert [int(r["frame"]) for r in rows] == list(range(8))
    points = np.array([[float(r["x"]), float(r["y"])] for r in rows])
    np.testing.assert_allclose(points, centres, atol=1.0)  # lossy mp4v frames
    assert sorted(os.listdir(tmp_path / "out")) == ["clip.mp4.mp4", "keypoints.csv"]
    capture = cv2.VideoCapture(str(tmp_path / "out" / "clip.mp4.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 8
    assert (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (96, 64)


def test_cli_with_onnx_model(tmp_path):
    import keras

    from keras_landmarks.export.to_onnx import export_onnx
    from keras_landmarks import LandmarkConfig, build_detector

    keras.utils.set_random_seed(1)
    det = build_detector(LandmarkConfig(image_size=32, width=8, num_landmarks=3))
    export_onnx(det, str(tmp_path / "det.onnx"))
    (tmp_path / "in").mkdir()
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate([(40, 60), (50, 50)]):
        cv2.imwrite(str(tmp_path / "in" / f"im{i}.jpg"), rng.integers(0, 255, (h, w, 3), np.uint8))
    script = os.path.join(ROOT, "trainers", "predict.py")
    proc = subprocess.run([sys.executable, script, f"--model={tmp_path}/det.onnx",
                           f"--input={tmp_path}/in", f"--output={tmp_path}/out"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "images/s" in proc.stdout
    rows = read_csv(tmp_path / "out" / "keypoints.csv")
    assert len(rows) == 2 * 3 and sorted(os.listdir(tmp_path / "out")) == [
        "im0.jpg.png", "im1.jpg.png", "keypoints.csv"]
    # The CLI's points are the ONNX model's, mapped back to the 40x60 / 50x50 originals.
    runner = runners.load_runner(str(tmp_path / "det.onnx"))
    for i in range(2):
        image = cv2.cvtColor(cv2.imread(str(tmp_path / "in" / f"im{i}.jpg")), cv2.COLOR_BGR2RGB)
        square, transform = fit_to_square(image, 32)
        want = transform.to_original(runner(square[None])["keypoints"][0])
        got = [[float(r["x"]), float(r["y"])] for r in rows if r["file"] == f"im{i}.jpg"]
        np.testing.assert_allclose(got, want, atol=2e-3)
    for flags, message in [([f"--model={tmp_path}/det.onnx", f"--input={tmp_path}/nope"],
                            "does not exist"),
                           ([f"--model={tmp_path}/in/im0.jpg", f"--input={tmp_path}/in"],
                            "unknown model format")]:
        proc = subprocess.run([sys.executable, script, *flags, f"--output={tmp_path}/o2"],
                              capture_output=True, text=True)
        assert proc.returncode != 0 and message in proc.stderr and "Traceback" not in proc.stderr

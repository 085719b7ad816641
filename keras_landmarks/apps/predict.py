r"""Detect landmarks with any exported detector and draw them.

    landmarks-predict --model=<.keras | logdir | SavedModel dir | .tflite | .onnx> \
        --input=<image | folder | video> --output=<dir>

Every image (or video frame) is centre-cropped to a square (``--fit=crop``; or padded with
black, ``--fit=pad``), resized to the model's ``S x S`` and run; the points are mapped back
to the original image (pixel ``(x, y)``, 0-based, integer = pixel centre), drawn with
OpenCV and written as ``<output>/<file>.png`` (or ``<output>/<file>.mp4`` for a video),
``<file>`` being the input's whole file name, extension included (``a.jpg`` ->
``a.jpg.png``, ``a.png`` -> ``a.png.png``): inputs with the same stem never share an output,
and no output replaces an input when ``<output>`` is the input folder. Plus
``<output>/keypoints.csv`` (``file,frame,landmark,x,y``: the input's file name, the frame
index (0 for an image), the landmark index, or its name for a pretrained detector's named
points, and its original-pixel ``(x, y)``).
Every write is checked: a file OpenCV could not write is a ``ValueError`` naming it.
Prints the model's images/s and the end-to-end rate.
"""

from __future__ import annotations

import csv
import glob
import os
import time

import numpy as np

from keras_landmarks.data.images import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, Transform, fit_to_square, is_image_file, is_video_file  # noqa: F401


def draw_landmarks(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Copy of ``image`` ``[H, W, 3]`` uint8 with ``points`` ``[K, 2]`` ``(x, y)`` pixels drawn."""
    from keras_landmarks.evaluation import pictures  # noqa: PLC0415

    return pictures.draw_points(image, points, radius=max(2, round(min(image.shape[:2]) / 80)))


def list_inputs(path: str) -> tuple[str, list[str]]:
    """``("video", [file])`` or ``("images", files)`` for a file or folder; clear error otherwise."""
    if os.path.isdir(path):
        files = sorted(f for f in glob.glob(os.path.join(path, "*"))
                       if is_image_file(f) and os.path.isfile(f))
        if not files:
            raise ValueError(f"--input={path}: folder has no images {IMAGE_EXTENSIONS}")
        return "images", files
    if not os.path.isfile(path):
        raise ValueError(f"--input={path} does not exist")
    if is_video_file(path):
        return "video", [path]
    if is_image_file(path):
        return "images", [path]
    raise ValueError(f"--input={path}: expected an image {IMAGE_EXTENSIONS}, a video "
                     f"{VIDEO_EXTENSIONS} or a folder of images")


class _Timer:
    """Runs the model, timing it; maps keypoints to named points when given a point map."""

    def __init__(self, point_map=None):
        self.seconds, self.images, self.point_map = 0.0, 0, point_map

    def run(self, runner, batch: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        points = runner(batch.astype(runner.input_dtype))["keypoints"]
        self.seconds += time.perf_counter() - start
        self.images += len(batch)
        return points if self.point_map is None else self.point_map(points)

    def label(self, k: int):
        return k if self.point_map is None else self.point_map.names[k]


def output_path(output_dir: str, input_file: str, extension: str) -> str:
    """``<output_dir>/<input file name><extension>``: the input's name is kept whole (with its
    extension), so distinct files of one folder get distinct outputs."""
    return os.path.join(output_dir, os.path.basename(input_file) + extension)


def _check_outputs(files: list[str], outputs: list[str]) -> None:
    """Raise unless the outputs are distinct and none of them is an input."""
    inputs, seen = {os.path.realpath(f) for f in files}, {}
    for file, out in zip(files, outputs):
        if os.path.realpath(out) in inputs:
            raise ValueError(f"{out}, the output for {file}, is an input; choose another --output")
        other = seen.setdefault(os.path.realpath(out), file)
        if other != file:
            raise ValueError(f"{other} and {file} would both be written to {out}")


def write_image(path: str, rgb: np.ndarray) -> None:
    """Write ``rgb`` ``[H, W, 3]`` uint8 to ``path`` (format from the extension); raises
    ``ValueError`` naming ``path`` if OpenCV could not write it."""
    import cv2  # noqa: PLC0415

    try:
        ok = cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    except cv2.error as e:
        raise ValueError(f"could not write {path}: {e}") from None
    if not ok:
        raise ValueError(f"could not write {path} (is the folder writable, is a folder in the way?)")


def predict(runner, input_path: str, output_dir: str, batch_size: int = 16,
            fit: str = "crop", point_map=None) -> dict:
    """Detect, draw and write (see module docstring). Returns counts and timings.

    ``point_map``: optional ``pretrained.PointMap`` (``[B, K, 2] -> [B, P, 2]`` pixels of the
    ``S x S`` input, with ``names``): the named points are drawn and written instead of the
    K keypoints, the CSV's ``landmark`` column holding their names.

    Raises ``ValueError`` for an unreadable input, an output that cannot be written or
    would replace an input.
    """
    kind, files = list_inputs(input_path)
    os.makedirs(output_dir, exist_ok=True)
    outputs = [output_path(output_dir, f, ".png" if kind == "images" else ".mp4") for f in files]
    _check_outputs(files, outputs)
    timer, start = _Timer(point_map), time.perf_counter()
    if kind == "images":
        rows = []
        for i in range(0, len(files), batch_size):
            rows += _predict_images(runner, files[i:i + batch_size], outputs[i:i + batch_size],
                                    fit, timer)
    else:
        rows = _predict_video(runner, files[0], outputs[0], batch_size, fit, timer)
    csv_path = os.path.join(output_dir, "keypoints.csv")
    try:
        with open(csv_path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["file", "frame", "landmark", "x", "y"])
            writer.writerows((a, b, c, f"{x:.3f}", f"{y:.3f}") for a, b, c, x, y in rows)
    except OSError as e:
        raise ValueError(f"could not write {csv_path}: {e.strerror or e}") from None
    total = time.perf_counter() - start
    return {"images": timer.images, "model_seconds": timer.seconds, "total_seconds": total}


def _predict_images(runner, files: list[str], outputs: list[str], fit: str, timer) -> list[tuple]:
    """One model call on ``files``; writes the drawn images to ``outputs``; the CSV rows."""
    import cv2  # noqa: PLC0415

    originals, squares, transforms = [], [], []
    for file in files:
        bgr = cv2.imread(file, cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"{file} is not a readable image")
        originals.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        square, transform = fit_to_square(originals[-1], runner.image_size, fit)
        squares.append(square)
        transforms.append(transform)
    points = timer.run(runner, np.stack(squares))
    rows = []
    for file, out, image, pts, tr in zip(files, outputs, originals, points, transforms):
        pts = tr.to_original(pts)
        write_image(out, draw_landmarks(image, pts))
        rows += [(os.path.basename(file), 0, timer.label(k), x, y) for k, (x, y) in enumerate(pts)]
    return rows


def _predict_video(runner, path, out_path, batch_size, fit, timer) -> list[tuple]:
    """Run ``path``'s frames in batches; writes the drawn video to ``out_path``; the CSV rows."""
    import cv2  # noqa: PLC0415

    from keras_landmarks.apps.media import capture_fps  # noqa: PLC0415 (OpenCV, imported when used)

    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise ValueError(f"--input={path}: OpenCV cannot open this video")
    fps = capture_fps(capture)
    writer, rows, index, done = None, [], 0, False
    try:
        while not done:
            frames = []
            while len(frames) < batch_size:
                ok, bgr = capture.read()
                if not ok:
                    done = True
                    break
                frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            if not frames:
                break
            fitted = [fit_to_square(f, runner.image_size, fit) for f in frames]
            points = timer.run(runner, np.stack([sq for sq, _ in fitted]))
            for frame, (_, tr), pts in zip(frames, fitted, points):
                pts = tr.to_original(pts)
                if writer is None:
                    writer = _open_video_writer(out_path, fps, frame.shape[1], frame.shape[0])
                writer.write(cv2.cvtColor(draw_landmarks(frame, pts), cv2.COLOR_RGB2BGR))
                rows += [(os.path.basename(path), index, timer.label(k), x, y) for k, (x, y) in enumerate(pts)]
                index += 1
    finally:
        capture.release()
        if writer is not None:
            writer.release()
    if writer is None:
        raise ValueError(f"--input={path}: the video has no readable frames")
    if not os.path.isfile(out_path) or os.path.getsize(out_path) == 0:
        raise ValueError(f"could not write {out_path}: OpenCV wrote no video there")
    return rows


def _open_video_writer(path: str, fps: float, width: int, height: int):
    """An opened ``cv2.VideoWriter`` (mp4v) for ``path``; ``ValueError`` naming it otherwise."""
    import cv2  # noqa: PLC0415

    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise ValueError(f"could not write {path}: OpenCV cannot open a video writer there "
                         "(is the folder writable, is a folder in the way, is mp4v available?)")
    return writer

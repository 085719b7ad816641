r"""Detect landmarks with any exported detector and draw them.

    landmarks-predict --model=<.keras | logdir | SavedModel dir | .tflite | .onnx> \
        --input=<image | folder | video> --output=<dir>

Every image (or video frame) is centre-cropped to a square (``--fit=crop``; or padded with
black, ``--fit=pad``), resized to the model's ``S x S`` and run; the points are mapped back
to the original image (pixel ``(x, y)``, 0-based, integer = pixel centre), drawn with
OpenCV and written as ``<output>/<name>.png`` (or ``<output>/<name>.mp4`` for a video)
plus ``<output>/keypoints.csv`` (``file,frame,landmark,x,y`` in original pixels).
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
    from keras_landmarks import viz  # noqa: PLC0415

    return viz.draw_points(image, points, radius=max(2, round(min(image.shape[:2]) / 80)))


def list_inputs(path: str) -> tuple[str, list[str]]:
    """``("video", [file])`` or ``("images", files)`` for a file or folder; clear error otherwise."""
    if os.path.isdir(path):
        files = sorted(f for f in glob.glob(os.path.join(path, "*"))
                       if is_image_file(f))
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
    def __init__(self):
        self.seconds, self.images = 0.0, 0

    def run(self, runner, batch: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        points = runner(batch.astype(runner.input_dtype))["keypoints"]
        self.seconds += time.perf_counter() - start
        self.images += len(batch)
        return points


def predict(runner, input_path: str, output_dir: str, batch_size: int = 16,
            fit: str = "crop") -> dict:
    """Detect, draw and write (see module docstring). Returns counts and timings."""
    import cv2  # noqa: PLC0415

    kind, files = list_inputs(input_path)
    os.makedirs(output_dir, exist_ok=True)
    timer, start, rows = _Timer(), time.perf_counter(), []
    if kind == "images":
        for i in range(0, len(files), batch_size):
            originals, squares, transforms = [], [], []
            for file in files[i:i + batch_size]:
                bgr = cv2.imread(file, cv2.IMREAD_COLOR)
                if bgr is None:
                    raise ValueError(f"{file} is not a readable image")
                originals.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                square, transform = fit_to_square(originals[-1], runner.image_size, fit)
                squares.append(square)
                transforms.append(transform)
            points = timer.run(runner, np.stack(squares))
            for file, image, pts, tr in zip(files[i:i + batch_size], originals, points, transforms):
                pts = tr.to_original(pts)
                name = os.path.splitext(os.path.basename(file))[0]
                drawn = draw_landmarks(image, pts)
                cv2.imwrite(os.path.join(output_dir, name + ".png"),
                            cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))
                rows += [(os.path.basename(file), 0, k, x, y) for k, (x, y) in enumerate(pts)]
    else:
        rows = _predict_video(runner, files[0], output_dir, batch_size, fit, timer)
    with open(os.path.join(output_dir, "keypoints.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "frame", "landmark", "x", "y"])
        writer.writerows((a, b, c, f"{x:.3f}", f"{y:.3f}") for a, b, c, x, y in rows)
    total = time.perf_counter() - start
    return {"images": timer.images, "model_seconds": timer.seconds, "total_seconds": total}


def _predict_video(runner, path, output_dir, batch_size, fit, timer) -> list[tuple]:
    import cv2  # noqa: PLC0415

    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise ValueError(f"--input={path}: OpenCV cannot open this video")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    name = os.path.splitext(os.path.basename(path))[0]
    out_path = os.path.join(output_dir, name + ".mp4")
    writer, rows, index, done = None, [], 0, False
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
                h, w = frame.shape[:2]
                writer = cv2.VideoWriter(out_path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
            writer.write(cv2.cvtColor(draw_landmarks(frame, pts), cv2.COLOR_RGB2BGR))
            rows += [(os.path.basename(path), index, k, x, y) for k, (x, y) in enumerate(pts)]
            index += 1
    capture.release()
    if writer is None:
        raise ValueError(f"--input={path}: the video has no readable frames")
    writer.release()
    return rows

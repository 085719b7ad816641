r"""Detect landmarks with any exported detector and draw them.

    python export/predict.py --model=<.keras | logdir | SavedModel dir | .tflite | .onnx> \
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
import dataclasses
import glob
import os
import sys
import time

if __name__ == "__main__":  # run as a script: make the repository root importable
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


@dataclasses.dataclass(frozen=True)
class Transform:
    """Model-input pixels -> original pixels: ``orig = scale * p + (offset_x, offset_y)``."""

    scale: float
    offset_x: float
    offset_y: float

    def to_original(self, points: np.ndarray) -> np.ndarray:
        """``[..., 2]`` ``(x, y)`` pixels of the ``S x S`` input -> pixels of the original."""
        return points * self.scale + np.array([self.offset_x, self.offset_y], np.float32)


def fit_to_square(image: np.ndarray, size: int, mode: str = "crop") -> tuple[np.ndarray, Transform]:
    """Centre-crop (``"crop"``) or black-pad (``"pad"``) ``image`` to a square, resize to ``size``.

    Args:
      image: ``[H, W, 3]`` uint8 RGB.
    Returns:
      ``([size, size, 3]`` uint8, ``Transform`` back to ``image``'s pixels). The resize maps
      pixel centres linearly (``x_src = (x_dst + 0.5) * L / size - 0.5`` for a square of
      side ``L``), as ``cv2.resize`` does.
    """
    import cv2  # noqa: PLC0415

    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an [H, W, 3] RGB image, got shape {image.shape}")
    h, w = image.shape[:2]
    if mode == "crop":
        side = min(h, w)
    elif mode == "pad":
        side = max(h, w)
    else:
        raise ValueError(f"fit mode must be 'crop' or 'pad', got {mode!r}")
    x0, y0 = (w - side) // 2, (h - side) // 2  # negative when padding
    if mode == "crop":
        square = image[y0:y0 + side, x0:x0 + side]
    else:
        square = cv2.copyMakeBorder(image, -y0, side - h + y0, -x0, side - w + x0,
                                    cv2.BORDER_CONSTANT, value=(0, 0, 0))
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    resized = cv2.resize(np.ascontiguousarray(square), (size, size), interpolation=interpolation)
    scale = side / size
    return resized, Transform(scale, x0 + 0.5 * scale - 0.5, y0 + 0.5 * scale - 0.5)


def draw_landmarks(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Copy of ``image`` ``[H, W, 3]`` uint8 with ``points`` ``[K, 2]`` ``(x, y)`` pixels drawn."""
    from keras_landmarks import viz  # noqa: PLC0415

    return viz.draw_points(image, points, radius=max(2, round(min(image.shape[:2]) / 80)))


def list_inputs(path: str) -> tuple[str, list[str]]:
    """``("video", [file])`` or ``("images", files)`` for a file or folder; clear error otherwise."""
    if os.path.isdir(path):
        files = sorted(f for f in glob.glob(os.path.join(path, "*"))
                       if f.lower().endswith(IMAGE_EXTENSIONS))
        if not files:
            raise ValueError(f"--input={path}: folder has no images {IMAGE_EXTENSIONS}")
        return "images", files
    if not os.path.isfile(path):
        raise ValueError(f"--input={path} does not exist")
    if path.lower().endswith(VIDEO_EXTENSIONS):
        return "video", [path]
    if path.lower().endswith(IMAGE_EXTENSIONS):
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


def main(argv) -> None:
    from absl import flags, logging  # noqa: PLC0415

    f = flags.FLAGS
    logging.set_verbosity(logging.WARNING)
    if len(argv) > 1:
        raise app_usage_error(f"unexpected arguments {argv[1:]}")
    for name in ("model", "input", "output"):
        if not getattr(f, name):
            raise app_usage_error(f"--{name} is required")
    try:
        list_inputs(f.input)  # bad --input fails before TensorFlow is imported
        from export.detector import load_runner  # noqa: PLC0415

        runner = load_runner(f.model, num_threads=f.num_threads)
        stats = predict(runner, f.input, f.output, f.batch_size, f.fit)
    except (ValueError, FileExistsError) as e:
        raise app_usage_error(str(e)) from None
    model_rate = stats["images"] / max(stats["model_seconds"], 1e-9)
    total_rate = stats["images"] / max(stats["total_seconds"], 1e-9)
    print(f"{stats['images']} images with {runner!r}: model {model_rate:.1f} images/s, "
          f"end-to-end (decode, resize, draw, encode) {total_rate:.1f} images/s -> {f.output}")


def app_usage_error(message: str) -> SystemExit:
    """Exit status 1 with one line ``predict.py: error: <message>`` on stderr, no traceback."""
    return SystemExit(f"predict.py: error: {message}")


def define_flags() -> None:
    from absl import flags  # noqa: PLC0415

    flags.DEFINE_string("model", None, ".keras file, training logdir, SavedModel directory, "
                        ".tflite or .onnx file")
    flags.DEFINE_string("input", None, "an image, a folder of images or a video")
    flags.DEFINE_string("output", None, "output directory (PNGs / MP4 and keypoints.csv)")
    flags.DEFINE_integer("batch_size", 16, "images per model call", lower_bound=1)
    flags.DEFINE_enum("fit", "crop", ["crop", "pad"], "how non-square images become square")
    flags.DEFINE_integer("num_threads", 2, "threads of TFLite / ONNX Runtime", lower_bound=1)


if __name__ == "__main__":
    from absl import app

    define_flags()
    app.run(main)

r"""Detect landmarks with any exported detector and draw them.

    landmarks-predict --model=<.keras | logdir | SavedModel dir | .tflite | .onnx> \
        --input=<image | folder | video> --output=<dir>

(``python trainers/predict.py`` is the same program; ``keras_landmarks.export.predict``
describes what is written.) Prints the model's images/s and the end-to-end rate.
"""

from __future__ import annotations

import logging

from absl import flags

from keras_landmarks.cli._flags import import_tensorflow, run_main
from keras_landmarks.export.predict import list_inputs, predict

logger = logging.getLogger("keras_landmarks.predict")


def main(argv) -> None:
    f = flags.FLAGS
    if len(argv) > 1:
        raise app_usage_error(f"unexpected arguments {argv[1:]}")
    for name in ("model", "input", "output"):
        if not getattr(f, name):
            raise app_usage_error(f"--{name} is required")
    try:
        list_inputs(f.input)  # bad --input fails before TensorFlow is imported
        import_tensorflow()
        from keras_landmarks.export.runners import load_runner  # noqa: PLC0415 (TensorFlow)

        runner = load_runner(f.model, num_threads=f.num_threads)
        stats = predict(runner, f.input, f.output, f.batch_size, f.fit)
    except (ValueError, FileExistsError) as e:
        raise app_usage_error(str(e)) from None
    model_rate = stats["images"] / max(stats["model_seconds"], 1e-9)
    total_rate = stats["images"] / max(stats["total_seconds"], 1e-9)
    logger.info("%d images with %r: model %.1f images/s, end-to-end (decode, resize, draw, encode) "
                "%.1f images/s -> %s", stats["images"], runner, model_rate, total_rate, f.output)


def app_usage_error(message: str) -> SystemExit:
    """Exit status 1 with one line ``predict.py: error: <message>`` on stderr, no traceback."""
    return SystemExit(f"predict.py: error: {message}")


def define_flags() -> None:
    flags.DEFINE_string("model", None, ".keras file, training logdir, SavedModel directory, "
                        ".tflite or .onnx file")
    flags.DEFINE_string("input", None, "an image, a folder of images or a video")
    flags.DEFINE_string("output", None, "output directory (PNGs / MP4 and keypoints.csv)")
    flags.DEFINE_integer("batch_size", 16, "images per model call", lower_bound=1)
    flags.DEFINE_enum("fit", "crop", ["crop", "pad"], "how non-square images become square")
    flags.DEFINE_integer("num_threads", 2, "threads of TFLite / ONNX Runtime", lower_bound=1)


def run() -> None:
    """Console script ``landmarks-predict`` (and ``python trainers/predict.py``)."""
    define_flags()
    run_main(main, "predict.py", __name__)


if __name__ == "__main__":
    run()

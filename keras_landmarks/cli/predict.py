r"""Detect landmarks with any exported detector and draw them.

    landmarks-predict --model=<.keras | logdir | SavedModel dir | .tflite | .onnx> \
        --input=<image | folder | video> --output=<dir>
    landmarks-predict --model=faces photo.jpg        # the shipped face detector, named points

(``python trainers/predict.py`` is the same program; ``keras_landmarks.apps.predict``
describes what is written.) Prints the model's images/s and the end-to-end rate.
"""

from __future__ import annotations

import logging

from absl import flags

from keras_landmarks import pretrained
from keras_landmarks.cli._flags import import_tensorflow, run_main
from keras_landmarks.apps.predict import list_inputs, predict

logger = logging.getLogger("keras_landmarks.predict")


def main(argv) -> None:
    f = flags.FLAGS
    source = f.input
    if len(argv) > 1:
        if f.input or len(argv) > 2:
            raise app_usage_error(f"unexpected arguments {argv[1:]}: give one input, as --input or alone")
        source = argv[1]
    if not f.model:
        raise app_usage_error("--model is required (a model file, or a pretrained detector: "
                              f"{', '.join(pretrained.available()) or 'none installed'})")
    if not source:
        raise app_usage_error("give an input: an image, a folder of images or a video (--input or alone)")
    try:
        list_inputs(source)  # bad --input fails before TensorFlow is imported
        model_path = pretrained.resolve_model(f.model)
        point_map = pretrained.point_map(f.model) if model_path != f.model else None
        import_tensorflow()
        from keras_landmarks.export.runners import load_runner  # noqa: PLC0415 (TensorFlow)

        runner = load_runner(model_path, num_threads=f.num_threads)
        stats = predict(runner, source, f.output, f.batch_size, f.fit, point_map)
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
                        ".tflite or .onnx file, or a pretrained detector's name (faces: writes "
                        "its named points)")
    flags.DEFINE_string("input", None, "an image, a folder of images or a video (or give it alone, "
                        "after the flags)")
    flags.DEFINE_string("output", "landmarks_output", "output directory (PNGs / MP4 and keypoints.csv)")
    flags.DEFINE_integer("batch_size", 16, "images per model call", lower_bound=1)
    flags.DEFINE_enum("fit", "crop", ["crop", "pad"], "how non-square images become square")
    flags.DEFINE_integer("num_threads", 2, "threads of TFLite / ONNX Runtime", lower_bound=1)


def run() -> None:
    """Console script ``landmarks-predict`` (and ``python trainers/predict.py``)."""
    define_flags()
    run_main(main, "predict.py", __name__)


if __name__ == "__main__":
    run()

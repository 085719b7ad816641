r"""Animate a still image with a driving video: ``landmarks-animate``.

    landmarks-animate --model=faces --source=face.jpg --driving=clip.mp4 --output=animation.mp4
    landmarks-animate --model=runs/faces --source=face.jpg --driving=frames/ \
        --output=animation.gif --layout=side_by_side --motion=absolute
    # without Keras: an exported pair (landmarks-export --what=both --output_dir=exported)
    landmarks-animate --detector=exported/detector_float32.tflite \
        --generator=exported/generator_float32.tflite --source=face.jpg --driving=clip.mp4 \
        --output=animation.mp4

(``python trainers/animate.py`` is the same program; ``keras_landmarks.apps.animate``
describes the motion modes, layouts and output formats.)
"""

from __future__ import annotations

import logging

from absl import flags

from keras_landmarks.apps.animate import LAYOUTS, MOTIONS, OUTPUT_EXTENSIONS
from keras_landmarks.cli._flags import import_tensorflow, run_main

logger = logging.getLogger("keras_landmarks.animate")


def main(argv) -> None:
    f = flags.FLAGS
    try:
        if len(argv) > 1:
            raise ValueError(f"unexpected arguments {argv[1:]}")
        if bool(f.model) == bool(f.detector or f.generator):
            raise ValueError("give --model (a .keras file, a training logdir or a pretrained model: faces), "
                             "or an exported pair --detector and --generator, not both")
        if not f.model and not (f.detector and f.generator):
            raise ValueError("an exported pair needs both --detector and --generator "
                             "(landmarks-export --what=both)")
        for required in ("source", "driving", "output"):
            if not getattr(f, required):
                raise ValueError(f"--{required} is required")
        from keras_landmarks.apps import animate  # noqa: PLC0415 (OpenCV, numpy)

        animate.check_driving(f.driving)  # bad input fails before TensorFlow is imported
        animate.read_image(f.source, 8)
        detector, generator = _runners(f)
        stats = animate.animate(detector, generator, f.source, f.driving, f.output, f.motion,
                                f.adapt_scale, f.layout, f.fit, f.display_size, f.batch_size,
                                f.max_frames or None, f.strip_frames, f.fps, progress=f.verbose > 0)
    except (ValueError, FileExistsError) as e:
        raise SystemExit(f"animate.py: error: {e}") from None
    logger.info("%d frames: models %.1f frames/s, end-to-end (decode, resize, draw, encode) %.1f frames/s -> %s",
                stats["frames"], stats["frames"] / max(stats["model_seconds"], 1e-9),
                stats["frames"] / max(stats["total_seconds"], 1e-9), stats["output"])


def _runners(f):
    """(detector runner, generator runner) from ``--model`` or the exported pair."""
    import_tensorflow()  # the loaders import it (quietly here), whatever runs the models
    if f.model:
        from keras_landmarks.export.generator import keras_runners  # noqa: PLC0415

        return keras_runners(f.model)
    from keras_landmarks.export.generator import load_generator  # noqa: PLC0415
    from keras_landmarks.export.runners import load_runner  # noqa: PLC0415

    return (load_runner(f.detector, num_threads=f.num_threads),
            load_generator(f.generator, num_threads=f.num_threads))


def define_flags() -> None:
    """The CLI's flags (defined on demand so importing this module defines none)."""
    flags.DEFINE_string("model", None, "a trained model: .keras file, training logdir, or a pretrained "
                        "model's name (faces)")
    flags.DEFINE_string("detector", None, "instead of --model: an exported detector (.tflite, .onnx or "
                        "SavedModel directory, landmarks-export --what=both)")
    flags.DEFINE_string("generator", None, "instead of --model: the exported generator of the same model")
    flags.DEFINE_string("source", None, "the image to animate (its appearance)")
    flags.DEFINE_string("driving", None, "the motion: a video file or a folder of frames")
    flags.DEFINE_string("output", None, f"the animation; its extension picks the format: "
                        f"{', '.join(OUTPUT_EXTENSIONS)} (a strip of --strip_frames frames)")
    flags.DEFINE_enum("motion", "relative", list(MOTIONS), "relative: the source's points plus the "
                      "driving points' motion since the first frame; absolute: the driving points")
    flags.DEFINE_bool("adapt_scale", False, "relative motion scaled by the ratio of the source's and "
                      "first frame's point spreads (convex-hull areas)")
    flags.DEFINE_enum("layout", "result", list(LAYOUTS), "result only, or source | driving with "
                      "points | result")
    flags.DEFINE_enum("fit", "crop", ["crop", "pad"], "how non-square images become square")
    flags.DEFINE_integer("display_size", 256, "side of each output panel in pixels", lower_bound=16)
    flags.DEFINE_integer("batch_size", 16, "frames per model call", lower_bound=1)
    flags.DEFINE_integer("max_frames", 1000, "stop after this many driving frames (0: no limit; GIF "
                         "and PNG hold their frames in memory)", lower_bound=0)
    flags.DEFINE_integer("strip_frames", 8, "frames in a .png strip", lower_bound=1)
    flags.DEFINE_float("fps", None, "output frame rate (default: the driving video's, 25 for frames)")
    flags.DEFINE_integer("num_threads", 2, "threads of TFLite / ONNX Runtime", lower_bound=1)
    flags.DEFINE_integer("verbose", 1, "0 quiet, 1 progress bar")


def run() -> None:
    """Console script ``landmarks-animate`` (and ``python trainers/animate.py``)."""
    define_flags()
    run_main(main, "animate.py", __name__)


if __name__ == "__main__":
    run()

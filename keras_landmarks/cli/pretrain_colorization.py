r"""Pre-train the perceptual VGG-19 by self-supervised colorization (no labels, no ImageNet).

    landmarks-pretrain-colorization --dataset=celeb_a --steps=50000 \
        --logdir=runs/colorization_celeba
    landmarks-train --dataset=celeb_a \
        --config.perceptual=vgg19:runs/colorization_celeba/vgg19_colorization.weights.h5

(``python trainers/pretrain_colorization.py`` is the same program.)

The network sees only the images' luma and predicts their Lab ab colours (Zhang et al.
2016's quantised, class-rebalanced classification on Larsson et al.'s hypercolumns;
``keras_landmarks/pretraining/colorization/``). Its trunk is a plain VGG-19 for RGB input, written to
``--output`` at every save. Running the same command again after a crash or ``kill``
resumes from the last save (every ``--save_every`` steps). Outputs in ``--logdir``:
``settings.json``, ``prior.json`` (the class-rebalancing prior), ``backup/``,
``tensorboard/`` and, by default, the weights file.
"""

from __future__ import annotations

import math
import os

from absl import flags

from keras_landmarks.cli._flags import (DATASETS, check_data_dir, define_enum_with_aliases, define_run_flags,
                                        fail as _fail, import_tensorflow, run_main, run_reporting_errors)
from keras_landmarks.data import source_name

PROG = "pretrain_colorization.py"

FLAGS = flags.FLAGS
define_enum_with_aliases("dataset", None, DATASETS, "Training images: CelebA (TFDS), a folder "
                         "of images, videos / frame folders, or generated toy faces.")
flags.DEFINE_string("data_dir", None, "folder/video: the folder to read (required). "
                    "celeb_a: the TFDS data_dir (default ~/tensorflow_datasets).")
flags.DEFINE_string("logdir", None, "Output and resume folder (default runs/colorization_<dataset>).")
flags.DEFINE_string("output", None, "The VGG-19 weights file, *.weights.h5 (default "
                    "<logdir>/vgg19_colorization.weights.h5); a fresh run refuses an existing one.")
flags.DEFINE_integer("steps", 100_000, "Total optimizer steps (a resumed run continues to it).")
flags.DEFINE_integer("image_size", None, "Image side, a power of two >= 32 (default: the "
                     "dataset's landmark-training size, 64 for synthetic, 128 otherwise).")
flags.DEFINE_integer("batch_size", 32, "Batch size.")
flags.DEFINE_float("learning_rate", 1e-4, "Adam's learning rate (constant).")
flags.DEFINE_integer("prior_images", 2000, "Images measured for the class-rebalancing prior.")
flags.DEFINE_integer("seed", 0, "Seed of initialisation and data.")
define_run_flags("--output")

for _name in ("steps", "batch_size", "prior_images", "save_every", "summary_every", "image_every"):
    flags.register_validator(_name, lambda v: v is None or v >= 1, message="must be >= 1")
flags.register_validator(
    "image_size", lambda v: v is None or (v >= 32 and math.log2(v) % 1 == 0),
    message="must be a power of two >= 32 (e.g. 64, 128)")
flags.register_validator("learning_rate", lambda v: v > 0, message="must be > 0")
flags.register_validator("output", lambda v: v is None or v.endswith(".weights.h5"),
                         message="must end in .weights.h5 (Keras 3's weights format, what "
                         "landmarks-train --config.perceptual=vgg19:<file> loads)")


flags.register_multi_flags_validator(["dataset", "data_dir"], check_data_dir, message=None)


def fail(message: str, status: int) -> None:
    _fail(PROG, message, status)


def main(argv) -> None:
    if len(argv) > 1:
        fail(f"unexpected arguments {argv[1:]} (flags look like --name=value)", 2)
    dataset = source_name(FLAGS.dataset)
    # TensorFlow is imported only now, after the flags were checked.
    import_tensorflow()
    from keras_landmarks import config  # noqa: PLC0415
    from keras_landmarks.pretraining.colorization import run as colorization_training  # noqa: PLC0415

    image_size = FLAGS.image_size or config.preset(dataset).image_size
    logdir = os.path.expanduser(FLAGS.logdir or os.path.join("runs", f"colorization_{FLAGS.dataset}"))
    run_reporting_errors(PROG, lambda: colorization_training.pretrain(
        dataset, data_dir=os.path.expanduser(FLAGS.data_dir) if FLAGS.data_dir else None,
        image_size=image_size, batch_size=FLAGS.batch_size, steps=FLAGS.steps,
        learning_rate=FLAGS.learning_rate, logdir=logdir,
        output=os.path.expanduser(FLAGS.output) if FLAGS.output else None, seed=FLAGS.seed,
        prior_images=FLAGS.prior_images, save_every=FLAGS.save_every,
        summary_every=FLAGS.summary_every, image_every=FLAGS.image_every, verbose=FLAGS.verbose,
        max_minutes=FLAGS.max_minutes))


def run() -> None:
    """Console script ``landmarks-pretrain-colorization`` (and ``python trainers/pretrain_colorization.py``)."""
    flags.mark_flag_as_required("dataset")
    run_main(main, PROG, __name__)


if __name__ == "__main__":
    run()

r"""Train an unsupervised landmark detector (Jakab et al. 2018); resumes where it stopped.

    landmarks-train --dataset=synthetic --steps=20000 --logdir=runs/faces
    landmarks-train --dataset=celeb_a --data_dir=~/tensorflow_datasets \
        --mafl_dir=/data/MAFL --logdir=runs/celeba
    landmarks-train --dataset=image_folder --data_dir=~/my_faces --preset=real_faces \
        --max_minutes=60 --logdir=runs/my_faces        # real photographs on a CPU
    landmarks-train --flagfile=runs/celeba.flags

(``python trainers/train.py`` is the same program.)
Settings come from the dataset's preset or ``--preset`` (``keras_landmarks.config.PRESETS``); flags given on
the command line (or in a ``--flagfile``) override it. Running the same command again
after a crash or ``kill`` resumes from the last save (every ``--save_every`` steps).
Outputs in ``--logdir``: ``config.json``, ``model.keras``, ``backup/``, ``tensorboard/``.
"""

from __future__ import annotations

import math
import os

from absl import app, flags

from keras_landmarks.cli._flags import (DATASETS, check_data_dir, check_mafl_dir, define_run_flags,
                                        fail as _fail, import_tensorflow, run_main,
                                        run_reporting_errors)
from keras_landmarks.config import NORMALIZATIONS, PRESETS, LandmarkConfig
from keras_landmarks.losses.defaults import PERCEPTUAL_CHOICES

_DEFAULT = LandmarkConfig()

# Flags that override fields of the dataset's LandmarkConfig preset when given.
CONFIG_FLAGS = ("image_size", "num_landmarks", "width", "heatmap_size", "stem_stride", "batch_size",
                "learning_rate", "lr_decay_rate", "lr_decay_steps", "perceptual", "normalization", "weight_ema", "seed")

FLAGS = flags.FLAGS
flags.DEFINE_enum("dataset", None, list(DATASETS), "Training pairs: CelebA (TFDS), a folder "
                  "of images, videos / frame folders, or generated toy faces.")
flags.DEFINE_string("data_dir", None, "image_folder/video: the folder to read (required). "
                    "celeb_a: the TFDS data_dir (default ~/tensorflow_datasets).")
flags.DEFINE_string("mafl_dir", None, "celeb_a only: folder with MAFL training.txt/testing.txt; "
                    "MAFL test images are then left out of training (paper protocol).")
flags.DEFINE_enum("preset", None, list(PRESETS), "Settings to start from (default: the "
                  "--dataset's own); real_faces = the CPU recipe for real photographs, demo = make "
                  "demo's toy-face model. Other "
                  "flags override it.")
flags.DEFINE_string("logdir", None, "Output and resume folder (default runs/<dataset>).")
flags.DEFINE_integer("steps", 100_000, "Total optimizer steps (a resumed run continues to it).")
flags.DEFINE_integer("image_size", _DEFAULT.image_size, "Image side, a power of two >= 16 (preset otherwise).")
flags.DEFINE_integer("num_landmarks", _DEFAULT.num_landmarks, "K, the number of landmarks.")
flags.DEFINE_integer("width", _DEFAULT.width, "Filters of the encoder's first convs (doubling per halving).")
flags.DEFINE_integer("heatmap_size", _DEFAULT.heatmap_size, "Side of the keypoint score maps.")
flags.DEFINE_integer("stem_stride", _DEFAULT.stem_stride, "Stride of the first conv (1 official, 2: the "
                     "networks work at half the image size; the faces preset).", lower_bound=1, upper_bound=2)
flags.DEFINE_integer("batch_size", _DEFAULT.batch_size, "Global batch size (split over replicas/workers).")
flags.DEFINE_float("learning_rate", _DEFAULT.learning_rate, "Adam's initial learning rate.")
flags.DEFINE_float("lr_decay_rate", _DEFAULT.lr_decay_rate, "Learning-rate factor every --lr_decay_steps (staircase).")
flags.DEFINE_integer("lr_decay_steps", _DEFAULT.lr_decay_steps, "Steps between learning-rate decays.")
flags.DEFINE_string("perceptual", _DEFAULT.perceptual, "Reconstruction loss: vgg19_imagenet, "
                    "vgg19:<weights .h5>, vgg19_random, l2 (pixels) or l2_grad (pixels and their "
                    "x/y differences).")
flags.DEFINE_enum("normalization", _DEFAULT.normalization, list(NORMALIZATIONS),
                  "After each conv: BatchNorm (official), GroupNorm (batch-size independent) or none.")
flags.DEFINE_float("weight_ema", _DEFAULT.weight_ema, "Momentum of a moving average of the weights, "
                   "saved as model.keras (e.g. 0.99; 0: off). The demo preset uses 0.99.")
flags.DEFINE_integer("seed", _DEFAULT.seed, "Seed of initialisation and data.")
flags.DEFINE_enum("strategy", "auto", ["auto", "one_device", "mirrored", "data_parallel", "multi_worker", "tpu"],
                  "Distribution: auto = all GPUs when there are several; multi_worker reads "
                  "TF_CONFIG; tpu = Colab/Cloud TPU (those three: TensorFlow); data_parallel = "
                  "MirroredStrategy on TensorFlow, keras.distribution.DataParallel on JAX.")
flags.DEFINE_enum("backend", None, ["tensorflow", "jax", "torch"], "Keras backend (default: "
                  "$KERAS_BACKEND, else tensorflow). JAX and PyTorch train without TensorFlow "
                  "with --pipeline=numpy (image_folder).")
flags.DEFINE_enum("pipeline", "auto", ["auto", "tf_data", "numpy"], "Data path: tf.data (every "
                  "source), numpy (keras.utils.PyDataset + OpenCV, no TensorFlow; image_folder), "
                  "auto = tf_data when TensorFlow is installed.")
flags.DEFINE_enum("mixed_precision", "none", ["none", "mixed_float16", "mixed_bfloat16"],
                  "Keras mixed-precision policy (float16 adds dynamic loss scaling).")
flags.DEFINE_bool("jit_compile", None, "Compile the train step (XLA; torch.compile on PyTorch). "
                  "Default: on under JAX only, the fastest setting of each backend on a CPU "
                  "(bench/train_step.py).")
define_run_flags("model.keras", " Not with multi_worker.")

for _name in ("steps", "image_size", "num_landmarks", "width", "heatmap_size", "batch_size",
              "lr_decay_steps", "save_every", "summary_every", "image_every"):
    flags.register_validator(_name, lambda v: v is None or v >= 1, message="must be >= 1")
flags.register_validator(
    "image_size", lambda v: v >= 16 and math.log2(v) % 1 == 0,
    message="must be a power of two >= 16 (e.g. 64, 128)")
flags.register_validator("learning_rate", lambda v: v > 0, message="must be > 0")
flags.register_validator("weight_ema", lambda v: 0 <= v < 1, message="must be in [0, 1) (0: off)")


flags.register_multi_flags_validator(["dataset", "data_dir"], check_data_dir, message=None)
flags.register_multi_flags_validator(["dataset", "mafl_dir"], check_mafl_dir, message=None)


@flags.validator("perceptual")
def _check_perceptual(value):
    kind, _, path = value.partition(":")
    if value not in PERCEPTUAL_CHOICES and kind != "vgg19":
        raise flags.ValidationError(
            f"--perceptual={value}: use vgg19_imagenet, vgg19:<weights .h5>, vgg19_random, l2 or l2_grad")
    if kind == "vgg19" and not os.path.isfile(os.path.expanduser(path)):
        raise flags.ValidationError(f"--perceptual={value}: no such weights file {path!r}")
    return True


def fail(message: str, status: int) -> None:
    _fail("train.py", message, status)


def main(argv) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]} (flags look like --name=value)")
    if FLAGS.backend:  # before Keras is imported (it reads the variable once)
        os.environ["KERAS_BACKEND"] = FLAGS.backend
    # TensorFlow is imported only now, after the flags were checked, and only for its backend.
    if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
        import_tensorflow()
    from keras_landmarks import config, training  # noqa: PLC0415

    overrides = {name: FLAGS[name].value for name in CONFIG_FLAGS if FLAGS[name].present}
    if "perceptual" in overrides and overrides["perceptual"].startswith("vgg19:"):
        overrides["perceptual"] = "vgg19:" + os.path.expanduser(overrides["perceptual"][6:])
    try:
        cfg = config.preset(FLAGS.preset or FLAGS.dataset, **overrides)
    except ValueError as err:
        fail(str(err), 2)
    data_dir = os.path.expanduser(FLAGS.data_dir) if FLAGS.data_dir else None
    run_reporting_errors("train.py", lambda: training.train(
        cfg, dataset=FLAGS.dataset, data_dir=data_dir, steps=FLAGS.steps,
        logdir=FLAGS.logdir or os.path.join("runs", FLAGS.dataset), strategy=FLAGS.strategy,
        mixed_precision=FLAGS.mixed_precision, jit_compile=FLAGS.jit_compile,  # None: "auto"
        save_every=FLAGS.save_every, summary_every=FLAGS.summary_every,
        image_every=FLAGS.image_every, verbose=FLAGS.verbose, max_minutes=FLAGS.max_minutes,
        data_kwargs={"mafl_dir": os.path.expanduser(FLAGS.mafl_dir)} if FLAGS.mafl_dir else None,
        pipeline=FLAGS.pipeline))


def run() -> None:
    """Console script ``landmarks-train`` (and ``python trainers/train.py``)."""
    flags.mark_flag_as_required("dataset")
    run_main(main, "train.py", __name__)


if __name__ == "__main__":
    run()

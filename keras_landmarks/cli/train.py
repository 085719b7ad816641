r"""Train an unsupervised landmark detector (Jakab et al. 2018); resumes where it stopped.

    landmarks-train --dataset=synthetic --steps=20000 --logdir=runs/faces
    landmarks-train --dataset=celeb_a --data_dir=~/tensorflow_datasets \
        --mafl_dir=/data/MAFL --logdir=runs/celeba
    landmarks-train --dataset=folder --data_dir=~/my_faces --preset=real_faces \
        --max_minutes=60 --logdir=runs/my_faces        # real photographs on a CPU
    landmarks-train --dataset=video --data_dir=~/clips --data.tps --data.cache_dir=~/cache \
        --config.gaussian_sigma=0.08 --config.source_warp.rotation_deg=10 --print_config
    landmarks-train --flagfile=runs/celeba.flags

(``python trainers/train.py`` is the same program.)
Settings: ``LandmarkConfig``'s defaults, then the preset (``--preset``, default: the
``--dataset``'s own; ``keras_landmarks.config.PRESETS``), then ``--config.<field>`` flags
(every field; ``--config.target_warp.a`` for the warps). ``--data.<option>`` sets an option of
the source (video: ``tps``, ``max_offset``, ``cache_dir``, ...). ``--print_config`` prints the
result and exits; docs/configuration.md lists every field. Running the same command again
after a crash or ``kill`` resumes from the last save (every ``--save_every`` steps).
Outputs in ``--logdir``: ``config.json``, ``model.keras``, ``backup/``, ``tensorboard/``.
"""

from __future__ import annotations

import json
import logging
import os
import sys

from absl import app, flags
from absl import logging as absl_logging

from keras_landmarks.cli import _config_flags
from keras_landmarks.cli._flags import (DATASETS, check_data_dir, check_mafl_dir, define_enum_with_aliases,
                                        define_run_flags, fail as _fail, import_tensorflow, run_main,
                                        run_reporting_errors)
from keras_landmarks.data import source_name

# landmarks-train's config flags before --config.<field> (issue 29): deprecated aliases now.
LEGACY_CONFIG_FLAGS = ("image_size", "num_landmarks", "width", "heatmap_size", "stem_stride", "batch_size",
                       "learning_rate", "lr_decay_rate", "lr_decay_steps", "perceptual", "normalization",
                       "weight_ema", "seed")

logger = logging.getLogger("keras_landmarks.train")

FLAGS = flags.FLAGS
define_enum_with_aliases("dataset", None, DATASETS, "Training pairs: CelebA (TFDS), a folder of "
                         "images, videos / frame folders, or generated toy faces. Its preset is the "
                         "default settings (--preset).")
flags.DEFINE_string("data_dir", None, "folder/video: the folder to read (required). "
                    "celeb_a: the TFDS data_dir (default ~/tensorflow_datasets).")
flags.DEFINE_string("mafl_dir", None, "celeb_a only: folder with MAFL training.txt/testing.txt; "
                    "MAFL test images are then left out of training (paper protocol).")
flags.DEFINE_string("logdir", None, "Output and resume folder (default runs/<dataset>).")
flags.DEFINE_integer("steps", 100_000, "Total optimizer steps (a resumed run continues to it).")
flags.DEFINE_enum("strategy", "auto", ["auto", "one_device", "mirrored", "data_parallel", "multi_worker", "tpu"],
                  "Distribution: auto = all GPUs when there are several; multi_worker reads "
                  "TF_CONFIG; tpu = Colab/Cloud TPU (those three: TensorFlow); data_parallel = "
                  "MirroredStrategy on TensorFlow, keras.distribution.DataParallel on JAX.")
flags.DEFINE_enum("backend", None, ["tensorflow", "jax", "torch"], "Keras backend (default: "
                  "$KERAS_BACKEND, else tensorflow). JAX and PyTorch train without TensorFlow "
                  "with --pipeline=numpy (folder).")
flags.DEFINE_enum("pipeline", "auto", ["auto", "tf_data", "numpy"], "Data path: tf.data (every "
                  "source), numpy (keras.utils.PyDataset + OpenCV, no TensorFlow; folder), "
                  "auto = tf_data when TensorFlow is installed.")
flags.DEFINE_enum("mixed_precision", "none", ["none", "mixed_float16", "mixed_bfloat16"],
                  "Keras mixed-precision policy (float16 adds dynamic loss scaling).")
flags.DEFINE_bool("jit_compile", None, "Compile the train step (XLA; torch.compile on PyTorch). "
                  "Default: on under JAX only, the fastest setting of each backend on a CPU "
                  "(bench/train_step.py).")
define_run_flags("model.keras", " Not with multi_worker.")
_config_flags.define_config_flags(LEGACY_CONFIG_FLAGS)
_config_flags.define_data_flags()

for _name in ("steps", "save_every", "summary_every", "image_every"):
    flags.register_validator(_name, lambda v: v is None or v >= 1, message="must be >= 1")
flags.register_multi_flags_validator(["dataset", "data_dir"], check_data_dir, message=None)
flags.register_multi_flags_validator(["dataset", "mafl_dir"], check_mafl_dir, message=None)


def fail(message: str, status: int) -> None:
    _fail("train.py", message, status)


def main(argv) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]} (flags look like --name=value)")
    if FLAGS.print_config:  # stdout is the JSON alone: log lines (deprecations) go to stderr
        absl_logging.get_absl_handler().python_handler.stream = sys.stderr
    dataset = source_name(FLAGS.dataset)
    for line in _config_flags.deprecation_lines():
        logger.warning("%s", line)
    try:
        cfg = _config_flags.resolve_config(dataset)
        data_kwargs = _config_flags.data_options(dataset, FLAGS.pipeline)
    except ValueError as err:
        fail(str(err), 2)
    if FLAGS.mafl_dir:
        data_kwargs["mafl_dir"] = os.path.expanduser(FLAGS.mafl_dir)
    if FLAGS.print_config:
        print(json.dumps({"preset": source_name(FLAGS.preset or dataset, warn=False), "dataset": dataset,
                          "config": cfg.to_dict(), "data_kwargs": data_kwargs}, indent=2, sort_keys=True))
        return
    if FLAGS.backend:  # before Keras is imported (it reads the variable once)
        os.environ["KERAS_BACKEND"] = FLAGS.backend
    # TensorFlow is imported only now, after the flags were checked, and only for its backend.
    if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
        import_tensorflow()
    from keras_landmarks import training  # noqa: PLC0415

    data_dir = os.path.expanduser(FLAGS.data_dir) if FLAGS.data_dir else None
    run_reporting_errors("train.py", lambda: training.train(
        cfg, dataset=dataset, data_dir=data_dir, steps=FLAGS.steps,
        logdir=FLAGS.logdir or os.path.join("runs", FLAGS.dataset), strategy=FLAGS.strategy,  # as given: resumes
        mixed_precision=FLAGS.mixed_precision, jit_compile=FLAGS.jit_compile,  # None: "auto"
        save_every=FLAGS.save_every, summary_every=FLAGS.summary_every,
        image_every=FLAGS.image_every, verbose=FLAGS.verbose, max_minutes=FLAGS.max_minutes,
        data_kwargs=data_kwargs or None, pipeline=FLAGS.pipeline), data_flags=_data_flags(data_kwargs))


def _data_flags(data_kwargs: dict) -> dict[str, str]:
    """``{option: "--data.<option>=<value>"}`` of the options given, for setup errors."""
    return {k: f"--{_config_flags.DATA}{k}={v}" for k, v in data_kwargs.items() if k != "mafl_dir"}


def run() -> None:
    """Console script ``landmarks-train`` (and ``python trainers/train.py``)."""
    flags.mark_flag_as_required("dataset")
    run_main(main, "train.py", __name__, _config_flags.__name__)


if __name__ == "__main__":
    run()

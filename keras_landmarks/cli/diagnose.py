r"""Is this model learning? Label-free diagnostics of a saved model on its training data.

    landmarks-diagnose --model=runs/faces --dataset=folder --data_dir=path/to/images
    landmarks-diagnose --model=runs/demo --dataset=synthetic

(``python trainers/diagnose.py`` is the same program.) Draws ``--num_images`` training pairs
of the source (the model's own warps) and prints the equivariance error, the keypoints'
spread (collapsed and border keypoints) and the renderer's reliance on the keypoints
(``keras_landmarks.evaluation.diagnostics``; README "Is my run learning?"); ``--output``
also writes them as JSON. No labels are needed.
"""

from __future__ import annotations

import json
import logging
import os

from absl import flags

from keras_landmarks.cli._flags import (DATASETS, check_data_dir, define_enum_with_aliases, import_tensorflow,
                                        require_model, run_main)
from keras_landmarks.data import source_name

logger = logging.getLogger("keras_landmarks.diagnose")

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "A .keras LandmarkModel, or a training logdir holding model.keras.")
define_enum_with_aliases("dataset", None, DATASETS, "Training source to draw the pairs from.")
flags.DEFINE_string("data_dir", None, "folder/video: the folder (celeb_a: the TFDS data_dir).")
flags.DEFINE_integer("num_images", 32, "Pairs in the diagnostic batch (>= 2).", lower_bound=2)
flags.DEFINE_integer("seed", 0, "Seed of the pairs and of the equivariance warps.")
flags.DEFINE_string("output", None, "Also write the values here as JSON.")
flags.register_multi_flags_validator(["dataset", "data_dir"], check_data_dir, message=None)


def main(argv) -> None:
    require_model(argv)
    dataset = source_name(FLAGS.dataset)
    import_tensorflow()
    import keras  # noqa: PLC0415

    from keras_landmarks import data  # noqa: PLC0415
    from keras_landmarks.evaluation import diagnostics, resolve_model_path  # noqa: PLC0415

    try:
        model = keras.models.load_model(resolve_model_path(FLAGS.model))
        cfg = model.config
        data_dir = os.path.expanduser(FLAGS.data_dir) if FLAGS.data_dir else None
        pairs = data.training_pairs(dataset, data_dir=data_dir, image_size=cfg.image_size,
                                    batch_size=FLAGS.num_images, seed=FLAGS.seed,
                                    target_warp=cfg.target_warp, source_warp=cfg.source_warp)
        batch = {k: v for k, v in next(iter(pairs.take(1))).items() if k in ("image", "future_image", "mask")}
    except (OSError, ValueError) as err:
        raise SystemExit(f"diagnose.py: error: {err}") from None
    values = diagnostics.diagnose(model, batch, seed=(FLAGS.seed, 1))
    logger.info("%s (%d pairs of %s): %s", FLAGS.model, FLAGS.num_images, dataset,
                diagnostics.format_diagnostics(values))
    if FLAGS.output:
        with open(FLAGS.output, "w") as f:
            json.dump(values, f, indent=2)


def run() -> None:
    """Console script ``landmarks-diagnose`` (and ``python trainers/diagnose.py``)."""
    flags.mark_flag_as_required("dataset")
    run_main(main, "diagnose.py", __name__)


if __name__ == "__main__":
    run()

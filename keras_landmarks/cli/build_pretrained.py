r"""Pack a trained model into the package as a shipped detector (maintainers).

    python trainers/build_pretrained.py --model=<logdir of bench/learning_curve.py> --name=faces \
        --labelled=../shared/data/ytfaces,../shared/data/helen --command="<the training command>"

Writes ``keras_landmarks/pretrained/<name>/`` (``apps.build_pretrained``): the model, TFLite
float32 and int8, and ``card.json`` with the point map fitted on the labelled sets' train
splits, each set's test error, the training record (``--command``; steps and training
seconds from ``<logdir>/curve.json`` when present; this machine's CPU) and the outputs the
tests check. README "Pretrained detectors" has the command that made ``faces``.
"""

from __future__ import annotations

import json
import logging
import os

from absl import flags

from keras_landmarks.cli._flags import import_tensorflow, run_main

logger = logging.getLogger("keras_landmarks.build_pretrained")

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "The trained LandmarkModel: a .keras file or a folder holding model.keras.")
flags.DEFINE_string("name", "faces", "The detector's name (its folder under keras_landmarks/pretrained/).")
flags.DEFINE_list("labelled", None, "Annotated folders (landmarks.csv with a split column and the 5 points "
                  "le, re, n, lm, rm): the point map's train images and the reported test errors.")
flags.DEFINE_string("command", "", "The command that trained the model (recorded in the card).")
flags.mark_flags_as_required(["model", "labelled"])


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
    except OSError:
        return "unknown"
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "")
    isa = "AVX-512" if "avx512f" in info else "AVX2" if "avx2" in info else "no AVX2"
    return f"{os.cpu_count()}-core {name} ({isa})"


def main(argv) -> None:
    if len(argv) > 1:
        raise SystemExit(f"build_pretrained.py: error: unexpected arguments {argv[1:]}")
    folder = FLAGS.model if os.path.isdir(FLAGS.model) else os.path.dirname(FLAGS.model)
    model_file = os.path.join(FLAGS.model, "model.keras") if os.path.isdir(FLAGS.model) else FLAGS.model
    if not os.path.isfile(model_file):
        raise SystemExit(f"build_pretrained.py: error: --model={FLAGS.model}: no model.keras there")
    training = {"command": FLAGS.command, "machine": _cpu()}
    curve = os.path.join(folder, "curve.json")
    if os.path.isfile(curve):
        with open(curve) as f:
            training.update(json.load(f))
    import_tensorflow()
    from keras_landmarks.apps.build_pretrained import build  # noqa: PLC0415 (TensorFlow)

    card = build(model_file, FLAGS.name, FLAGS.labelled, training=training)
    logger.info("%s: %s; files %s", FLAGS.name, json.dumps(card["evaluation"]), card["files_bytes"])


def run() -> None:
    """``python trainers/build_pretrained.py``."""
    run_main(main, "build_pretrained.py", __name__)


if __name__ == "__main__":
    run()

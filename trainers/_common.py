"""Flag checks shared by the training CLIs (``train.py``, ``pretrain_colorization.py``).

Imports absl only, not TensorFlow: the CLIs check their flags before the slow import, so a
bad flag is answered at once.
"""

from __future__ import annotations

import os
import sys

from absl import flags

# keras_landmarks.data.TRAINING_SOURCES, repeated here to keep TensorFlow out of flag parsing
# (tests/test_train.py checks that the two agree).
DATASETS = ("celeb_a", "image_folder", "video", "synthetic")


def check_data_dir(values: dict) -> bool:
    """absl multi-flag validator of ``--dataset`` / ``--data_dir``."""
    name, data_dir = values["dataset"], values["data_dir"]
    if name in ("image_folder", "video") and not data_dir:
        raise flags.ValidationError(f"--dataset={name} needs --data_dir (the folder to read)")
    if data_dir and name != "synthetic" and not os.path.isdir(os.path.expanduser(data_dir)):
        raise flags.ValidationError(f"--data_dir={data_dir} is not a folder")
    if name == "synthetic" and data_dir:
        raise flags.ValidationError("--dataset=synthetic is generated and reads no --data_dir")
    return True


def define_run_flags(saved: str, max_minutes_note: str = "") -> None:
    """The run-control flags both training CLIs share: ``--save_every`` (what ``saved``
    names, plus the resume state), ``--summary_every``, ``--image_every``, ``--verbose``,
    ``--max_minutes``."""
    flags.DEFINE_integer("save_every", 1000, f"Steps between saves of {saved} and the resume state.")
    flags.DEFINE_integer("summary_every", 100, "Steps between TensorBoard scalars.")
    flags.DEFINE_integer("image_every", None, "Steps between TensorBoard images (default --save_every).")
    flags.DEFINE_integer("verbose", 1, "0 quiet, 1 progress bar, 2 one progress line per 5 %.")
    flags.DEFINE_float("max_minutes", None, "Also stop (and save) after this many minutes of "
                       "training; the same command continues toward --steps." + max_minutes_note)
    flags.register_validator("max_minutes", lambda v: v is None or v > 0, message="must be > 0")


def fail(prog: str, message: str, status: int) -> None:
    """Print ``<prog>: error: <message>`` to stderr and exit with ``status``."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    sys.exit(status)


def flags_parser(prog: str):
    """``app.run(main, flags_parser=flags_parser(prog))``: absl's parsing, but a bad flag is
    one ``<prog>: error: ...`` line on stderr and exit status 2 (no absl banner)."""

    def parse(argv: list[str]) -> list[str]:
        try:
            return flags.FLAGS(argv)
        except flags.Error as err:
            fail(prog, str(err), 2)

    return parse


def run_reporting_errors(prog: str, train) -> None:
    """Call ``train()``; its expected failures become one ``<prog>: error:`` line and an exit
    status: bad settings or data 2, a NaN loss 1, Ctrl-C 130 (the last save is kept)."""
    from keras_landmarks.training import TrainingSetupError  # noqa: PLC0415 (TensorFlow)

    try:
        train()
    except TrainingSetupError as err:
        fail(prog, str(err), 2)
    except FloatingPointError as err:
        fail(prog, str(err), 1)
    except KeyboardInterrupt:
        fail(prog, "interrupted; run the same command again to resume from the last save", 130)

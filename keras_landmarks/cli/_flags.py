"""What every CLI shares: flag checks, ``--help`` listing every flag, a quiet TensorFlow start,
logging through absl, one error line per failure.

Imports absl only, not TensorFlow: the CLIs check their flags before the slow import, so a
bad flag (or ``--help``) is answered at once.
"""

from __future__ import annotations

import logging
import os
import re
import sys

from absl import app, flags
from absl import logging as absl_logging

from keras_landmarks._internal.quiet import TF_LOGS_ENV, native_stderr_muted, tf_logs_wanted

# The training sources' names: keras_landmarks.data imports no TensorFlow.
from keras_landmarks.data import DEPRECATED_SOURCES, source_name
from keras_landmarks.data import TRAINING_SOURCES as DATASETS  # noqa: E402, F401 (for the CLIs)

HELP_FLAGS = {"--help", "-help", "-h", "-?", "--helpshort", "--helpfull", "--helpxml"}

flags.DEFINE_bool("tf_logs", False, "Show TensorFlow's C++ start-up and runtime log lines (also: "
                  f"{TF_LOGS_ENV}=1).")


class _NamesParser(flags.EnumParser):
    """An enum that also takes the deprecated names of its values, as given (the CLI maps them
    with ``data.source_name``, which logs the deprecation line)."""

    def __init__(self, names, aliases: dict[str, str]):
        super().__init__(list(names))
        self.aliases = {old: new for old, new in aliases.items() if new in names}

    def parse(self, argument):
        return argument if argument in self.aliases else super().parse(argument)


def define_enum_with_aliases(name: str, default: str | None, names, help: str,  # noqa: A002 (absl's name)
                             aliases: dict[str, str] = DEPRECATED_SOURCES, flag_values=flags.FLAGS) -> None:
    """``flags.DEFINE_enum``, but the deprecated names in ``aliases`` (old -> new; by default
    the sources' old names) are accepted too; ``--help`` lists the current names only."""
    flag = flags.EnumFlag(name, default, help, list(names))
    flag.parser = _NamesParser(names, aliases)
    flags.DEFINE_flag(flag, flag_values)


def check_data_dir(values: dict) -> bool:
    """absl multi-flag validator of ``--dataset`` / ``--data_dir``."""
    given, data_dir = values["dataset"], values["data_dir"]
    name = given and source_name(given, warn=False)
    if name in ("folder", "video") and not data_dir:
        raise flags.ValidationError(f"--dataset={given} needs --data_dir (the folder to read)")
    if data_dir and name != "synthetic" and not os.path.isdir(os.path.expanduser(data_dir)):
        raise flags.ValidationError(f"--data_dir={data_dir} is not a folder")
    if name == "synthetic" and data_dir:
        raise flags.ValidationError("--dataset=synthetic is generated and reads no --data_dir")
    return True


def check_mafl_dir(values: dict) -> bool:
    """absl multi-flag validator of ``--dataset`` / ``--mafl_dir``: MAFL is for ``celeb_a`` only."""
    name, mafl_dir = values["dataset"], values["mafl_dir"]
    if mafl_dir and name != "celeb_a":
        raise flags.ValidationError(f"--mafl_dir is for --dataset=celeb_a (the MAFL splits of "
                                    f"CelebA), not --dataset={name}")
    if mafl_dir and not os.path.isdir(os.path.expanduser(mafl_dir)):
        raise flags.ValidationError(f"--mafl_dir={mafl_dir} is not a folder")
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


def require_model(argv: list[str]) -> None:
    """What the CLIs that read a saved model check first: no positional arguments, ``--model``
    given (absl usage errors, exit 1)."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not flags.FLAGS.model:
        raise app.UsageError("--model is required (a .keras file or a training logdir)")


def fail(prog: str, message: str, status: int) -> None:
    """Print ``<prog>: error: <message>`` to stderr and exit with ``status``."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    sys.exit(status)


def flags_parser(prog: str):
    """``app.run(main, flags_parser=flags_parser(prog))``: absl's parsing, but a bad flag is
    one ``<prog>: error: ...`` line on stderr and exit status 2 (no absl banner), and
    ``--help`` exits 0."""

    def parse(argv: list[str]) -> list[str]:
        try:
            return flags.FLAGS(argv)
        except flags.Error as err:
            fail(prog, str(err), 2)
        except SystemExit as done:  # absl exits 1 after printing the help it was asked for
            if done.code == 1 and set(argv[1:]) & HELP_FLAGS:
                sys.exit(0)
            raise

    return parse


def run_reporting_errors(prog: str, train, data_flags: dict[str, str] | None = None) -> None:
    """Call ``train()``; its expected failures become one ``<prog>: error:`` line and an exit
    status: bad settings or data 2, a NaN loss 1, Ctrl-C 130 (the last save is kept). A setup
    error naming an option of ``data_flags`` (``{option: "--data.<option>=<value>"}``) starts
    with that flag."""
    if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
        import_tensorflow()
    from keras_landmarks.training import TrainingSetupError  # noqa: PLC0415 (Keras)

    try:
        train()
    except TrainingSetupError as err:
        named = [flag for name, flag in (data_flags or {}).items() if re.search(rf"\b{name}\b", str(err))]
        fail(prog, "".join(f"{flag}: " for flag in named) + str(err), 2)
    except FloatingPointError as err:
        fail(prog, str(err), 1)
    except KeyboardInterrupt:
        fail(prog, "interrupted; run the same command again to resume from the last save", 130)


def import_tensorflow() -> None:
    """Import TensorFlow without its C++ start-up lines (``keras_landmarks._internal.quiet``), unless
    ``--tf_logs`` or ``$KERAS_LANDMARKS_TF_LOGS`` asks for them."""
    if flags.FLAGS.is_parsed() and flags.FLAGS.tf_logs:
        os.environ[TF_LOGS_ENV] = "1"  # the library's later native calls show theirs too
    if not tf_logs_wanted():
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with native_stderr_muted():
        try:
            import tensorflow as tf  # noqa: PLC0415
        except ImportError as err:
            prog = os.path.basename(sys.argv[0] or "keras-landmarks")
            sys.exit(f"{prog}: error: this program needs TensorFlow ({err}): pip install "
                     "'keras-landmarks[tensorflow]'. Training alone runs without it: "
                     "landmarks-train --backend=jax --pipeline=numpy (or torch).")

        tf.config.list_physical_devices()


class _PlainFormatter(logging.Formatter):
    """INFO lines as they are; warnings and errors prefixed with their level."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        return message if record.levelno <= logging.INFO else f"{record.levelname.lower()}: {message}"


def use_absl_logging() -> None:
    """Route the library's ``logging`` through absl's handler: plain lines on stdout, the
    library's INFO and up, other libraries' WARNING and up."""
    handler = absl_logging.get_absl_handler()
    handler.setFormatter(_PlainFormatter())
    # Log lines join the progress bar on stdout; a failed run's one error line (fail) is on stderr.
    handler.python_handler.stream = sys.stdout
    # INFO lines from this library only: TensorFlow's, tf2onnx's and absl's own stay at WARNING.
    absl_logging.set_verbosity(absl_logging.WARNING)
    logging.getLogger("keras_landmarks").setLevel(logging.INFO)


def show_in_help(*module_names: str) -> None:
    """List the flags defined in ``module_names`` (and this module's) under ``--help``.

    absl's ``--help`` shows only the main module's flags (``sys.argv[0]``); a console script
    or ``trainers/*.py`` imports the CLI module, so its flags would need ``--helpfull``.
    """
    for module in (*module_names, __name__):
        for flag in flags.FLAGS.get_key_flags_for_module(module):
            flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)


def run_main(main, prog: str, *module_names: str) -> None:
    """``app.run(main)`` with every flag in ``--help``, absl logging, and flag errors as one
    ``<prog>: error:`` line (exit 2)."""
    show_in_help(*module_names)
    app.call_after_init(use_absl_logging)
    app.run(main, flags_parser=flags_parser(prog))

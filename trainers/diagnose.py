"""Label-free diagnostics of a saved model: ``landmarks-diagnose`` (keras_landmarks.cli.diagnose).

Needs the package installed (``pip install -e .`` in the repository, or ``make demo`` / ``make test``,
which do it); ``--help`` lists every flag.
"""

try:
    from keras_landmarks.cli.diagnose import run
except ModuleNotFoundError as err:  # not installed: say what to do instead of a traceback
    if err.name not in ("keras_landmarks", "absl"):
        raise
    raise SystemExit(f"trainers/diagnose.py: error: {err.name} is not installed; run "
                     "'pip install -e .' in the repository (or 'make test', which does)") from None

if __name__ == "__main__":
    run()

"""Detect and draw landmarks with any exported detector: ``landmarks-predict``.

Needs the package installed (``pip install -e .`` in the repository, or ``make demo`` / ``make test``,
which do it); ``--help`` lists every flag.
"""

try:
    from keras_landmarks.cli.predict import run
except ModuleNotFoundError as err:  # not installed: say what to do instead of a traceback
    if err.name not in ("keras_landmarks", "absl"):
        raise
    raise SystemExit(f"trainers/predict.py: error: {err.name} is not installed; run "
                     "'pip install -e .' in the repository (or 'make test', which does)") from None

if __name__ == "__main__":
    run()

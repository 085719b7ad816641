"""Evaluate a detector with the paper's protocol: ``landmarks-evaluate`` (keras_landmarks.cli.evaluate).

Needs the package installed (``pip install -e .`` in the repository, or ``make demo`` / ``make test``,
which do it); ``--help`` lists every flag.
"""

try:
    from keras_landmarks.cli.evaluate import run
except ModuleNotFoundError as err:  # not installed: say what to do instead of a traceback
    if err.name not in ("keras_landmarks", "absl"):
        raise
    raise SystemExit(f"trainers/evaluate.py: error: {err.name} is not installed; run "
                     "'pip install -e .' in the repository (or 'make test', which does)") from None

if __name__ == "__main__":
    run()

"""Label-free diagnostics of a saved model: ``landmarks-diagnose`` (keras_landmarks.cli.diagnose).

Needs the package installed (``pip install -e .``, or ``make demo`` / ``make test``, which do it);
``--help`` lists every flag.
"""

from _launch import launch

if __name__ == "__main__":
    launch("diagnose")

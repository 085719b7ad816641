"""Train a landmark detector: the same program as ``landmarks-train`` (keras_landmarks.cli.train).

Needs the package installed (``pip install -e .``, or ``make demo`` / ``make test``, which do it);
``--help`` lists every flag.
"""

from _launch import launch

if __name__ == "__main__":
    launch("train")

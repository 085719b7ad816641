"""Evaluate a detector with the paper's protocol: ``landmarks-evaluate`` (keras_landmarks.cli.evaluate).

Needs the package installed (``pip install -e .``, or ``make demo`` / ``make test``, which do it);
``--help`` lists every flag.
"""

from _launch import launch

if __name__ == "__main__":
    launch("evaluate")

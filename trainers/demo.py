"""The main job (``make demo``): learn toy-face landmarks, evaluate, export (keras_landmarks.cli.demo).

Needs the package installed (``pip install -e .``, or ``make demo`` / ``make test``, which do it);
``--help`` lists every flag.
"""

from _launch import launch

if __name__ == "__main__":
    launch("demo")

"""Pack a trained model into the package as a shipped detector (``keras_landmarks.cli.build_pretrained``).

Needs the package installed (``pip install -e .``, or ``make demo`` / ``make test``, which do it).
"""

from _launch import launch

if __name__ == "__main__":
    launch("build_pretrained")

"""Export a detector to SavedModel, TFLite and ONNX: ``landmarks-export`` (keras_landmarks.cli.export).

Needs the package installed (``pip install -e .``, or ``make demo`` / ``make test``, which do it);
``--help`` lists every flag.
"""

from _launch import launch

if __name__ == "__main__":
    launch("export")

"""Open any exported detector as a ``serving.Runner``: ``.keras`` / logdir, SavedModel, TFLite, ONNX."""

from __future__ import annotations

import os

from keras_landmarks.export import to_onnx, to_saved_model, to_tflite
from keras_landmarks.export.serving import KerasRunner, Runner


def load_runner(path: str, **kwargs) -> Runner:
    """Open a ``.keras`` file / training logdir, SavedModel dir, ``.tflite`` or ``.onnx``.

    ``kwargs`` go to the format's loader (e.g. ``num_threads`` for TFLite / ONNX).
    Raises ``ValueError`` with the path and what to do when it is missing or unreadable.
    """
    if not os.path.exists(path):
        raise ValueError(f"model {path!r} does not exist: pass a .keras file, a training "
                         "logdir, a SavedModel directory, a .tflite or a .onnx file")
    if path.endswith(".tflite"):
        return to_tflite.load(path, **kwargs)
    if path.endswith(".onnx"):
        return to_onnx.load(path, **kwargs)
    if path.endswith(".keras") or os.path.isfile(os.path.join(path, "model.keras")):
        return KerasRunner(path, **kwargs)
    if os.path.isdir(path):
        return to_saved_model.load(path, **kwargs)
    raise ValueError(f"{path}: unknown model format; expected .keras, a training logdir, "
                     "a SavedModel directory, .tflite or .onnx")


__all__ = ["load_runner"]

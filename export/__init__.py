"""Deployment of the keypoint detector: SavedModel, TFLite and ONNX exports.

Modules: ``detector`` (the deployable contract and the ``Runner`` interface),
``saved_model``, ``tflite``, ``onnx`` (export + load), ``parity`` (exported vs Keras),
and the CLIs ``export.py`` and ``predict.py``.
"""

"""Export (the deployable detector): one serving contract (``serving``) for SavedModel
(``to_saved_model``), TFLite (``to_tflite``) and ONNX (``to_onnx``), loaders of each as one
``Runner`` (``runners``), parity against Keras (``parity``), ``exporter.export_all`` and
detection on files (``predict``). Submodules import TensorFlow; import them by name."""

"""Export (the deployable detector): one serving contract (``serving``) for SavedModel
(``to_saved_model``), TFLite (``to_tflite``) and ONNX (``to_onnx``), loaders of each as one
``Runner`` (``runners``), parity against Keras (``parity``), ``exporter.export_all``, and the
generator's export (``generator``, ``generator_formats``). Detection on files is an
application (``apps.predict``). Submodules import TensorFlow; import them by name."""

"""ONNX export (tf2onnx through Keras 3's ``Model.export(format="onnx")``) and its runner.

The graph takes ``image`` ``[batch, S, S, 3]`` (``uint8`` or ``float32`` ``[0, 255]``,
dynamic ``batch``) and returns float32 ``keypoints`` (pixels), ``keypoints_normalized``
``[batch, K, 2]`` ``(x, y)`` and optionally ``score_maps`` ``[batch, h, h, K]``.
"""

from __future__ import annotations

import os
import tempfile
import warnings

import keras
import tensorflow as tf

from keras_landmarks.export.serving import Runner, atomic_path, build_serving_model, image_size_of

MIN_OPSET = 17


def export_onnx(
    detector: keras.Model,
    path: str,
    input_dtype: str = "uint8",
    score_maps: bool = False,
    opset: int = MIN_OPSET,
    overwrite: bool = False,
) -> str:
    """Write the serving detector (``serving.build_serving_model``) as ONNX to ``path`` (``.onnx``).

    The symbolic batch dimension is named ``batch`` on the input and every output.
    """
    import onnx  # noqa: PLC0415

    if not path.endswith(".onnx"):
        raise ValueError(f"ONNX output must end with .onnx, got {path!r}")
    if opset < MIN_OPSET:
        raise ValueError(f"opset must be >= {MIN_OPSET}, got {opset}")
    size = image_size_of(detector)
    model = build_serving_model(detector, input_dtype, score_maps)
    spec = tf.TensorSpec([None, size, size, 3], input_dtype, name="image")
    graph = convert(model, [spec], opset)
    with atomic_path(path, overwrite=overwrite) as tmp:
        onnx.save(graph, tmp)
    return path


def convert(model: keras.Model, input_signature: list, opset: int = MIN_OPSET):
    """``model`` as a checked ``onnx.ModelProto`` (tf2onnx through Keras' ``Model.export``):
    ``input_signature`` is ``Model.export``'s (a list of ``tf.TensorSpec``, or of one dict of
    them for a multi-input model); every symbolic leading dimension is named ``batch``."""
    import onnx  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as scratch:
        raw = os.path.join(scratch, "raw.onnx")
        with warnings.catch_warnings():  # tf2onnx's numpy-2 shim warns about np.object
            warnings.simplefilter("ignore", FutureWarning)
            model.export(raw, format="onnx", input_signature=input_signature, opset_version=opset,
                         verbose=False)
        graph = onnx.load(raw)
    for value in [*graph.graph.input, *graph.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_param = "batch"
    onnx.checker.check_model(graph)
    return graph


class ONNXRunner(Runner):
    """An ``.onnx`` detector in ONNX Runtime (CPU) behind the ``Runner`` interface."""

    format_name = "onnx"

    def __init__(self, path: str, num_threads: int = 2, **_unused):
        import onnxruntime as ort  # noqa: PLC0415

        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 (protobuf / graph errors: unreadable)
            raise ValueError(f"{path} is not a readable ONNX model ({type(e).__name__}: "
                             f"{str(e)[:300]}); re-export it with landmarks-export") from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or inputs[0].name != "image" or len(inputs[0].shape) != 4:
            raise ValueError(f"{path} is not a detector export: expected one input 'image' "
                             f"[batch, S, S, 3], got {[(i.name, i.shape) for i in inputs]}")
        dtype = {"tensor(uint8)": "uint8", "tensor(float)": "float32"}.get(inputs[0].type)
        if dtype is None:
            raise ValueError(f"{path}: input 'image' has type {inputs[0].type}, "
                             "expected uint8 or float32")
        names = [o.name for o in self.session.get_outputs()]
        super().__init__(path, inputs[0].shape[1], dtype,
                         lambda images: dict(zip(names, self.session.run(names,
                                                                         {"image": images}))))


def load(path: str, **kwargs) -> ONNXRunner:
    """Open an ``.onnx`` detector as a ``Runner`` (``num_threads``, default 2)."""
    if not os.path.isfile(path):
        raise ValueError(f"{path} does not exist")
    return ONNXRunner(path, **kwargs)


__all__ = ["MIN_OPSET", "ONNXRunner", "convert", "export_onnx", "load"]

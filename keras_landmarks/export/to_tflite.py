"""TFLite (LiteRT) export with builtin ops only, four quantizations, and its runner.

Quantizations (``QUANTIZATIONS``):

* ``none``: float32 weights and activations.
* ``float16``: float16 weights (dequantized at load; XNNPACK then runs float32).
* ``dynamic``: int8 weights, float activations (dynamic-range quantization).
* ``int8``: int8 weights and activations, calibrated on representative images. By
  default the soft-argmax (mean, softmax, expectation) stays float32
  (``int8_softargmax=False``): its softmax output would otherwise be rounded to steps of
  1/256, which moves points by a sizeable part of a heatmap cell. The conv trunk,
  including the 1x1 score head, is int8.

Every model takes ``image`` ``[B, S, S, 3]`` raw pixels (``uint8`` or ``float32``
``[0, 255]``; the graph casts and quantizes itself) and returns float32 ``keypoints``
(pixels), ``keypoints_normalized`` and optionally ``score_maps``. In ``int8`` with
``uint8`` images the input tensor is itself the quantized tensor (uint8, scale 1, zero
point 0: exactly the raw pixels), so no float op runs before the integer trunk; with
``int8_softargmax`` too, the model is integer from its input to the final dequantize. Only TFLite builtin operators are allowed: the export fails
if the converter emits a custom or Flex (``SELECT_TF_OPS``) operator.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from typing import Callable, Iterable

import keras
import numpy as np
import tensorflow as tf

from keras_landmarks._internal.quiet import native_stderr_muted
from keras_landmarks.export.serving import Runner, atomic_path, build_serving_model, image_size_of

QUANTIZATIONS = ("none", "float16", "dynamic", "int8")
# Ops of the soft-argmax and the pixel mapping, kept float in "int8" unless asked otherwise.
SOFTARGMAX_OPS = ("MEAN", "TRANSPOSE", "SOFTMAX", "MUL", "SUM", "PACK", "ADD", "RESHAPE")


def convert(
    detector: keras.Model,
    quantization: str = "none",
    representative_images: Callable[[], Iterable[np.ndarray]] | None = None,
    input_dtype: str = "uint8",
    score_maps: bool = False,
    int8_softargmax: bool = False,
) -> bytes:
    """Convert the serving detector (``serving.build_serving_model``) into a TFLite flatbuffer.

    Args:
      detector: ``keras_landmarks.build_detector``'s model.
      quantization: one of ``QUANTIZATIONS``.
      representative_images: for ``int8``: a callable returning an iterable of
        ``[1, S, S, 3]`` arrays of ``input_dtype`` (raw ``[0, 255]`` pixels), ideally
        100-500 images from the training source.
      input_dtype: ``"uint8"`` or ``"float32"`` input.
      score_maps: also output ``score_maps``.
      int8_softargmax: in ``int8``, quantize the soft-argmax too (less accurate).
    Returns:
      The ``.tflite`` bytes (builtin ops only, checked).
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
    if quantization == "int8" and representative_images is None:
        raise ValueError("int8 quantization needs representative images "
                         "(--representative_data=<image folder>|synthetic)")
    size = image_size_of(detector)
    # int8 with uint8 images: convert a float32-input graph, then make the quantized input
    # itself uint8 with scale 1 / zero point 0 (= raw pixels): no float op before the trunk.
    integer_input = quantization == "int8" and input_dtype == "uint8"
    graph_dtype = "float32" if integer_input else input_dtype
    model = build_serving_model(detector, graph_dtype, score_maps)
    with tempfile.TemporaryDirectory() as saved_model_dir:
        # Keras' own LiteRT path goes through an ExportArchive SavedModel too; we drive the
        # converter ourselves for builtin-only ops and selective int8.
        archive = keras.export.ExportArchive()
        spec = tf.TensorSpec([None, size, size, 3], graph_dtype, name="image")
        archive.add_endpoint("serving_default", lambda image: model(image, training=False),
                             input_signature=[spec])
        archive.write_out(saved_model_dir, verbose=False)
        converter = builtin_converter(saved_model_dir, quantization)
        if quantization == "int8":
            dataset = _calibration_dataset(representative_images, size, graph_dtype)
            converter.representative_dataset = dataset
            with warnings.catch_warnings():  # TF's calibrator still uses tf.lite.Interpreter
                warnings.filterwarnings("ignore", "(?s).*tf.lite.Interpreter is deprecated")
                with native_stderr_muted():  # "fully_quantize: ..." per conversion
                    if int8_softargmax:
                        flatbuffer = converter.convert()
                    else:  # the documented selective-quantization route
                        debugger = tf.lite.experimental.QuantizationDebugger(
                            converter=converter,
                            debug_dataset=dataset,
                            debug_options=tf.lite.experimental.QuantizationDebugOptions(
                                denylisted_ops=list(SOFTARGMAX_OPS)
                            ),
                        )
                        flatbuffer = debugger.get_nondebug_quantized_model()
        else:
            flatbuffer = converter.convert()
    if integer_input:
        flatbuffer = _raw_uint8_input(flatbuffer)
    check_builtin_only(flatbuffer)
    return flatbuffer


def builtin_converter(saved_model_dir: str, quantization: str = "none"):
    """A ``TFLiteConverter`` of ``saved_model_dir``'s ``serving_default``: builtin operators
    only, with ``quantization``'s optimisation set (``none``, ``float16``, ``dynamic``; ``int8``
    also needs its representative dataset, set by the caller)."""
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=["serving_default"])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    return converter


def _raw_uint8_input(flatbuffer: bytes) -> bytes:
    """Turn the int8 model's float input + QUANTIZE into a uint8 input of raw pixels.

    The same rewrite as the converter's ``inference_input_type=tf.uint8`` (which the
    selective-quantization route does not apply). Calibration saw the range [0, 255]
    (``_calibration_dataset``), so the input's scale is 1 and its zero point 0.
    """
    from tensorflow.lite.python import util as tflite_util  # noqa: PLC0415

    flatbuffer = tflite_util.modify_model_io_type(flatbuffer, tf.uint8, tf.float32)
    from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415

    with native_stderr_muted():
        interpreter = Interpreter(model_content=flatbuffer)
    detail = interpreter.get_signature_runner("serving_default").get_input_details()["image"]
    scale, zero_point = detail["quantization"]
    if detail["dtype"] != np.uint8 or abs(scale - 1.0) > 1e-6 or zero_point != 0:
        raise RuntimeError(f"int8 input quantization came out as {detail['dtype']} scale "
                           f"{scale} zero point {zero_point}, expected uint8 1.0 / 0")
    return flatbuffer


def export_tflite(detector: keras.Model, path: str, overwrite: bool = False, **kwargs) -> str:
    """``convert(detector, **kwargs)`` written atomically to ``path`` (a ``.tflite`` file)."""
    if not path.endswith(".tflite"):
        raise ValueError(f"TFLite output must end with .tflite, got {path!r}")
    flatbuffer = convert(detector, **kwargs)
    with atomic_path(path, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as f:
            f.write(flatbuffer)
    return path


def _calibration_dataset(images: Callable[[], Iterable[np.ndarray]], size: int, dtype: str):
    def dataset():
        count = 0
        for image in images():
            image = np.array(image, dtype=dtype)
            if image.shape != (1, size, size, 3):
                raise ValueError(f"representative images must be [1, {size}, {size}, 3], "
                                 f"got {image.shape}")
            if count == 0:  # pin the input's calibrated range to exactly [0, 255]
                image[0, 0, 0, 0], image[0, 0, 0, 1] = 0, 255
            count += 1
            yield {"image": image}
        if count == 0:
            raise ValueError("the representative dataset is empty")

    return dataset


def operator_names(flatbuffer: bytes) -> list[str]:
    """Operator codes of a ``.tflite`` flatbuffer, read from its schema (no interpreter).

    Builtins come back by name (``"CONV_2D"``); custom ops (Flex ops included) as
    ``"CUSTOM:<code>"`` (e.g. ``"CUSTOM:FlexErf"``).
    """
    from ai_edge_litert import schema_py_generated as schema  # noqa: PLC0415

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    model = schema.Model.GetRootAs(flatbuffer, 0)
    result = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        # Codes < 127 live in the deprecated int8 field; the larger field holds the rest.
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == schema.BuiltinOperator.CUSTOM:
            result.append("CUSTOM:" + (code.CustomCode() or b"").decode())
        else:
            result.append(names.get(builtin, f"UNKNOWN_{builtin}"))
    return result


def check_builtin_only(flatbuffer: bytes) -> None:
    """Raise ``ValueError`` if the model uses a custom or Flex (TF select) operator."""
    bad = [name for name in operator_names(flatbuffer) if name.startswith("CUSTOM")]
    if bad:
        raise ValueError(f"the TFLite model needs non-builtin operators {bad}; "
                         "it would not run on a stock LiteRT runtime")


class TFLiteRunner(Runner):
    """A ``.tflite`` model in the LiteRT interpreter (XNNPACK delegate) as a ``Runner``."""

    format_name = "tflite"

    def __init__(self, path: str, num_threads: int = 2, **_unused):
        from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415

        try:
            with open(path, "rb") as f:
                check_builtin_only(f.read())
            # The default op resolver applies the XNNPACK delegate (and says so on fd 2).
            with native_stderr_muted():
                self.interpreter = Interpreter(model_path=path, num_threads=num_threads)
            self._runner = self.interpreter.get_signature_runner("serving_default")
            detail = self._runner.get_input_details()["image"]
            scale, zero_point = detail["quantization"]
            if scale not in (0.0, 1.0) or zero_point != 0:  # 0.0: not quantized
                raise ValueError(f"input 'image' is quantized (scale {scale}, zero point "
                                 f"{zero_point}), not raw [0, 255] pixels")
        except Exception as e:  # noqa: BLE001 (flatbuffer / allocation errors: unreadable)
            raise ValueError(f"{path} is not a readable detector .tflite ({type(e).__name__}: "
                             f"{str(e)[:300]}); re-export it with landmarks-export") from None
        super().__init__(path, detail["shape_signature"][1], np.dtype(detail["dtype"]).name,
                         lambda images: self._runner(image=images))


def load(path: str, **kwargs) -> TFLiteRunner:
    """Open a ``.tflite`` detector as a ``Runner`` (``num_threads``, default 2)."""
    if not os.path.isfile(path):
        raise ValueError(f"{path} does not exist")
    return TFLiteRunner(path, **kwargs)

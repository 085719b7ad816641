"""The generator's export formats (the contract: ``keras_landmarks.export.generator``): the
writers of SavedModel, TFLite and ONNX from ``build_generator_model``'s Keras model, and the
loaded files behind one numpy interface, ``runner(images, keypoints) -> generated``."""

from __future__ import annotations

import os
import tempfile

import keras
import numpy as np

class GeneratorRunner:
    """A loaded generator: ``runner(images, keypoints) -> [B, S, S, 3] float32 [0, 255]``.

    ``images``: ``[B, S, S, 3]`` of ``input_dtype`` (``uint8`` or ``float32`` ``[0, 255]``);
    ``keypoints``: ``[B, K, 2]`` float32 ``(x, y)`` normalised ``[-1, 1]``.
    """

    format_name = "?"

    def __init__(self, path: str, image_size: int, num_landmarks: int, input_dtype: str, fn):
        self.path, self.image_size, self.num_landmarks = path, int(image_size), int(num_landmarks)
        self.input_dtype = np.dtype(input_dtype)
        self._fn = fn

    def __call__(self, images: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
        s, k = self.image_size, self.num_landmarks
        images = np.asarray(images)
        keypoints = np.asarray(keypoints, np.float32)
        if images.ndim != 4 or images.shape[1:] != (s, s, 3) or images.dtype != self.input_dtype:
            raise ValueError(f"{self.path}: expected images [B, {s}, {s}, 3] {self.input_dtype.name}, "
                             f"got {images.shape} {images.dtype}")
        if keypoints.shape != (len(images), k, 2):
            raise ValueError(f"{self.path}: expected keypoints [{len(images)}, {k}, 2] (x, y) in "
                             f"[-1, 1], got {keypoints.shape}")
        return np.asarray(self._fn(images, keypoints), np.float32)

    def __repr__(self) -> str:
        return f"<{self.format_name} generator {self.path} S={self.image_size} K={self.num_landmarks}>"


class SavedModelGeneratorRunner(GeneratorRunner):
    format_name = "saved_model"

    def __init__(self, path: str, **_unused):
        import tensorflow as tf  # noqa: PLC0415

        from keras_landmarks.export.to_saved_model import find_saved_model  # noqa: PLC0415

        directory = find_saved_model(path)
        try:
            fn = tf.saved_model.load(directory).signatures["serving_default"]
        except Exception as e:  # noqa: BLE001 (protobuf / checkpoint errors: unreadable)
            raise ValueError(f"{directory} is not a readable generator SavedModel ({type(e).__name__}: "
                             f"{str(e)[:300]}); re-export it with landmarks-export --what=generator") from None
        specs = fn.structured_input_signature[1]
        if set(specs) != {"image", "keypoints"}:
            raise ValueError(f"{directory} is not a generator export: its inputs are {sorted(specs)}, "
                             "expected image and keypoints")
        self._keep = fn
        super().__init__(directory, specs["image"].shape[1], specs["keypoints"].shape[1],
                         specs["image"].dtype.name,
                         lambda im, kp: fn(image=im, keypoints=kp)["generated"].numpy())


class TFLiteGeneratorRunner(GeneratorRunner):
    format_name = "tflite"

    def __init__(self, path: str, num_threads: int = 2, **_unused):
        from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415

        from keras_landmarks._internal.quiet import native_stderr_muted  # noqa: PLC0415

        try:
            with native_stderr_muted():
                self.interpreter = Interpreter(model_path=path, num_threads=num_threads)
            runner = self.interpreter.get_signature_runner("serving_default")
            details = runner.get_input_details()
            image, points = details["image"], details["keypoints"]
        except Exception as e:  # noqa: BLE001 (flatbuffer / signature errors: unreadable)
            raise ValueError(f"{path} is not a readable generator .tflite ({type(e).__name__}: "
                             f"{str(e)[:300]}); re-export it with landmarks-export --what=generator") from None
        super().__init__(path, image["shape_signature"][1], points["shape_signature"][1],
                         np.dtype(image["dtype"]).name,
                         lambda im, kp: runner(image=im, keypoints=kp)["generated"])


class ONNXGeneratorRunner(GeneratorRunner):
    format_name = "onnx"

    def __init__(self, path: str, num_threads: int = 2, **_unused):
        import onnxruntime as ort  # noqa: PLC0415

        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = num_threads, 1
        try:
            session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001
            raise ValueError(f"{path} is not a readable ONNX model ({type(e).__name__}: "
                             f"{str(e)[:300]}); re-export it with landmarks-export --what=generator") from None
        inputs = {i.name: i for i in session.get_inputs()}
        if set(inputs) != {"image", "keypoints"}:
            raise ValueError(f"{path} is not a generator export: its inputs are {sorted(inputs)}, "
                             "expected image and keypoints")
        dtype = {"tensor(uint8)": "uint8", "tensor(float)": "float32"}[inputs["image"].type]
        super().__init__(path, inputs["image"].shape[1], inputs["keypoints"].shape[1], dtype,
                         lambda im, kp: session.run(["generated"], {"image": im, "keypoints": kp})[0])


def load_generator(path: str, **kwargs) -> GeneratorRunner:
    """Open an exported generator: SavedModel directory, ``.tflite`` or ``.onnx`` file.

    (A ``.keras`` model or a logdir: ``KerasGeneratorRunner(model)`` on the loaded
    ``LandmarkModel``.) ``ValueError`` naming ``path`` when it is missing or not a generator.
    """
    if not os.path.exists(path):
        raise ValueError(f"generator {path!r} does not exist: pass a SavedModel directory, a "
                         ".tflite or a .onnx file written by landmarks-export --what=generator")
    if path.endswith(".tflite"):
        return TFLiteGeneratorRunner(path, **kwargs)
    if path.endswith(".onnx"):
        return ONNXGeneratorRunner(path, **kwargs)
    if os.path.isdir(path):
        return SavedModelGeneratorRunner(path, **kwargs)
    raise ValueError(f"{path}: unknown generator format; expected a SavedModel directory, "
                     ".tflite or .onnx")


# -- writers ------------------------------------------------------------------------------


def write_format(key: str, generator, path: str, input_dtype: str, opset: int = 17) -> None:
    """Write ``generator`` as format ``key`` (``saved_model``, ``onnx``, ``tflite_float32`` or
    ``tflite_float16``) at ``path``."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if key == "saved_model":
        _write_saved_model(generator, path, input_dtype)
    elif key == "onnx":
        _write_onnx(generator, path, input_dtype, opset)
    else:
        _write_tflite(generator, path, input_dtype, "float16" if key.endswith("16") else "none")


def _archive(generator: keras.Model, input_dtype: str):
    """An ``ExportArchive`` whose ``serving_default`` takes named ``image`` and ``keypoints``."""
    import tensorflow as tf  # noqa: PLC0415

    size, k = _sizes(generator)
    # No archive.track(generator): the endpoint's variables are tracked through it, and
    # track() would store every weight a second time (to_saved_model.py).
    archive = keras.export.ExportArchive()

    def serve(image, keypoints):
        return generator({"image": image, "keypoints": keypoints}, training=False)

    archive.add_endpoint("serving_default", serve, input_signature=[
        tf.TensorSpec([None, size, size, 3], input_dtype, name="image"),
        tf.TensorSpec([None, k, 2], "float32", name="keypoints")])
    return archive


def _sizes(generator: keras.Model) -> tuple[int, int]:
    """``(S, K)`` of ``build_generator_model``'s model."""
    return (int(generator.get_layer("image").output.shape[1]),
            int(generator.get_layer("keypoints").output.shape[1]))


def _write_saved_model(generator, path: str, input_dtype: str) -> None:
    _archive(generator, input_dtype).write_out(path, verbose=False)


def _write_tflite(generator, path: str, input_dtype: str, quantization: str) -> None:
    from keras_landmarks.export.to_tflite import builtin_converter, check_builtin_only  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as saved_model_dir:
        _archive(generator, input_dtype).write_out(saved_model_dir, verbose=False)
        flatbuffer = builtin_converter(saved_model_dir, quantization).convert()
    check_builtin_only(flatbuffer)
    with open(path, "wb") as f:
        f.write(flatbuffer)


def _write_onnx(generator, path: str, input_dtype: str, opset: int) -> None:
    import tensorflow as tf  # noqa: PLC0415

    from keras_landmarks.export.to_onnx import convert  # noqa: PLC0415 (TensorFlow)

    size, k = _sizes(generator)
    specs = {"image": tf.TensorSpec([None, size, size, 3], input_dtype, name="image"),
             "keypoints": tf.TensorSpec([None, k, 2], "float32", name="keypoints")}
    with open(path, "wb") as f:
        f.write(convert(generator, [specs], opset).SerializeToString())


__all__ = ["write_format", "GeneratorRunner", "ONNXGeneratorRunner", "SavedModelGeneratorRunner",
           "TFLiteGeneratorRunner", "load_generator"]

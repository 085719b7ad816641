r"""The generator as a deployable model: (source image, keypoints) -> image, in every format.

A trained ``LandmarkModel`` learns two things: the detector and a conditional generator
that redraws one image in the geometry of K points (PAPER.md, "Method"). This module
exports the second one, the appearance encoder + Gaussian maps + renderer, as

    <output_dir>/saved_model/generator/<version>/   TF Serving layout (serving_default)
    <output_dir>/generator_<float32|float16>.tflite
    <output_dir>/generator.onnx
    <output_dir>/generator.json                     what was written + the parity table

Contract (identical for Keras, SavedModel, TFLite and ONNX):

* input ``image``: ``[B, S, S, 3]`` RGB, ``uint8`` (default) or ``float32`` ``[0, 255]``:
  the appearance (the source);
* input ``keypoints``: ``[B, K, 2]`` float32 ``(x, y)`` normalised ``[-1, 1]``
  (pixel-centre convention of ``keras_landmarks.geometry``: what the detector's
  ``keypoints_normalized`` output gives): where the K parts should be;
* output ``generated``: ``[B, S, S, 3]`` float32 RGB, clipped to ``[0, 255]``.

The renderer is plain convolutions and nearest/bilinear upsampling, so every format runs
it with builtin operators only (no ``grid_sample``). Parity: the largest absolute pixel
difference against Keras on ``parity_images`` source images with keypoints detected on
other images (so the points are those the model meets when animating).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import tempfile
import warnings

import keras
import numpy as np

from keras_landmarks.export.exporter import GENERATOR_QUANTIZATIONS, TFLITE_FILE_SUFFIX, check_name, require_tensorflow
from keras_landmarks.export.serving import INPUT_DTYPES, float32_detector

FORMATS = ("saved_model", "tflite", "onnx")
# The generator exports float32 and float16 TFLite; its output is an image, so an integer
# model would need its own quality measure (not offered).
QUANTIZATIONS = {q: TFLITE_FILE_SUFFIX[q] for q in GENERATOR_QUANTIZATIONS}
# Largest |pixel| difference (0-255 scale) against Keras that passes. float32 formats
# differ by float rounding only; float16 weights move pixels by a fraction of a level (0.14 max on the faces model).
TOLERANCES = {"saved_model": 0.05, "onnx": 0.05, "tflite_float32": 0.05, "tflite_float16": 1.0}

logger = logging.getLogger("keras_landmarks.export")


def build_generator_model(model, input_dtype: str = "uint8") -> keras.Model:
    """The contract above as a functional ``keras.Model`` sharing ``model``'s weights.

    Args:
      model: a trained ``LandmarkModel`` (``appearance_encoder``, ``gaussian_maps``,
        ``renderer``). Mixed-precision models are exported in float32.
      input_dtype: ``"uint8"`` or ``"float32"`` (values in ``[0, 255]`` either way).
    Returns:
      ``keras.Model`` ``{"image", "keypoints"} -> {"generated"}`` named ``generator``.
    """
    if input_dtype not in INPUT_DTYPES:
        raise ValueError(f"input_dtype must be one of {INPUT_DTYPES}, got {input_dtype!r}")
    for part in ("appearance_encoder", "gaussian_maps", "renderer"):
        if not hasattr(model, part):
            raise ValueError(f"expected a LandmarkModel (with its {part}), got {type(model).__name__}")
    cfg = model.config
    size, k = cfg.image_size, cfg.num_landmarks
    image = keras.Input((size, size, 3), dtype=input_dtype, name="image")
    keypoints = keras.Input((k, 2), dtype="float32", name="keypoints")
    encoder, renderer = float32_detector(model.appearance_encoder), float32_detector(model.renderer)
    appearance = encoder(keras.ops.cast(image, "float32"), training=False)
    maps = model.gaussian_maps(keypoints)  # float32 layer (model.py)
    drawn = renderer([appearance, maps], training=False)
    generated = keras.ops.clip(keras.ops.cast(drawn, "float32"), 0.0, 255.0)
    return keras.Model({"image": image, "keypoints": keypoints}, {"generated": generated},
                       name="generator")


def load_landmark_model(path: str):
    """The ``LandmarkModel`` of a ``.keras`` file, a training logdir or a pretrained name
    (``keras_landmarks.pretrained.available()``, e.g. ``"faces"``). ``ValueError`` naming the
    file when it is missing, unreadable, or holds a detector alone (no generator)."""
    from keras_landmarks import pretrained  # noqa: PLC0415
    from keras_landmarks.model import LandmarkModel  # noqa: PLC0415 (registers the classes)
    from keras_landmarks.training.rundir import model_file  # noqa: PLC0415

    file = model_file(pretrained.resolve_model(path))
    if not os.path.isfile(file):
        raise ValueError(f"{file} does not exist: pass a .keras file, a training logdir containing "
                         f"model.keras, or a pretrained model ({', '.join(pretrained.available())})")
    try:
        model = keras.saving.load_model(file, compile=False)
    except Exception as e:  # noqa: BLE001 (zip, h5 and json errors all mean "unreadable")
        raise ValueError(f"{file} is not a readable Keras model ({type(e).__name__}: {str(e)[:300]}); "
                         "re-save it or point --model at another checkpoint") from None
    if not isinstance(model, LandmarkModel):
        raise ValueError(f"{file} holds {type(model).__name__} {model.name!r}, not a LandmarkModel: "
                         "a detector alone has no generator; pass the training run's model.keras")
    return model


# -- runners: one numpy interface for every format --------------------------------------


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


class KerasGeneratorRunner(GeneratorRunner):
    format_name = "keras"

    def __init__(self, model, path: str = "<keras>", input_dtype: str = "uint8"):
        self.model = build_generator_model(model, input_dtype)
        predict = self.model.predict_on_batch
        super().__init__(path, model.config.image_size, model.config.num_landmarks, input_dtype,
                         lambda im, kp: predict({"image": im, "keypoints": kp})["generated"])


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

        from keras_landmarks._quiet import native_stderr_muted  # noqa: PLC0415

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


# -- export -------------------------------------------------------------------------------


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
    import tensorflow as tf  # noqa: PLC0415

    from keras_landmarks.export.to_tflite import check_builtin_only  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as saved_model_dir:
        _archive(generator, input_dtype).write_out(saved_model_dir, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir,
                                                             signature_keys=["serving_default"])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantization == "float16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        flatbuffer = converter.convert()
    check_builtin_only(flatbuffer)
    with open(path, "wb") as f:
        f.write(flatbuffer)


def _write_onnx(generator, path: str, input_dtype: str, opset: int) -> None:
    import onnx  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415

    size, k = _sizes(generator)
    specs = {"image": tf.TensorSpec([None, size, size, 3], input_dtype, name="image"),
             "keypoints": tf.TensorSpec([None, k, 2], "float32", name="keypoints")}
    with tempfile.TemporaryDirectory() as scratch:
        raw = os.path.join(scratch, "raw.onnx")
        with warnings.catch_warnings():  # tf2onnx's numpy-2 shim warns about np.object
            warnings.simplefilter("ignore", FutureWarning)
            generator.export(raw, format="onnx", input_signature=[specs], opset_version=opset,
                             verbose=False)
        graph = onnx.load(raw)
    for value in [*graph.graph.input, *graph.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_param = "batch"
    onnx.checker.check_model(graph)
    onnx.save(graph, path)


@dataclasses.dataclass
class GeneratorParity:
    """One exported generator against Keras: ``max_abs`` / ``mean_abs`` pixel differences
    on the ``[0, 255]`` scale over every pixel and channel of the parity batch."""

    name: str
    max_abs: float
    mean_abs: float
    tolerance: float

    @property
    def passed(self) -> bool:
        return self.max_abs <= self.tolerance


def parity_inputs(model, count: int, source: str | None = None, seed: int = 0):
    """``(images [count, S, S, 3] uint8, keypoints [count, K, 2])``: images from ``source``
    (an image folder, or ``"synthetic"``/None: ``parity.load_images``), keypoints detected
    on the *next* image of the batch (a pose the source did not have, as in animation)."""
    from keras_landmarks.export import parity  # noqa: PLC0415

    size = model.config.image_size
    images = parity.load_images(source or "synthetic", size, count).astype(np.uint8)
    driving = np.roll(images, -1, axis=0).astype(np.float32)
    keypoints = np.asarray(model.detector(driving, training=False)["keypoints"], np.float32)
    return images, keypoints


def format_parity(rows: list[GeneratorParity]) -> str:
    """The parity table as aligned text."""
    lines = [f"{'format':<16}{'max |px|':>10}{'mean |px|':>11}{'tolerance':>11}  result"]
    for r in rows:
        lines.append(f"{r.name:<16}{r.max_abs:>10.4f}{r.mean_abs:>11.5f}{r.tolerance:>11.2f}  "
                     f"{'ok' if r.passed else 'FAILED'}")
    return "\n".join(lines)


def export_generator(model, output_dir: str, formats=FORMATS, quantizations=("none", "float16"),
                     input_dtype: str = "uint8", parity_images: int = 8, parity_data: str | None = None,
                     version: int = 1, opset: int = 17, overwrite: bool = False,
                     log=logger.info) -> dict:
    """Export ``model``'s generator (module docstring) into ``output_dir``; returns the manifest.

    Everything is written into a temporary folder beside ``output_dir`` and renamed at the
    end; a failed parity check (``TOLERANCES``) raises ``ValueError`` and publishes nothing.
    ``output_dir`` may already hold a detector export (``landmarks-export --what=both``):
    the generator's files are added next to it; its own files are refused unless ``overwrite``.
    """
    require_tensorflow("generator export")
    check_name("generator", version)
    bad = sorted(set(formats) - set(FORMATS)) or sorted(set(quantizations) - set(QUANTIZATIONS))
    if bad or not formats:
        raise ValueError(f"generator export: unknown {bad or 'empty list'}; formats {FORMATS}, "
                         f"TFLite quantizations {tuple(QUANTIZATIONS)}")
    generator = build_generator_model(model, input_dtype)
    cfg = model.config
    manifest = {"image_size": cfg.image_size, "num_landmarks": cfg.num_landmarks,
                "inputs": [f"image [batch, {cfg.image_size}, {cfg.image_size}, 3] {input_dtype}",
                           f"keypoints [batch, {cfg.num_landmarks}, 2] float32 (x, y) in [-1, 1]"],
                "outputs": [f"generated [batch, {cfg.image_size}, {cfg.image_size}, 3] float32 [0, 255]"],
                "files": {}, "parity": []}
    files = manifest["files"]
    wanted = {}
    if "saved_model" in formats:
        wanted["saved_model"] = os.path.join("saved_model", "generator", str(version))
    if "tflite" in formats:
        for q in quantizations:
            wanted[f"tflite_{QUANTIZATIONS[q]}"] = f"generator_{QUANTIZATIONS[q]}.tflite"
    if "onnx" in formats:
        wanted["onnx"] = "generator.onnx"
    wanted["manifest"] = "generator.json"
    os.makedirs(output_dir, exist_ok=True)
    clash = [p for p in wanted.values() if os.path.exists(os.path.join(output_dir, p))]
    if clash and not overwrite:
        raise FileExistsError(f"{output_dir} already has {clash}; pass --overwrite to replace them")
    with tempfile.TemporaryDirectory(prefix=".generator-", dir=output_dir) as tmp:
        for key, rel in wanted.items():
            path = os.path.join(tmp, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if key == "saved_model":
                _write_saved_model(generator, path, input_dtype)
            elif key.startswith("tflite_"):
                _write_tflite(generator, path, input_dtype, "float16" if key.endswith("16") else "none")
            elif key == "onnx":
                _write_onnx(generator, path, input_dtype, opset)
            else:
                continue
            files[key] = rel
            log(f"wrote {rel}")
        if parity_images:
            images, keypoints = parity_inputs(model, parity_images, parity_data)
            reference = KerasGeneratorRunner(model, input_dtype=input_dtype)(images.astype(input_dtype), keypoints)
            for key, rel in files.items():
                runner = load_generator(os.path.join(tmp, rel))
                diff = np.abs(runner(images.astype(input_dtype), keypoints) - reference)
                manifest["parity"].append(dataclasses.asdict(GeneratorParity(
                    key, float(diff.max()), float(diff.mean()), TOLERANCES[key])))
            rows = [GeneratorParity(**r) for r in manifest["parity"]]
            log("generator parity against Keras (pixels 0-255):\n" + format_parity(rows))
            failed = [r.name for r in rows if not r.passed]
            if failed:
                raise ValueError(f"generator parity failed for {failed} (table above); nothing "
                                 f"was written to {output_dir}")
        with open(os.path.join(tmp, wanted["manifest"]), "w") as f:
            json.dump(manifest, f, indent=2)
        for rel in wanted.values():  # publish: each file / folder renamed into place
            final = os.path.join(output_dir, rel)
            os.makedirs(os.path.dirname(final), exist_ok=True)
            if os.path.isdir(final):
                shutil.rmtree(final)
            os.replace(os.path.join(tmp, rel), final)
    return manifest


__all__ = ["load_landmark_model", "FORMATS", "QUANTIZATIONS", "TOLERANCES", "GeneratorParity", "GeneratorRunner",
           "KerasGeneratorRunner", "build_generator_model", "export_generator", "format_parity",
           "load_generator", "parity_inputs"]

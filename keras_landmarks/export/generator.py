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

import keras
import numpy as np

from keras_landmarks.export.exporter import GENERATOR_QUANTIZATIONS, TFLITE_FILE_SUFFIX, check_name, require_tensorflow
from keras_landmarks.export.generator_formats import GeneratorRunner, load_generator, write_format  # noqa: F401 (re-exported)
from keras_landmarks.export.serving import INPUT_DTYPES, float32_detector

FORMATS = ("saved_model", "tflite", "onnx")
# The generator exports float32 and float16 TFLite; its output is an image, so an integer
# model would need its own quality measure (not offered).
QUANTIZATIONS = {q: TFLITE_FILE_SUFFIX[q] for q in GENERATOR_QUANTIZATIONS}
# Largest |pixel| difference (0-255 scale) against Keras that passes. float32 formats
# differ by float rounding only; float16 weights move pixels by a fraction of a level (0.17 max on the faces model).
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
    from keras_landmarks.model import LandmarkModel, load_saved, model_file  # noqa: PLC0415 (registers the classes)

    path = pretrained.resolve_model(path)
    model = load_saved(path, hint=f", or a pretrained model ({', '.join(pretrained.available())})")
    file = model_file(path)
    if not isinstance(model, LandmarkModel):
        raise ValueError(f"{file} holds {type(model).__name__} {model.name!r}, not a LandmarkModel: "
                         "a detector alone has no generator; pass the training run's model.keras")
    return model


class KerasGeneratorRunner(GeneratorRunner):
    """``build_generator_model(model)`` behind the ``GeneratorRunner`` interface."""

    format_name = "keras"

    def __init__(self, model, path: str = "<keras>", input_dtype: str = "uint8"):
        self.model = build_generator_model(model, input_dtype)
        predict = self.model.predict_on_batch
        super().__init__(path, model.config.image_size, model.config.num_landmarks, input_dtype,
                         lambda im, kp: predict({"image": im, "keypoints": kp})["generated"])


def keras_runners(path: str):
    """``(detector Runner, KerasGeneratorRunner)`` of the ``LandmarkModel`` at ``path``
    (``load_landmark_model``: a ``.keras`` file, a logdir or a pretrained name), both float32,
    uint8 images in: what ``landmarks-animate --model`` runs."""
    from keras_landmarks.export.serving import KerasRunner  # noqa: PLC0415

    model = load_landmark_model(path)
    return (KerasRunner(path, detector=float32_detector(model.detector)),
            KerasGeneratorRunner(model, path))


# -- export -------------------------------------------------------------------------------


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
    wanted = _planned_files(formats, quantizations, version)
    clash = [p for p in wanted.values() if os.path.exists(os.path.join(output_dir, p))]
    if clash and not overwrite:
        raise FileExistsError(f"{output_dir} already has {clash}; pass --overwrite to replace them")
    created = not os.path.isdir(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(prefix=".generator-", dir=output_dir) as tmp:
            for key, rel in wanted.items():
                write_format(key, generator, os.path.join(tmp, rel), input_dtype, opset)
                manifest["files"][key] = rel
                log(f"wrote {rel}")
            if parity_images:
                manifest["parity"] = _parity(model, tmp, manifest["files"], parity_images, parity_data,
                                             input_dtype, output_dir, log)
            with open(os.path.join(tmp, "generator.json"), "w") as f:
                json.dump(manifest, f, indent=2)
            for rel in [*wanted.values(), "generator.json"]:  # publish: each renamed into place
                final = os.path.join(output_dir, rel)
                os.makedirs(os.path.dirname(final), exist_ok=True)
                if os.path.isdir(final):
                    shutil.rmtree(final)
                os.replace(os.path.join(tmp, rel), final)
    except BaseException:
        if created:
            shutil.rmtree(output_dir, ignore_errors=True)
        raise
    return manifest


def _planned_files(formats, quantizations, version: int) -> dict[str, str]:
    """``{manifest key: path relative to the output}`` of every file to write."""
    wanted = {}
    if "saved_model" in formats:
        wanted["saved_model"] = os.path.join("saved_model", "generator", str(version))
    if "tflite" in formats:
        for q in quantizations:
            wanted[f"tflite_{QUANTIZATIONS[q]}"] = f"generator_{QUANTIZATIONS[q]}.tflite"
    if "onnx" in formats:
        wanted["onnx"] = "generator.onnx"
    return wanted


def _parity(model, tmp: str, files: dict, count: int, data: str | None, input_dtype: str,
            output_dir: str, log) -> list[dict]:
    """Every written file against Keras (``GeneratorParity`` rows); ``ValueError`` if one fails."""
    images, keypoints = parity_inputs(model, count, data)
    images = images.astype(input_dtype)
    reference = KerasGeneratorRunner(model, input_dtype=input_dtype)(images, keypoints)
    rows = []
    for key, rel in files.items():
        diff = np.abs(load_generator(os.path.join(tmp, rel))(images, keypoints) - reference)
        rows.append(GeneratorParity(key, float(diff.max()), float(diff.mean()), TOLERANCES[key]))
    log("generator parity against Keras (pixels 0-255):\n" + format_parity(rows))
    failed = [r.name for r in rows if not r.passed]
    if failed:
        raise ValueError(f"generator parity failed for {failed} (table above); nothing was written "
                         f"to {output_dir}")
    return [dataclasses.asdict(r) for r in rows]


__all__ = ["keras_runners", "load_landmark_model", "FORMATS", "QUANTIZATIONS", "TOLERANCES", "GeneratorParity", "GeneratorRunner",
           "KerasGeneratorRunner", "build_generator_model", "export_generator", "format_parity",
           "load_generator", "parity_inputs"]

r"""Export a trained detector to SavedModel, TFLite and ONNX, then print a parity table.

    landmarks-export --model=runs/celeba --output_dir=exported \
        --formats=saved_model,tflite,onnx --tflite_quantization=none,float16,dynamic,int8 \
        --representative_data=/path/to/training/images    # or =synthetic

``--model`` is a ``.keras`` file or a training logdir (``<logdir>/model.keras``). Output:

    <output_dir>/saved_model/<name>/<version>/   TF Serving layout (serving_default, ...)
    <output_dir>/<name>_<float32|float16|dynamic|int8>.tflite
    <output_dir>/<name>.onnx
    <output_dir>/export.json                      what was exported + the parity table

Everything is written into a hidden temporary directory beside ``--output_dir`` and
renamed at the end, so an interrupted export leaves no partial model behind. An existing
``--output_dir`` is refused unless ``--overwrite``. The parity check runs every exported
model against the Keras detector on ``--parity_images`` images and fails the export
(nothing is published) if a float32 / float16 model is off by more than its tolerance.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil

FORMATS = ("saved_model", "tflite", "onnx")
# --tflite_quantization value -> file suffix (same names as to_tflite.QUANTIZATIONS;
# repeated here so that flag errors come before TensorFlow is imported).
TFLITE_FILE_SUFFIX = {"none": "float32", "float16": "float16", "dynamic": "dynamic",
                      "int8": "int8"}
QUANTIZATIONS = tuple(TFLITE_FILE_SUFFIX)
# The generator (export/generator.py) exports float TFLite only: its output is an image.
GENERATOR_QUANTIZATIONS = ("none", "float16")

logger = logging.getLogger("keras_landmarks.export")

# --name: one plain file-name component (it becomes <name>.onnx, saved_model/<name>/...).
_NAME = re.compile(r"\w[\w.-]*")


def check_name(name, version=1) -> None:
    """Raise ``ValueError`` unless ``name`` is one plain file name (letters, digits, ``_``,
    ``-``, ``.`` not first: no path separator, ``..``, absolute path or empty name, so every
    file stays inside the output folder) and ``version`` an integer >= 0."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"--name={name!r}: must be a plain file name of letters, digits, '_', "
                         "'-' and '.' (not first); no path separators, '..' or absolute paths, "
                         "as every exported file is named after it inside --output_dir")
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ValueError(f"--version={version!r}: must be an integer >= 0 (TF Serving's "
                         "version folder)")


def check_args(formats: list[str], quantizations: list[str],
               representative_data: str | None, name: str = "detector",
               version: int = 1) -> list[str]:
    """Validate the format / quantization choices, the model ``name`` and ``version``
    (``check_name``); returns the quantizations to export."""
    check_name(name, version)
    bad = sorted(set(formats) - set(FORMATS))
    if bad or not formats:
        raise ValueError(f"--formats: unknown {bad or 'empty list'}; choose from {FORMATS}")
    bad = sorted(set(quantizations) - set(QUANTIZATIONS))
    if bad or ("tflite" in formats and not quantizations):
        raise ValueError(f"--tflite_quantization: unknown {bad or 'empty list'}; choose from "
                         f"{QUANTIZATIONS}")
    if "int8" in quantizations and not representative_data:
        raise ValueError("--tflite_quantization=int8 needs --representative_data=<image "
                         "folder from the training source>|synthetic")
    if representative_data and representative_data != "synthetic" and not os.path.isdir(
            representative_data):
        raise ValueError(f"--representative_data={representative_data} is neither an image "
                         "folder nor 'synthetic'")
    return quantizations if "tflite" in formats else []


def require_tensorflow(what: str) -> None:
    """``ImportError`` saying what to install unless TensorFlow is importable (SavedModel,
    TFLite and tf2onnx are all built from a TensorFlow graph, whatever the Keras backend)."""
    try:
        import tensorflow  # noqa: F401, PLC0415
    except ImportError as err:
        raise ImportError(f"{what} needs TensorFlow ({err}): pip install 'keras-landmarks[tensorflow]'. A model "
                          "trained under JAX or PyTorch exports from its .keras file on a machine that has it "
                          "(landmarks-export --model=model.keras)") from err


def export_all(detector, output_dir: str, formats: list[str], quantizations: list[str],
               representative_data: str | None = None, calibration_images: int = 200,
               parity_images: int = 32, parity_data: str | None = None,
               input_dtype: str = "uint8", score_maps: bool = False,
               int8_softargmax: bool = False, name: str = "detector", version: int = 1,
               opset: int = 17, overwrite: bool = False, config_json: str | None = None,
               log=logger.info) -> dict:
    """Export ``detector`` (``build_detector``'s model) in ``formats``; returns the manifest.

    See the module docstring for the layout. ``name`` names every file (``check_name``: one
    plain file name, so nothing is written outside ``output_dir``). Raises ``ValueError``
    on bad arguments (before anything is written) or a
    failed enforced parity check, ``FileExistsError`` if ``output_dir`` exists and
    ``overwrite`` is False; in both cases nothing is left at ``output_dir``.
    """
    require_tensorflow("export")
    from keras_landmarks.export import parity  # noqa: PLC0415 (TensorFlow)
    from keras_landmarks.export.serving import atomic_path, image_size_of  # noqa: PLC0415

    quantizations = check_args(formats, quantizations, representative_data, name, version)
    size = image_size_of(detector)
    manifest = {"image_size": size, "num_landmarks": int(detector.outputs[0].shape[1]),
                "input": f"image [batch, {size}, {size}, 3] {input_dtype}",
                "outputs": ["keypoints", "keypoints_normalized"] + ["score_maps"] * score_maps,
                "files": {}, "parity": []}
    common = {"input_dtype": input_dtype, "score_maps": score_maps}
    calibration = None
    if "int8" in quantizations:
        images = parity.load_images(representative_data, size, calibration_images)
        calibration = lambda: (im[None] for im in images)  # noqa: E731
    with atomic_path(output_dir, overwrite=overwrite) as tmp:
        os.makedirs(tmp)
        _write_formats(detector, tmp, manifest["files"], formats, quantizations, calibration, common,
                       name=name, version=version, opset=opset, int8_softargmax=int8_softargmax, log=log)
        if parity_images:
            source = parity_data or representative_data or "synthetic"
            # Parity images come after the calibration ones when both use one folder.
            offset = calibration_images if calibration and source == representative_data else 0
            images = parity.load_images(source, size, parity_images, offset=offset)
            manifest["parity"] = _check_parity(detector, tmp, manifest["files"], images, input_dtype,
                                               f"{source}", output_dir, log)
        if config_json:
            shutil.copyfile(config_json, os.path.join(tmp, "config.json"))
        with open(os.path.join(tmp, "export.json"), "w") as f:
            json.dump(manifest, f, indent=2)
    return manifest


def _write_formats(detector, tmp: str, files: dict, formats, quantizations, calibration, common: dict, *,
                   name: str, version: int, opset: int, int8_softargmax: bool, log) -> None:
    """Write every asked-for format into ``tmp``; ``files`` gets ``{key: path relative to tmp}``."""
    from keras_landmarks.export import to_onnx, to_saved_model, to_tflite  # noqa: PLC0415 (TensorFlow)

    if "saved_model" in formats:
        files["saved_model"] = os.path.join("saved_model", name, str(version))
        to_saved_model.export_saved_model(detector, os.path.join(tmp, files["saved_model"]), **common)
        log(f"wrote {files['saved_model']}")
    for q in quantizations:
        key = f"tflite_{TFLITE_FILE_SUFFIX[q]}"
        files[key] = f"{name}_{TFLITE_FILE_SUFFIX[q]}.tflite"
        to_tflite.export_tflite(detector, os.path.join(tmp, files[key]), quantization=q,
                                representative_images=calibration, int8_softargmax=int8_softargmax, **common)
        log(f"wrote {files[key]}")
    if "onnx" in formats:
        files["onnx"] = f"{name}.onnx"
        to_onnx.export_onnx(detector, os.path.join(tmp, files["onnx"]), opset=opset, **common)
        log(f"wrote {files['onnx']}")


def _check_parity(detector, tmp: str, files: dict, images, input_dtype: str, source: str, output_dir: str,
                  log) -> list[dict]:
    """Run every written file against the Keras detector on ``images``; the manifest's rows.

    Raises ``ValueError`` (so nothing is published) when an enforced row fails.
    """
    from keras_landmarks.export import parity  # noqa: PLC0415
    from keras_landmarks.export.runners import load_runner  # noqa: PLC0415
    from keras_landmarks.export.serving import KerasRunner, image_size_of  # noqa: PLC0415

    size = image_size_of(detector)
    reference = KerasRunner("keras", input_dtype=input_dtype, detector=detector)
    runners = {key: load_runner(os.path.join(tmp, rel)) for key, rel in files.items()}
    rows = parity.compare(reference, runners, images)
    log(f"parity vs Keras on {len(images)} images from {source} "
        f"(keypoint error in pixels of the {size}x{size} input):")
    log(parity.format_table(rows))
    failed = [r.name for r in rows if r.enforced and not r.passed]
    if failed:
        raise ValueError(f"parity check failed for {failed}; nothing was written to {output_dir}")
    return [{**vars(r), "passed": r.passed} for r in rows]

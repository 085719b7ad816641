r"""Export a trained detector to SavedModel, TFLite and ONNX, then print a parity table.

    python export/export.py --model=runs/celeba --output_dir=exported \
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
import os
import shutil
import sys

if __name__ == "__main__":  # run as a script: make the repository root importable
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging

FORMATS = ("saved_model", "tflite", "onnx")
# --tflite_quantization value -> file suffix (same names as export.tflite.QUANTIZATIONS;
# repeated here so that flag errors come before TensorFlow is imported).
TFLITE_FILE_SUFFIX = {"none": "float32", "float16": "float16", "dynamic": "dynamic",
                      "int8": "int8"}
QUANTIZATIONS = tuple(TFLITE_FILE_SUFFIX)


def check_args(formats: list[str], quantizations: list[str],
               representative_data: str | None) -> list[str]:
    """Validate the format / quantization choices; returns the quantizations to export."""
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


def export_all(detector, output_dir: str, formats: list[str], quantizations: list[str],
               representative_data: str | None = None, calibration_images: int = 200,
               parity_images: int = 32, parity_data: str | None = None,
               input_dtype: str = "uint8", score_maps: bool = False,
               int8_softargmax: bool = False, name: str = "detector", version: int = 1,
               opset: int = 17, overwrite: bool = False, config_json: str | None = None,
               log=print) -> dict:
    """Export ``detector`` (``build_detector``'s model) in ``formats``; returns the manifest.

    See the module docstring for the layout. Raises ``ValueError`` on bad arguments or a
    failed enforced parity check, ``FileExistsError`` if ``output_dir`` exists and
    ``overwrite`` is False; in both cases nothing is left at ``output_dir``.
    """
    from export import onnx, parity, saved_model, tflite  # noqa: PLC0415
    from export.detector import KerasRunner, atomic_path, image_size_of  # noqa: PLC0415

    quantizations = check_args(formats, quantizations, representative_data)
    size = image_size_of(detector)
    manifest = {"image_size": size, "num_landmarks": int(detector.outputs[0].shape[1]),
                "input": f"image [batch, {size}, {size}, 3] {input_dtype}",
                "outputs": ["keypoints", "keypoints_normalized"] + ["score_maps"] * score_maps,
                "files": {}, "parity": []}
    common = {"input_dtype": input_dtype, "score_maps": score_maps}
    with atomic_path(output_dir, overwrite=overwrite) as tmp:
        os.makedirs(tmp)
        files = manifest["files"]
        if "saved_model" in formats:
            files["saved_model"] = os.path.join("saved_model", name, str(version))
            saved_model.export_saved_model(detector, os.path.join(tmp, files["saved_model"]),
                                           **common)
            log(f"wrote {files['saved_model']}")
        calibration = None
        if "int8" in quantizations:
            images = parity.load_images(representative_data, size, calibration_images)
            calibration = lambda: (im[None] for im in images)  # noqa: E731
        for q in quantizations:
            key = f"tflite_{TFLITE_FILE_SUFFIX[q]}"
            files[key] = f"{name}_{TFLITE_FILE_SUFFIX[q]}.tflite"
            tflite.export_tflite(detector, os.path.join(tmp, files[key]), quantization=q,
                                 representative_images=calibration,
                                 int8_softargmax=int8_softargmax, **common)
            log(f"wrote {files[key]}")
        if "onnx" in formats:
            files["onnx"] = f"{name}.onnx"
            onnx.export_onnx(detector, os.path.join(tmp, files["onnx"]), opset=opset, **common)
            log(f"wrote {files['onnx']}")
        if parity_images:
            source = parity_data or representative_data or "synthetic"
            # Parity images come after the calibration ones when both use one folder.
            offset = calibration_images if calibration and source == representative_data else 0
            images = parity.load_images(source, size, parity_images, offset=offset)
            reference = KerasRunner("keras", input_dtype=input_dtype, detector=detector)
            from export.detector import load_runner  # noqa: PLC0415

            runners = {key: load_runner(os.path.join(tmp, rel)) for key, rel in files.items()}
            rows = parity.compare(reference, runners, images)
            log(f"parity vs Keras on {len(images)} images from {source} "
                f"(keypoint error in pixels of the {size}x{size} input):")
            log(parity.format_table(rows))
            manifest["parity"] = [{**vars(r), "passed": r.passed} for r in rows]
            failed = [r.name for r in rows if r.enforced and not r.passed]
            if failed:
                raise ValueError(f"parity check failed for {failed}; nothing was written to "
                                 f"{output_dir}")
        if config_json:
            shutil.copyfile(config_json, os.path.join(tmp, "config.json"))
        with open(os.path.join(tmp, "export.json"), "w") as f:
            json.dump(manifest, f, indent=2)
    return manifest


def main(argv) -> None:
    f = flags.FLAGS
    logging.set_verbosity(logging.WARNING)
    try:
        check_args(f.formats, f.tflite_quantization, f.representative_data)
        if len(argv) > 1:
            raise ValueError(f"unexpected arguments {argv[1:]}")
        for required in ("model", "output_dir"):
            if not getattr(f, required):
                raise ValueError(f"--{required} is required")
        if os.path.exists(f.output_dir) and not f.overwrite:
            raise FileExistsError(f"--output_dir={f.output_dir} already exists; pass "
                                  "--overwrite to replace it")
        from export.detector import load_keras_detector  # noqa: PLC0415 (imports TensorFlow)

        detector = load_keras_detector(f.model)
        config = os.path.join(f.model, "config.json") if os.path.isdir(f.model) else None
        export_all(detector, f.output_dir, f.formats, f.tflite_quantization,
                   f.representative_data, f.calibration_images, f.parity_images,
                   f.parity_data, f.input_dtype, f.score_maps, f.int8_softargmax, f.name,
                   f.version, f.opset, f.overwrite,
                   config if config and os.path.isfile(config) else None)
    except (ValueError, FileExistsError) as e:
        raise SystemExit(f"export.py: error: {e}") from None
    print(f"exported to {f.output_dir}")


def define_flags() -> None:
    """The CLI's flags (defined on demand so importing this module defines none)."""
    flags.DEFINE_string("model", None, ".keras file or training logdir (<logdir>/model.keras)")
    flags.DEFINE_string("output_dir", None, "directory to create (refused if it exists, "
                        "unless --overwrite)")
    flags.DEFINE_list("formats", list(FORMATS), f"subset of {','.join(FORMATS)}")
    flags.DEFINE_list("tflite_quantization", ["none"], "subset of none,float16,dynamic,int8")
    flags.DEFINE_string("representative_data", None, "image folder from the training source, "
                        "or 'synthetic' (toy faces): int8 calibration and parity images")
    flags.DEFINE_integer("calibration_images", 200, "images for int8 calibration", lower_bound=1)
    flags.DEFINE_integer("parity_images", 32, "images for the parity check (0: skip it)",
                         lower_bound=0)
    flags.DEFINE_string("parity_data", None, "image folder or 'synthetic' for the parity "
                        "check (default: --representative_data, else synthetic)")
    flags.DEFINE_enum("input_dtype", "uint8", ["uint8", "float32"], "dtype of the 'image' "
                      "input (the SavedModel has both, this one is serving_default)")
    flags.DEFINE_bool("score_maps", False, "also output the raw score maps [B, h, h, K]")
    flags.DEFINE_bool("int8_softargmax", False, "int8: quantize the soft-argmax too "
                      "(default keeps it float32: more accurate, same speed)")
    flags.DEFINE_string("name", "detector", "model name (file names, TF Serving model name)")
    flags.DEFINE_integer("version", 1, "TF Serving version directory", lower_bound=1)
    flags.DEFINE_integer("opset", 17, "ONNX opset (>= 17)", lower_bound=17)
    flags.DEFINE_bool("overwrite", False, "replace an existing --output_dir")


if __name__ == "__main__":
    define_flags()
    app.run(main)

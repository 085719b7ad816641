r"""Export a trained detector to SavedModel, TFLite and ONNX, then print a parity table.

    landmarks-export --model=runs/celeba --output_dir=exported \
        --formats=saved_model,tflite,onnx --tflite_quantization=none,float16,dynamic,int8 \
        --representative_data=/path/to/training/images    # or =synthetic

    landmarks-export --model=faces --what=generator --output_dir=exported_generator
    landmarks-export --model=runs/faces --what=both --output_dir=exported   # for landmarks-animate

(``python trainers/export.py`` is the same program.) ``keras_landmarks.export.exporter``
describes the detector's output layout, the atomic write and the parity check;
``keras_landmarks.export.generator`` the generator's (``--what=generator``: the appearance
encoder + renderer taking ``(image, keypoints)``; TFLite ``none`` and ``float16`` only).
"""

from __future__ import annotations

import logging
import os

from absl import flags

from keras_landmarks import pretrained
from keras_landmarks.cli._flags import import_tensorflow, run_main
from keras_landmarks.export.exporter import FORMATS, GENERATOR_QUANTIZATIONS, check_args, export_all

logger = logging.getLogger("keras_landmarks.export")


def main(argv) -> None:
    f = flags.FLAGS
    try:
        check_args(f.formats, f.tflite_quantization, f.representative_data, f.name, f.version)
        if len(argv) > 1:
            raise ValueError(f"unexpected arguments {argv[1:]}")
        for required in ("model", "output_dir"):
            if not getattr(f, required):
                raise ValueError(f"--{required} is required")
        if os.path.exists(f.output_dir) and not f.overwrite:
            raise FileExistsError(f"--output_dir={f.output_dir} already exists; pass "
                                  "--overwrite to replace it")
        import_tensorflow()
        from keras_landmarks.export.serving import load_keras_detector  # noqa: PLC0415 (TensorFlow)

        model = pretrained.resolve_model(f.model)  # --model=faces: the shipped detector
        generator_quantizations = _generator_quantizations(f.what, f.formats, f.tflite_quantization)
        if f.what in ("detector", "both"):
            detector = load_keras_detector(model)
            config = os.path.join(model, "config.json") if os.path.isdir(model) else None
            export_all(detector, f.output_dir, f.formats, f.tflite_quantization,
                       f.representative_data, f.calibration_images, f.parity_images,
                       f.parity_data, f.input_dtype, f.score_maps, f.int8_softargmax, f.name,
                       f.version, f.opset, f.overwrite,
                       config if config and os.path.isfile(config) else None)
        if f.what in ("generator", "both"):
            from keras_landmarks.export.generator import export_generator, load_landmark_model  # noqa: PLC0415

            export_generator(load_landmark_model(model), f.output_dir, f.formats, generator_quantizations,
                             f.input_dtype, min(f.parity_images, 8), f.parity_data or f.representative_data,
                             f.version, f.opset, overwrite=True)
    except (ValueError, FileExistsError) as e:
        raise SystemExit(f"export.py: error: {e}") from None
    logger.info("exported to %s", f.output_dir)


def _generator_quantizations(what: str, formats: list[str], quantizations: list[str]) -> list[str]:
    """The generator's TFLite quantizations: those of ``--tflite_quantization`` it supports."""
    chosen = [q for q in quantizations if q in GENERATOR_QUANTIZATIONS]
    if what != "detector" and "tflite" in formats and not chosen:
        raise ValueError(f"--what={what}: the generator's TFLite export supports --tflite_quantization="
                         f"{','.join(GENERATOR_QUANTIZATIONS)}, not {','.join(quantizations)}")
    return chosen


def define_flags() -> None:
    """The CLI's flags (defined on demand so importing this module defines none)."""
    flags.DEFINE_string("model", None, ".keras file, training logdir (<logdir>/model.keras) or a pretrained "
                        "detector's name (faces)")
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
    flags.DEFINE_string("name", "detector", "model name (file names, TF Serving model name): "
                        "letters, digits, '_', '-', '.' (not first), no path separators")
    flags.DEFINE_integer("version", 1, "TF Serving version directory", lower_bound=1)
    flags.DEFINE_integer("opset", 17, "ONNX opset (>= 17)", lower_bound=17)
    flags.DEFINE_bool("overwrite", False, "replace an existing --output_dir")
    flags.DEFINE_enum("what", "detector", ["detector", "generator", "both"], "what to export: the "
                      "detector, the generator (source image + keypoints -> image, for landmarks-animate), "
                      "or both into one --output_dir")


def run() -> None:
    """Console script ``landmarks-export`` (and ``python trainers/export.py``)."""
    define_flags()
    run_main(main, "export.py", __name__)


if __name__ == "__main__":
    run()

"""SavedModel export (TensorFlow Serving layout) and its runner.

Layout: ``<base>/<name>/<version>/`` (``saved_model.pb`` + ``variables/``), the directory
tree TF Serving's ``--model_base_path=<base>/<name>`` expects. Signatures:

* ``serving_default``: input ``image`` ``[B, S, S, 3]`` of the export's input dtype
  (``uint8`` by default); outputs ``keypoints`` (pixels), ``keypoints_normalized``
  ``[B, K, 2]`` float32 ``(x, y)`` and optionally ``score_maps`` ``[B, h, h, K]``.
* ``serving_uint8`` and ``serving_float32``: the same graph with each input dtype
  (``float32`` takes values in ``[0, 255]``); one of them equals ``serving_default``.

Written with Keras 3's ``ExportArchive`` (the machinery behind ``Model.export``), so the
artifact needs neither Keras nor ``keras_landmarks`` to load.
"""

from __future__ import annotations

import os

import keras
import tensorflow as tf

from keras_landmarks.export.serving import INPUT_DTYPES, Runner, atomic_path, build_serving_model, image_size_of


def export_saved_model(
    detector: keras.Model,
    path: str,
    input_dtype: str = "uint8",
    score_maps: bool = False,
    overwrite: bool = False,
) -> str:
    """Write the detector's SavedModel to ``path`` (a version directory, e.g. ``.../det/1``).

    Args:
      detector: ``keras_landmarks.build_detector``'s model (float32 ``[0, 255]`` input).
      path: final directory; written under a temporary name and renamed at the end.
      input_dtype: dtype of ``serving_default``'s ``image`` input (``uint8`` / ``float32``).
      score_maps: also output ``score_maps``.
      overwrite: replace an existing ``path`` (otherwise ``FileExistsError``).
    Returns:
      ``path``.
    """
    if input_dtype not in INPUT_DTYPES:
        raise ValueError(f"input_dtype must be one of {INPUT_DTYPES}, got {input_dtype!r}")
    size = image_size_of(detector)
    # No archive.track(model): the endpoints' variables are tracked automatically, and
    # track() stores every weight a second time (9.3 MB instead of 4.7 MB at 128/32/10).
    archive = keras.export.ExportArchive()
    # The default dtype first: ExportArchive aliases the first endpoint as serving_default.
    for dtype in sorted(INPUT_DTYPES, key=lambda d: d != input_dtype):
        model = build_serving_model(detector, dtype, score_maps)
        spec = tf.TensorSpec([None, size, size, 3], dtype, name="image")
        archive.add_endpoint(f"serving_{dtype}", _named_call(model), input_signature=[spec])
    with atomic_path(path, overwrite=overwrite) as tmp:
        archive.write_out(tmp, verbose=False)
    return path


def _named_call(model: keras.Model):
    """``fn(image)``: the argument name becomes the signature's input name ``image``."""

    def serve(image):
        return model(image, training=False)

    return serve


def find_saved_model(path: str) -> str:
    """The SavedModel directory at ``path``: itself, or the highest ``<path>/<version>``.

    Accepts a version directory, a TF Serving model directory (``<base>/<name>``) or an
    export directory (``<out>/saved_model/<name>/<version>``, one model name).
    """
    for _ in range(3):
        if os.path.isfile(os.path.join(path, "saved_model.pb")):
            return path
        subdirs = sorted(d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d)))
        versions = [d for d in subdirs if d.isdigit()]
        if versions:
            path = os.path.join(path, max(versions, key=int))
        elif len(subdirs) == 1:
            path = os.path.join(path, subdirs[0])
        else:
            break
    raise ValueError(f"{path}: no saved_model.pb found here or in a version subdirectory; "
                     "pass a SavedModel directory such as <output_dir>/saved_model/detector/1")


class SavedModelRunner(Runner):
    """A SavedModel's serving signature behind the ``Runner`` interface."""

    format_name = "saved_model"

    def __init__(self, path: str, signature: str = "serving_default", **_unused):
        directory = find_saved_model(path)
        try:
            self.loaded = tf.saved_model.load(directory)
        except Exception as e:  # noqa: BLE001 (protobuf / checkpoint errors: unreadable)
            raise ValueError(f"{directory} is not a readable SavedModel ({type(e).__name__}: "
                             f"{str(e)[:300]}); re-export it") from None
        if signature not in self.loaded.signatures:
            raise ValueError(f"{directory} has no signature {signature!r}; it has "
                             f"{sorted(self.loaded.signatures)}")
        fn = self.loaded.signatures[signature]
        spec = fn.structured_input_signature[1]["image"]
        super().__init__(directory, spec.shape[1], spec.dtype.name,
                         lambda images: {k: v.numpy() for k, v in fn(image=images).items()})


def load(path: str, **kwargs) -> SavedModelRunner:
    """Open a SavedModel directory (see ``find_saved_model``) as a ``Runner``."""
    return SavedModelRunner(path, **kwargs)


__all__ = ["export_saved_model", "find_saved_model", "load", "SavedModelRunner"]

"""Data sources, chosen by name.

Training pairs (batched dicts ``{"image": [B, S, S, 3] float32 RGB [0, 255] (source x),
"future_image": [B, S, S, 3] (target x'), "mask": [B, S, S, 1] float32 [0, 1]}``, endless):

* ``celeb_a``: CelebA through TFDS, two TPS warps per image (``celeb_a.py``; ``mafl_dir=``).
* ``folder``: any folder of jpg/png/bmp/webp, two TPS warps (``folders.py``).
* ``video``: two frames of one clip (``video.py``; ``tps=True`` adds warps).
* ``synthetic``: generated toy faces (``synthetic.py``), no files needed.

Annotated evaluation sets (``{"image": [B, S, S, 3] float32 [0, 255], "landmarks": [B, P, 2]
float32 pixel (x, y)}``, finite, fixed order): ``celeb_a`` (MAFL with ``mafl_dir=``),
``folder`` (images + landmarks CSV, ``folders.annotated_folder``), ``synthetic``.

Two pipelines: ``tf_data`` (every source) and ``numpy`` (``keras.utils.PyDataset`` with
worker threads, NumPy and OpenCV only, ``numpy_pairs.py``; ``folder`` so far), the
data path of JAX and PyTorch users without TensorFlow. ``pipeline="auto"`` takes ``tf_data``
when TensorFlow is installed.

One name per source in every program: ``folder`` is the same folder of images whether it
trains (any images) or evaluates (images + ``landmarks.csv``). The old training name
``image_folder`` still works and logs one deprecation line (``source_name``).

Each training source's pairs come from one loader per pipeline (``LOADERS``); its keyword
options (``video_pairs(tps=, max_offset=, cache_dir=)``, ...) are ``training_pairs``'s ``kw``
and the trainer's ``--data.<option>`` flags (``options.py`` reads them from the signatures).

Submodules are imported on first use: importing this package loads neither OpenCV nor TFDS.
"""

from __future__ import annotations

import importlib
import importlib.util

from keras_landmarks.config import DEPRECATED_SOURCES, source_name  # noqa: F401 (the names' home: presets take them)

TRAINING_SOURCES = ("celeb_a", "folder", "video", "synthetic")
ANNOTATED_SOURCES = ("celeb_a", "folder", "synthetic")
_NEEDS_DATA_DIR = ("folder", "video")
PIPELINES = ("auto", "tf_data", "numpy")
NUMPY_SOURCES = ("folder",)
# The function (or class) of each training source and pipeline: (submodule, name).
LOADERS = {
    ("celeb_a", "tf_data"): ("celeb_a", "celeb_a_pairs"),
    ("folder", "tf_data"): ("folders", "image_folder_pairs"),
    ("folder", "numpy"): ("numpy_pairs", "FolderPairs"),
    ("video", "tf_data"): ("video", "video_pairs"),
    ("synthetic", "tf_data"): ("synthetic", "synthetic_pairs"),
}

def has_tensorflow() -> bool:
    """Whether TensorFlow is installed (without importing it)."""
    try:
        return importlib.util.find_spec("tensorflow") is not None
    except (ImportError, ValueError):  # a broken install, or a finder refusing it
        return False


def resolve_pipeline(pipeline: str, name: str | None = None) -> str:
    """``"tf_data"`` or ``"numpy"`` for ``pipeline`` (one of ``PIPELINES``) and source ``name``;
    ``ValueError`` saying what to do when the pair cannot run here."""
    name = name if name is None else source_name(name, warn=False)
    if pipeline not in PIPELINES:
        raise ValueError(f"unknown pipeline {pipeline!r}; choose one of {', '.join(PIPELINES)}")
    if pipeline == "auto":
        pipeline = "tf_data" if has_tensorflow() or name not in NUMPY_SOURCES else "numpy"
    if pipeline == "tf_data" and not has_tensorflow():
        raise ValueError(f"training source {name!r} reads its data with tf.data, which needs TensorFlow: "
                         f"pip install 'keras-landmarks[tensorflow]', or use a source of the NumPy "
                         f"pipeline ({', '.join(NUMPY_SOURCES)})")
    if pipeline == "numpy" and name is not None and name not in NUMPY_SOURCES:
        raise ValueError(f"the NumPy pipeline reads {', '.join(NUMPY_SOURCES)} only, not {name!r}: "
                         "use pipeline 'tf_data' (needs TensorFlow)")
    return pipeline


def _check(name: str, choices: tuple[str, ...], what: str, data_dir) -> str:
    name = source_name(name)
    if name not in choices:
        raise ValueError(f"unknown {what} {name!r}; choose one of {', '.join(choices)}")
    if name in _NEEDS_DATA_DIR and not data_dir:
        raise ValueError(f"{what} {name!r} needs data_dir (the folder to read; trainer flag --data_dir)")
    if name == "synthetic" and data_dir:
        raise ValueError(f"{what} 'synthetic' is generated and reads no files; drop data_dir={data_dir!r}")
    return name


def training_pairs(name: str, *, data_dir: str | None = None, image_size: int, batch_size: int,
                   seed: int, pipeline: str = "auto", **kw):
    """Endless training pairs of source ``name`` (one of ``TRAINING_SOURCES``): a
    ``tf.data.Dataset``, or with ``pipeline="numpy"`` a ``keras.utils.PyDataset``.

    ``kw`` goes to the source's loader (``LOADERS``): ``celeb_a_pairs(mafl_dir=, target_warp=,
    ...)``, ``image_folder_pairs(deterministic=, ...)`` (``numpy``: ``FolderPairs(workers=,
    ...)``), ``video_pairs(max_offset=, tps=, cache_dir=, ...)``, ``synthetic_pairs(mode=, ...)``.
    """
    name = _check(name, TRAINING_SOURCES, "training source", data_dir)
    module, loader = LOADERS[name, resolve_pipeline(pipeline, name)]
    where = {} if name == "synthetic" else {"data_dir": data_dir}
    return getattr(importlib.import_module(f"{__name__}.{module}"), loader)(
        **where, image_size=image_size, batch_size=batch_size, seed=seed, **kw)


def annotated(name: str, *, split: str | None, data_dir: str | None = None, image_size: int,
              batch_size: int, **kw):
    """Annotated evaluation set of source ``name`` (one of ``ANNOTATED_SOURCES``).

    ``split``: ``"train"``/``"test"`` (``celeb_a`` also ``"validation"`` without MAFL;
    ``folder``: the CSV's ``split`` value, or None for every row). ``kw`` goes to
    ``celeb_a_annotated(mafl_dir=)``, ``annotated_folder(csv_path=, points=)`` or
    ``synthetic_annotated(num_images=, seed=)``.
    """
    name = _check(name, ANNOTATED_SOURCES, "annotated source", data_dir)
    if name == "celeb_a":
        return importlib.import_module(f"{__name__}.celeb_a").celeb_a_annotated(
            split, data_dir=data_dir, image_size=image_size, batch_size=batch_size, **kw)
    if name == "folder":
        return importlib.import_module(f"{__name__}.folders").annotated_folder(
            data_dir, image_size=image_size, batch_size=batch_size, split=split, **kw)
    return importlib.import_module(f"{__name__}.synthetic").synthetic_annotated(
        split, image_size=image_size, batch_size=batch_size, **kw)


__all__ = ["TRAINING_SOURCES", "ANNOTATED_SOURCES", "DEPRECATED_SOURCES", "LOADERS", "NUMPY_SOURCES", "PIPELINES",
           "annotated", "has_tensorflow", "resolve_pipeline", "source_name", "training_pairs"]

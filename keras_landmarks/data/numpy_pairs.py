"""Training pairs without TensorFlow: a ``keras.utils.PyDataset`` of NumPy batches.

The data path of the JAX and PyTorch backends (chosen by ``pipeline="numpy"``, the default
when TensorFlow is not installed; ``training.train`` and ``data.training_pairs`` take it).
It reuses the robust decoder (``decode.py``: unreadable files are skipped and counted) and
the OpenCV TPS sampler with the official warp distribution (``pairs.numpy_warps``), and
imports neither TensorFlow nor TFDS. Sources: ``folder`` (``FolderPairs``) and an
annotated folder for the evaluation protocol (``annotated_batches``); the ``video`` frames
and the toy faces stay on ``tf.data`` for now (BUILD.md, "Backends").

Batch ``i`` is a pure function of ``(seed, i)``, so Keras may build batches on worker
threads in any order: the file order is the concatenation of one permutation per pass
(``default_rng([seed, pass])``), batch ``i`` takes stream positions ``i*B ... i*B+B-1``,
continuing past them in place of files that fail to decode (every batch is full; a file
just past a bad one may then appear in two consecutive batches), and its
warps are those of the stateless seed ``[seed, i]``, as batch ``i`` of the ``tf.data``
pipeline (``warps.warp_batches``): the same warps, other images (another shuffle).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import keras
import numpy as np

from keras_landmarks.config import SOURCE_WARP, TARGET_WARP, WarpParams
from keras_landmarks.data.decode import DecodeError, DecodeStats, load_crop_resize, load_or_skip
from keras_landmarks.data.images import IMAGE_EXTENSIONS, list_images
from keras_landmarks.data.landmarks_csv import annotated_rows
from keras_landmarks.pairs import numpy_warps

logger = logging.getLogger("keras_landmarks.data")


def check_decodable(paths: Sequence[str], size: int, where: str) -> None:
    """Fail fast unless one of ``paths`` decodes (tries them in order, stops at the first)."""
    first_error = None
    for path in paths:
        try:
            load_crop_resize(path, size)
            return
        except (DecodeError, OSError) as e:
            first_error = first_error or f"{path}: {e}"
    raise ValueError(f"no readable image in {where}: all {len(paths)} image files failed to "
                     f"decode (first: {first_error}); check the folder's contents")


class FolderPairs(keras.utils.PyDataset):
    """Endless TPS training pairs of an image folder, as ``folders.image_folder_pairs``.

    Args:
      data_dir: root folder, searched recursively.
      image_size, batch_size, seed, target_warp, source_warp: as ``image_folder_pairs``.
      workers: threads building batches ahead of the step (OpenCV releases the GIL);
        ``use_multiprocessing`` is refused: ``decode_stats`` would stay in the workers.
      max_queue_size: batches built ahead of the step at most.
    Items:
      ``dataset[i]``: ``{"image", "future_image": [B, S, S, 3] float32 RGB [0, 255],
      "mask": [B, S, S, 1] float32}``, pixel ``(x, y)`` as in ``geometry.py``.
      ``num_batches`` is None (endless): pass ``steps_per_epoch`` to ``fit``.
    Raises:
      FileNotFoundError / ValueError naming ``data_dir`` if it holds no readable image.
    """

    def __init__(self, data_dir: str, image_size: int = 128, batch_size: int = 50, seed: int = 0, *,
                 target_warp: WarpParams = TARGET_WARP, source_warp: WarpParams = SOURCE_WARP,
                 workers: int = 2, max_queue_size: int = 8, stats: DecodeStats | None = None):
        super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=max_queue_size)
        self.paths = list_images(data_dir)
        if not self.paths:
            raise ValueError(f"image folder {data_dir!r} has no {'/'.join(IMAGE_EXTENSIONS)} files")
        self.image_size, self.batch_size, self.seed = image_size, batch_size, seed
        self.target_warp, self.source_warp = target_warp, source_warp
        check_decodable([self.paths[i] for i in self._order(0)], image_size, f"image folder {data_dir!r}")
        self.decode_stats = stats or DecodeStats(f"folder {data_dir}", files_per_epoch=len(self.paths))
        logger.info("%s: %d image files (NumPy pipeline, %d worker threads); unreadable ones are "
                    "skipped, warned about once and counted", self.decode_stats.name, len(self.paths), workers)

    @property
    def num_batches(self):
        return None

    def _order(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.paths))

    def images(self, index: int) -> np.ndarray:
        """``[B, S, S, 3]`` uint8 RGB of batch ``index``, before the warps."""
        size, out = self.image_size, np.empty((self.batch_size, self.image_size, self.image_size, 3), np.uint8)
        filled, position, orders = 0, index * self.batch_size, {}  # this call's passes (threads share nothing)
        # Every readable image is met within one pass; check_decodable found one.
        limit = position + self.batch_size + len(self.paths)
        while filled < self.batch_size:
            if position >= limit:
                raise ValueError(f"{self.decode_stats.name}: no readable image left in a whole pass "
                                 f"({self.decode_stats.summary()})")
            epoch, offset = divmod(position, len(self.paths))
            if epoch not in orders:
                orders[epoch] = self._order(epoch)
            loaded = load_or_skip(self.paths[orders[epoch][offset]], size, self.decode_stats)
            position += 1
            if loaded is not None:
                out[filled] = loaded[0]
                filled += 1
        return out

    def __getitem__(self, index: int) -> dict:
        return numpy_warps.warp_pairs(self.images(index), (self.seed, index), self.target_warp, self.source_warp)


def annotated_batches(data_dir: str, image_size: int, batch_size: int = 64, split: str | None = None,
                      points=None, csv_path: str | None = None, stats: DecodeStats | None = None) -> list[dict]:
    """``folders.annotated_folder`` without TensorFlow: a list of NumPy batches in CSV order,
    ``{"image": [B, S, S, 3] float32 RGB [0, 255], "landmarks": [B, P, 2] float32 pixel (x, y)
    of the S x S image}`` (the last may be smaller), for ``evaluation.protocol.collect``.
    Unreadable and missing images are skipped and recorded in ``stats``."""
    paths, landmarks, _, stats = annotated_rows(data_dir, csv_path, split, points, stats)
    images, moved = [], []
    for path, xy in zip(paths, landmarks):
        loaded = load_or_skip(path, image_size, stats)
        if loaded is not None:
            image, affine = loaded
            images.append(image.astype(np.float32))
            moved.append(xy * affine[None, :2] + affine[None, 2:])  # the crop and resize, exactly
    if not images:
        raise ValueError(f"no readable annotated image in {data_dir!r} ({stats.summary()})")
    return [{"image": np.stack(images[i:i + batch_size]), "landmarks": np.stack(moved[i:i + batch_size])}
            for i in range(0, len(images), batch_size)]


__all__ = ["FolderPairs", "annotated_batches", "check_decodable"]

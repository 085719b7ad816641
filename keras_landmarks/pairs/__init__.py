"""Training pairs (PAPER.md "Training pairs"): thin-plate-spline math (``tps``; its constant
matrices in ``tps_basis``), seeded random warps with their border mask (``warps``), and the
one warp stage of every CPU pipeline (``numpy_warps``: TF's Philox draws reproduced in NumPy
by ``philox``, the spline, the OpenCV sampling kernel ``cv2_sampler``), which ``tf.data``
runs in a ``tf.numpy_function`` and the ``PyDataset`` directly: one seed, the same warps.
``warps.warp_pairs(sampler="tf")`` is the pure-TF reference (XLA, GPU, any graph). Imports
run one way: ``warps -> tps -> tps_basis``, ``warps -> numpy_warps -> philox, cv2_sampler,
tps_basis``. Submodules load on first use, so the NumPy path never imports TensorFlow."""

from __future__ import annotations

from keras_landmarks._internal.lazy import lazy_attributes

_SUBMODULES = ("cv2_sampler", "numpy_warps", "philox", "tps", "tps_basis", "warps")
_EXPORTS = {"warp_pairs": "warps", "warp_frame_pairs": "warps"}

__all__ = ["tps", "warps", "numpy_warps", "philox", "warp_frame_pairs", "warp_pairs"]


__getattr__, __dir__ = lazy_attributes(__name__, globals(), _SUBMODULES, _EXPORTS)

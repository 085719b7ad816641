"""Training pairs (PAPER.md "Training pairs"): thin-plate-spline math (``tps``; its constant
matrices in ``tps_basis``), seeded random warps with their border mask (``warps``), the
OpenCV sampling kernel for CPU pipelines (``cv2_sampler``) and the same warps in NumPy
without TensorFlow (``numpy_warps``, for the JAX and PyTorch data path). Imports run one
way: ``warps -> cv2_sampler``, ``warps -> tps -> tps_basis``, ``numpy_warps -> tps_basis``.
Submodules load on first use, so the NumPy path never imports TensorFlow."""

from __future__ import annotations

from keras_landmarks._lazy import lazy_attributes

_SUBMODULES = ("cv2_sampler", "numpy_warps", "tps", "tps_basis", "warps")
_EXPORTS = {"warp_pairs": "warps", "warp_frame_pairs": "warps"}

__all__ = ["tps", "warps", "numpy_warps", "warp_frame_pairs", "warp_pairs"]


__getattr__, __dir__ = lazy_attributes(__name__, globals(), _SUBMODULES, _EXPORTS)

"""Training pairs (PAPER.md "Training pairs"): thin-plate-spline math (``tps``), seeded random
warps with their border mask (``warps``), and the OpenCV sampling kernel for CPU pipelines
(``cv2_sampler``, imported only when ``sampler="cv2"`` asks for it). Imports run one way:
``warps -> cv2_sampler``, ``warps -> tps``."""

from keras_landmarks.pairs import tps, warps
from keras_landmarks.pairs.warps import warp_frame_pairs, warp_pairs

__all__ = ["tps", "warps", "warp_frame_pairs", "warp_pairs"]

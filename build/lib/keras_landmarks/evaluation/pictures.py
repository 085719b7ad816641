"""The pictures of an evaluation: ground truth, regressed and detected points on test images."""

from __future__ import annotations

import os

import numpy as np

from keras_landmarks import viz


def write_evaluation_pictures(output_dir: str, images: np.ndarray, truth: np.ndarray, regressed: np.ndarray,
                              detected: np.ndarray) -> None:
    """Write ``landmarks.png`` (ground truth as crosses, regressed points as dots) and
    ``detections.png`` (the detector's own K points) to ``output_dir``.

    Args:
      images: ``[N, S, S, 3]`` uint8 RGB test images; only the first ``N`` rows of the
        point arrays are drawn.
      truth, regressed: ``[>= N, P, 2]`` pixel ``(x, y)`` of the ``S x S`` images.
      detected: ``[>= N, K, 2]`` pixel ``(x, y)``.
    Images smaller than 128 px are enlarged by an integer factor so markers stay small.
    """
    factor = max(1, 128 // images.shape[1]) if len(images) else 1
    shown, raw = [], []
    for i in range(len(images)):
        big = viz.enlarge(images[i], factor)
        gt, reg, det = (viz.enlarge_points(p[i], factor) for p in (truth, regressed, detected))
        shown.append(viz.draw_points(viz.draw_points(big, gt, marker="cross"), reg))
        raw.append(viz.draw_points(big, det))
    viz.write_png(os.path.join(output_dir, "landmarks.png"), viz.grid(np.stack(shown)))
    viz.write_png(os.path.join(output_dir, "detections.png"), viz.grid(np.stack(raw)))


__all__ = ["write_evaluation_pictures"]

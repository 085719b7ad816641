"""Pictures: landmarks drawn on images, images tiled into grids (OpenCV, numpy), and the
pictures of an evaluation (``write_evaluation_pictures``: ground truth, regressed and detected
points on test images). Training summaries, ``apps.predict``, ``apps.animate`` and the demo
draw with the same primitives.

Images are ``[H, W, 3]`` uint8 or float ``[0, 255]`` RGB; points are pixel ``(x, y)``
``[P, 2]`` (0-based, integer = pixel centre).
"""

from __future__ import annotations

import colorsys
import os

import cv2
import numpy as np

_SUBPIXEL_BITS = 4  # cv2 draws at 1/16 px so sub-pixel points are placed exactly


def palette(n: int) -> np.ndarray:
    """``[n, 3]`` uint8 RGB colours, evenly spaced hues (point i keeps its colour)."""
    return np.array(
        [[int(255 * c) for c in colorsys.hsv_to_rgb(i / max(n, 1), 0.85, 1.0)] for i in range(n)],
        np.uint8,
    )


def draw_points(image: np.ndarray, points: np.ndarray, colours: np.ndarray | None = None,
                radius: float | None = None, marker: str = "dot", outline: bool = True) -> np.ndarray:
    """A copy of ``image`` (uint8 RGB) with ``points`` drawn: ``dot`` filled, ``cross`` x.

    ``points``: ``[P, 2]`` pixel ``(x, y)``, placed to 1/16 px; point i gets ``palette``
    colour i. ``outline`` rings each dot in black (off for 1-2 px dots, where it would
    cover the dot itself).
    """
    out = np.ascontiguousarray(np.clip(image, 0, 255).astype(np.uint8))
    points = np.asarray(points, np.float64)
    colours = palette(len(points)) if colours is None else np.asarray(colours, np.uint8)
    r = radius if radius is not None else max(1.5, out.shape[0] / 64)
    scale = 2**_SUBPIXEL_BITS
    for (x, y), colour in zip(points, colours):
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        c = tuple(int(v) for v in colour)
        centre = (int(round(x * scale)), int(round(y * scale)))
        if marker == "dot":
            cv2.circle(out, centre, int(r * scale), c, -1, cv2.LINE_AA, _SUBPIXEL_BITS)
            if outline:
                cv2.circle(out, centre, int(r * scale), (0, 0, 0), 1, cv2.LINE_AA, _SUBPIXEL_BITS)
        else:
            d = int(r * 1.3 * scale)
            for sx, sy in ((1, 1), (1, -1)):
                cv2.line(out, (centre[0] - sx * d, centre[1] - sy * d),
                         (centre[0] + sx * d, centre[1] + sy * d), c, 1, cv2.LINE_AA, _SUBPIXEL_BITS)
    return out


def grid(images, cols: int = 8, pad: int = 2) -> np.ndarray:
    """Tile ``[N, H, W, 3]`` images (uint8) into one ``[rows*(H+pad), cols*(W+pad), 3]`` image."""
    images = np.asarray(images)
    n, h, w = images.shape[:3]
    cols = min(cols, n)
    rows = -(-n // cols)
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 255, np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        out[y:y + h, x:x + w] = np.clip(im, 0, 255).astype(np.uint8)
    return out


def enlarge(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour ``factor`` x enlargement of ``[H, W, 3]`` (see ``enlarge_points``)."""
    if factor <= 1:
        return np.asarray(image)
    return cv2.resize(np.asarray(image), None, fx=factor, fy=factor, interpolation=cv2.INTER_NEAREST)


def enlarge_points(points: np.ndarray, factor: int) -> np.ndarray:
    """Pixel ``(x, y)`` on the enlarged image: pixel ``x`` covers ``[x*f, x*f + f)``, so its
    centre goes to ``x * f + (f - 1) / 2``."""
    return np.asarray(points, np.float64) * factor + (factor - 1) / 2


def write_png(path: str, rgb: np.ndarray) -> None:
    """Write an RGB uint8 image as PNG."""
    if not cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path!r}")


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
        big = enlarge(images[i], factor)
        gt, reg, det = (enlarge_points(p[i], factor) for p in (truth, regressed, detected))
        shown.append(draw_points(draw_points(big, gt, marker="cross"), reg))
        raw.append(draw_points(big, det))
    write_png(os.path.join(output_dir, "landmarks.png"), grid(np.stack(shown)))
    write_png(os.path.join(output_dir, "detections.png"), grid(np.stack(raw)))


__all__ = ["draw_points", "enlarge", "enlarge_points", "grid", "palette", "write_evaluation_pictures", "write_png"]

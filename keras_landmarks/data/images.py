"""The one image geometry of the project: which files are images or videos, and how any
image becomes the model's ``S x S`` square. numpy + OpenCV only (no TensorFlow).

``fit_to_square`` centre-crops the largest square (or pads to the smallest one) and
resizes it with pixel-area averaging when shrinking (``INTER_AREA``) and bilinear
interpolation when enlarging. Pixel coordinates are 0-based with integers at pixel centres
(``geometry.py``); the resize maps pixel centres linearly, so a square of side ``L`` at
offset ``(x0, y0)`` maps a point as ``x' = (x - x0 + 0.5) * S / L - 0.5``; ``Transform``
holds the inverse.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm")


def is_image_file(name: str) -> bool:
    """Whether ``name`` ends in one of ``IMAGE_EXTENSIONS`` (any case)."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def is_video_file(name: str) -> bool:
    """Whether ``name`` ends in one of ``VIDEO_EXTENSIONS`` (any case)."""
    return name.lower().endswith(VIDEO_EXTENSIONS)


def natural_key(path) -> list:
    """Sort key of a path's file name with digit runs compared as numbers (``2`` < ``10``)."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", os.path.basename(str(path)))]


def frame_files(folder) -> list[Path]:
    """The image files directly inside ``folder``, in natural name order (``2.png`` before
    ``10.png``): a clip's frames."""
    files = [p for p in Path(folder).iterdir() if p.is_file() and is_image_file(p.name)]
    return sorted(files, key=natural_key)


def list_images(data_dir: str) -> list[str]:
    """Sorted paths of all image files (``IMAGE_EXTENSIONS``, any case) under ``data_dir``."""
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(f"image folder {data_dir!r} does not exist or is not a folder")
    paths = []
    for root, dirs, files in os.walk(data_dir):
        dirs.sort()
        paths += [os.path.join(root, f) for f in files if is_image_file(f)]
    return sorted(paths)


@dataclasses.dataclass(frozen=True)
class Transform:
    """Model-input pixels -> original pixels: ``orig = scale * p + (offset_x, offset_y)``.

    ``points`` are ``[..., 2]`` pixel ``(x, y)``; ``to_original`` and ``from_original`` are
    inverses. ``affine`` is ``from_original`` as ``(sx, sy, tx, ty)``: ``(sx x + tx, sy y + ty)``.
    """

    scale: float
    offset_x: float
    offset_y: float

    def to_original(self, points: np.ndarray) -> np.ndarray:
        """``[..., 2]`` ``(x, y)`` pixels of the ``S x S`` input -> pixels of the original."""
        return points * self.scale + np.array([self.offset_x, self.offset_y], np.float32)

    def from_original(self, points: np.ndarray) -> np.ndarray:
        """``[..., 2]`` pixels of the original -> pixels of the ``S x S`` input."""
        return (points - np.array([self.offset_x, self.offset_y], np.float32)) / self.scale

    def affine(self) -> np.ndarray:
        """``[4]`` float32 ``(sx, sy, tx, ty)`` of ``from_original``."""
        s = 1.0 / self.scale
        return np.array([s, s, -self.offset_x * s, -self.offset_y * s], np.float32)


def fit_to_square(image: np.ndarray, size: int, mode: str = "crop") -> tuple[np.ndarray, Transform]:
    """Centre-crop (``"crop"``) or black-pad (``"pad"``) ``image`` to a square, resize to ``size``.

    Args:
      image: ``[H, W, 3]`` uint8 (RGB, or BGR: channels are not touched).
    Returns:
      ``([size, size, 3]`` uint8, ``Transform`` back to ``image``'s pixels). The resize maps
      pixel centres linearly (``x_src = (x_dst + 0.5) * L / size - 0.5`` for a square of
      side ``L``), as ``cv2.resize`` does.
    """
    import cv2  # noqa: PLC0415

    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an [H, W, 3] image, got shape {image.shape}")
    h, w = image.shape[:2]
    if mode == "crop":
        side = min(h, w)
    elif mode == "pad":
        side = max(h, w)
    else:
        raise ValueError(f"fit mode must be 'crop' or 'pad', got {mode!r}")
    x0, y0 = (w - side) // 2, (h - side) // 2  # negative when padding
    if mode == "crop":
        square = image[y0:y0 + side, x0:x0 + side]
    else:
        square = cv2.copyMakeBorder(image, -y0, side - h + y0, -x0, side - w + x0,
                                    cv2.BORDER_CONSTANT, value=(0, 0, 0))
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    resized = cv2.resize(np.ascontiguousarray(square), (size, size), interpolation=interpolation)
    scale = side / size
    return resized, Transform(scale, x0 + 0.5 * scale - 0.5, y0 + 0.5 * scale - 0.5)


__all__ = ["IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS", "Transform", "fit_to_square", "frame_files", "natural_key", "is_image_file", "is_video_file"]

"""The spline's constant matrices in numpy, without TensorFlow (``tps.py`` has the math).

Shared by the TensorFlow warps (``tps.py``, ``warps.py``) and the NumPy/OpenCV ones
(``numpy_warps.py``, the data path of the JAX and PyTorch backends), so both evaluate the
same spline ``s(p) = [1, x, y] @ affine + sum_i weights_i U(|p - c_i|^2)``.
"""

from __future__ import annotations

import functools

import numpy as np

IDENTITY_AFFINE = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], np.float32)


def control_grid(n: int = 10) -> np.ndarray:
    """``[n*n, 2]`` float64 control points ``(x, y)`` on ``linspace(-1, 1, n)``; x varies fastest."""
    if n < 2:
        raise ValueError(f"control_grid needs n >= 2, got {n}")
    xx, yy = np.meshgrid(np.linspace(-1.0, 1.0, n), np.linspace(-1.0, 1.0, n))
    return np.stack([xx.ravel(), yy.ravel()], axis=1)


def numpy_kernel(r2: np.ndarray) -> np.ndarray:
    """TPS radial basis ``U(r2) = r2 * log(r2)`` of squared distances, ``U(0) = 0``."""
    return r2 * np.log(np.maximum(r2, 1e-30))


@functools.lru_cache(maxsize=16)
def pixel_basis(height: int, width: int, n: int) -> np.ndarray:
    """``[H*W, n*n + 3]`` float32: ``[U(|p - c_i|^2)..., 1, x, y]`` at the positions
    ``linspace(-1, 1, W) x linspace(-1, 1, H)`` (row-major, x fastest). Read-only (cached)."""
    xx, yy = np.meshgrid(np.linspace(-1.0, 1.0, width), np.linspace(-1.0, 1.0, height))
    pts = np.stack([xx.ravel(), yy.ravel()], axis=1)
    r2 = ((pts[:, None, :] - control_grid(n)[None]) ** 2).sum(-1)
    out = np.concatenate([numpy_kernel(r2), np.ones((len(pts), 1)), pts], 1).astype(np.float32)
    out.setflags(write=False)
    return out


@functools.lru_cache(maxsize=4)
def fit_matrix(n: int) -> np.ndarray:
    """``[n*n + 3, n*n]`` float32: maps control-point targets to ``[weights; affine]``."""
    c = control_grid(n)
    m = len(c)
    p = np.concatenate([np.ones((m, 1)), c], axis=1)
    system = np.zeros((m + 3, m + 3))
    system[:m, :m] = numpy_kernel(((c[:, None] - c[None]) ** 2).sum(-1))
    system[:m, m:] = p
    system[m:, :m] = p.T
    return np.linalg.inv(system)[:, :m].astype(np.float32)


def grid_shape(height: int, width: int, coarse_grid: int | None) -> tuple[int, int]:
    """Nodes ``(m_h, m_w)`` the spline is evaluated at: every pixel, or ``coarse_grid`` per axis."""
    if coarse_grid is None:
        return height, width
    if int(coarse_grid) < 2:
        raise ValueError(f"coarse_grid must be None or >= 2, got {coarse_grid}")
    return min(int(coarse_grid), height), min(int(coarse_grid), width)


__all__ = ["IDENTITY_AFFINE", "control_grid", "fit_matrix", "grid_shape", "numpy_kernel", "pixel_basis"]

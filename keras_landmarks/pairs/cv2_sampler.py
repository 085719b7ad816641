"""OpenCV sampling kernel of every CPU pipeline's warps (``numpy_warps``): numpy in, numpy out.

``numpy_warps`` draws the random warps and evaluates the spline, then hands this module the
*pixel* displacement of both warps on an ``m_h x m_w`` grid of normalised positions
``linspace(-1, 1, m)`` (``m = H`` and ``m = W``: every pixel); in ``tf.data`` that is one
``tf.numpy_function`` per batch (``warps.warp_pairs(sampler="cv2")``). Per image it upsamples the
displacement bilinearly (corner-aligned, ``cv2.remap``), adds the pixel centres and samples
with ``cv2.remap`` (bilinear, ``BORDER_CONSTANT`` zeros): the TF sampler's math. Every
OpenCV call releases the GIL, so the parallel ``tf.data`` map calls of a pipeline run on
all cores. Not for XLA or GPU graphs: use ``sampler="tf"`` there.

Exactness (OpenCV 5, measured; asserted by ``tests/test_tps.py``, ``tests/test_tps_cv2.py``):
``cv2.remap`` with float maps interpolates in float for 1, 3 and 4 channel float32 images
(~2e-5 of 255 from a float64 bilinear reference) but rounds the sample position to 1/32
pixel for 2 or >= 5 channels and for fixed-point maps (``cv2.convertMaps``, ``CV_16SC2``):
4-6 grey levels on noise. ``remap`` therefore splits images into chunks of 4, 3 and 1
channels; the border mask travels as the 4th channel of RGB images (one 4-channel remap
is cheaper than a 3-channel one, 95 vs 160 us at 128 px). ``cv2.resize`` (2.5x cheaper)
cannot do the upsampling: with half-pixel centres, padding and cropping, its nodes hit the
corner-aligned interpolant's kinks (``k (W - 1) / (m - 1)`` px) only if that spacing is
a ratio of odd numbers; 127/32 px (128 px, 33 nodes) is not.

Cost per 128 px RGB image, 33x33 nodes (one thread, quiet caches; ~1.5x that inside a
busy pipeline): two sampling remaps ~95 us each, the upsampling remap ~75 us, then ~10-30
us each for adding the pixel centres, splitting the maps (bit copies through a float64
view), uint8 -> float32 + mask and the RGBA -> RGB outputs. Work arrays are per thread and
reused. Outputs are 64-byte aligned, so a graph's ``tf.numpy_function`` wraps them
without a copy (it copies misaligned arrays; numpy's large ones are 16-byte aligned), and
are recycled once TF (or a ``PyDataset``'s consumer) drops them (``_OutputPool``). The pool
earns its place (``bench/pairs.py``, 128 px, batch 50, pairs/s with / without it, medians of
3 interleaved runs; 2-core AMD EPYC AVX-512 pinned to core 1, 2026-12-06; without it: fresh
aligned arrays per call, the bench's ``output_pool`` flag at 0): ``jpeg_folder`` 977 / 812,
``numpy_folder`` 1048 / 800, ``warp_only`` 1698 / 1268.
"""

from __future__ import annotations

import functools
import sys
import threading

import cv2
import numpy as np

from keras_landmarks._internal import exit_guard

_SAMPLE = {"interpolation": cv2.INTER_LINEAR, "borderMode": cv2.BORDER_CONSTANT, "borderValue": 0}


@functools.lru_cache(maxsize=16)
def pixel_centres(height: int, width: int, copies: int = 1) -> np.ndarray:
    """``[height, width, 2 copies]`` float32: pixel ``(x, y)`` of every pixel centre,
    ``copies`` times along the last axis (read-only)."""
    xx, yy = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    out = np.stack([xx, yy] * copies, -1)
    out.setflags(write=False)
    return out


@functools.lru_cache(maxsize=16)
def upsample_map(m_h: int, m_w: int, height: int, width: int) -> np.ndarray:
    """``[height, width, 2]`` float32 ``cv2.remap`` map reading an ``m_h x m_w`` grid at the
    corner-aligned positions ``x (m_w - 1) / (width - 1)``, ``y (m_h - 1) / (height - 1)``."""
    xs = np.arange(width, dtype=np.float64) * ((m_w - 1) / (width - 1))
    ys = np.arange(height, dtype=np.float64) * ((m_h - 1) / (height - 1))
    xx, yy = np.meshgrid(xs, ys)
    out = np.stack([xx, yy], -1).astype(np.float32)
    out.setflags(write=False)
    return out


def remap(src: np.ndarray, grid: np.ndarray, dst: np.ndarray | None = None) -> np.ndarray:
    """Bilinear ``src`` ``[H, W, C]`` float32 at pixel ``(x, y)`` ``grid`` ``[H', W', 2]`` float32,
    zeros outside (a tap outside the image contributes 0). Returns ``[H', W', C]`` float32
    (written into ``dst`` if given), in float arithmetic for every ``C`` (module docstring)."""
    channels = src.shape[2]
    if channels in (1, 3, 4):
        out = cv2.remap(src, grid, None, dst=dst, **_SAMPLE)
        return out.reshape(grid.shape[:2] + (channels,))
    if dst is None:
        dst = np.empty(grid.shape[:2] + (channels,), np.float32)
    start = 0
    while start < channels:
        size = 4 if channels - start >= 4 else 3 if channels - start == 3 else 1
        dst[..., start : start + size] = remap(np.ascontiguousarray(src[..., start : start + size]), grid)
        start += size
    return dst


def aligned_empty(shape: tuple[int, ...], align: int = 64) -> np.ndarray:
    """Uninitialised C-contiguous float32 array of ``shape`` whose data starts on an
    ``align``-byte boundary (what ``tf.numpy_function`` needs to skip its copy)."""
    size = int(np.prod(shape)) * 4
    raw = np.empty(size + align, np.uint8)
    start = -raw.ctypes.data % align
    return raw[start : start + size].view(np.float32).reshape(shape)


def _refcounts(arrays: tuple[np.ndarray, ...]) -> list[int]:
    """Reference counts of each array and of its memory's owner (numpy points every view
    of a view straight at the owner, so a holder of a view raises only the owner's)."""
    return [sys.getrefcount(x) for a in arrays for x in (a, a.base)]


class _OutputPool:
    """Output arrays of ``warp_pair_batch``, reused once nothing but the pool holds them.

    A graph's ``tf.numpy_function`` keeps a reference to each aligned array it wraps for
    as long as the tensor lives, and any other holder (a view included) raises the count of
    the array or of its memory's owner, so a set whose counts are back to their value at
    creation is free. ``busy`` covers the set while its kernel runs; the kernel returns
    a new list of the arrays, which holds them until TF has taken its own references. At most ``sets`` sets per shape are kept
    (more are allocated when TF holds more batches: slower, still correct), for the last
    ``shapes`` shapes.
    """

    def __init__(self, sets: int = 8, shapes: int = 4) -> None:
        self._sets, self._shapes = sets, shapes
        self._lock = threading.Lock()
        self._pools: dict[tuple, list[dict]] = {}

    def take(self, shapes: tuple[tuple[int, ...], ...]) -> dict:
        """A free set ``{"arrays": (float32 arrays of shapes), "busy": True, ...}``."""
        with self._lock:
            pool = self._pools.pop(shapes, [])
            self._pools[shapes] = pool  # most recently used last
            while len(self._pools) > self._shapes:
                del self._pools[next(iter(self._pools))]
            for entry in pool:
                if not entry["busy"] and _refcounts(entry["arrays"]) == entry["free"]:
                    entry["busy"] = True
                    return entry
            entry = {"arrays": tuple(aligned_empty(s) for s in shapes), "busy": True}
            entry["free"] = _refcounts(entry["arrays"])
            if len(pool) < self._sets:
                pool.append(entry)
            return entry

    @staticmethod
    def give(entry: dict) -> list[np.ndarray]:
        """The arrays to return to TF; the set is reusable once TF drops them."""
        arrays = list(entry["arrays"])
        entry["busy"] = False
        return arrays


_OUTPUTS = _OutputPool()
_THREAD = threading.local()


class _Work:
    """One thread's work arrays for one image size ``[H, W]`` and channel count ``C`` (never
    handed to TF), with the views the per-image steps use made once."""

    def __init__(self, height: int, width: int, channels: int) -> None:
        stack = (height, width, channels + 1)
        self.grids = np.empty((height, width, 4), np.float32)  # (x_t, y_t, x_s, y_s)
        self.grid_t, self.grid_s = np.empty((2, height, width, 2), np.float32)
        # (x, y) float32 pairs seen as float64: splitting 2 "channels" copies bits exactly
        self.split_maps = (self.grids.view(np.float64), [g.view(np.float64)[..., 0] for g in (self.grid_t, self.grid_s)])
        self.stack, self.warped, self.second = np.empty((3,) + stack, np.float32)
        self.stack_mask, self.warped_mask = self.stack[..., -1], self.warped[..., -1]
        self.rgba8 = np.empty((height, width, 4), np.uint8)


def _work(height: int, width: int, channels: int) -> _Work:
    """This thread's ``_Work`` for the size (threads run concurrent calls)."""
    cache = _THREAD.__dict__.setdefault("work", {})
    key = (height, width, channels)
    if key not in cache:
        if len(cache) >= 4:
            cache.clear()
        cache[key] = _Work(*key)
    return cache[key]


def sampling_maps(displacement: np.ndarray, height: int, width: int,
                  work: _Work | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pixel sampling maps of both warps of one image from their node displacement.

    Args:
      displacement: ``[m_h, m_w, 4]`` float32 pixel displacement (target ``(x, y)``, then
        source ``(x, y)``) at the normalised nodes ``linspace(-1, 1, m)``.
      work: the ``_Work`` to write into (default: this thread's).
    Returns:
      ``(grid_t, grid_s)``, each ``[height, width, 2]`` float32 pixel ``(x, y)`` =
      pixel centre + corner-aligned bilinear upsampling of the displacement (exact float
      bilinear; identity nodes give the integer centres). Views of ``work``: copy to keep.
    """
    work = work if work is not None else _work(height, width, 3)
    if displacement.shape[:2] != (height, width):
        up = upsample_map(displacement.shape[0], displacement.shape[1], height, width)
        # 4 float channels: exact bilinear; the last row/column reads node m - 1
        displacement = cv2.remap(displacement, up, None, cv2.INTER_LINEAR, work.grids, cv2.BORDER_REPLICATE)
    cv2.add(displacement, pixel_centres(height, width, 2), work.grids)
    cv2.split(*work.split_maps)
    return work.grid_t, work.grid_s


def _with_mask(image: np.ndarray, mask: np.ndarray, work: _Work) -> np.ndarray:
    """``work.stack`` ``[H, W, C + 1]`` float32 = ``image`` ``[H, W, C]`` (uint8/float32),
    then ``mask`` ``[H, W]``."""
    if image.shape[2] == 3 and image.dtype == np.uint8:
        np.copyto(work.stack, cv2.cvtColor(image, cv2.COLOR_RGB2RGBA, work.rgba8))
    elif image.shape[2] == 3 and image.dtype == np.float32:
        cv2.cvtColor(image, cv2.COLOR_RGB2RGBA, work.stack)
    else:
        work.stack[..., :-1] = image
    np.copyto(work.stack_mask, mask)
    return work.stack


def _sample(src: np.ndarray, grid: np.ndarray, dst: np.ndarray) -> None:
    """``remap`` into ``dst``; one direct OpenCV call when ``src`` has 4 channels."""
    if src.shape[2] == 4:
        cv2.remap(src, grid, None, cv2.INTER_LINEAR, dst, cv2.BORDER_CONSTANT)  # borderValue 0
    else:
        remap(src, grid, dst)


def _split(warped: np.ndarray, image_out: np.ndarray) -> None:
    """Copy all but the last channel of ``warped`` to ``image_out``."""
    if warped.shape[2] == 4:
        cv2.cvtColor(warped, cv2.COLOR_RGBA2RGB, image_out)
    else:
        image_out[...] = warped[..., :-1]


def warp_pair_batch(images, displacement, mask, future_images=None) -> list[np.ndarray]:
    """Training pairs of one batch (``warps.warp_pairs`` / ``warps.warp_frame_pairs`` math).

    Args:
      images: ``[B, H, W, C]`` uint8 or float32.
      displacement: ``[B, m_h, m_w, 4]`` float32 pixel displacement ``s(p) - p`` of the
        target warp (channels 0-1, ``(x, y)``) and the source warp (2-3) at the normalised
        positions ``linspace(-1, 1, m)``; ``(m_h, m_w) = (H, W)`` means every pixel.
      mask: ``[H, W, 1]`` float32 border mask (``warps.border_mask``).
      future_images: ``None`` (one image per pair) or ``[B, H, W, C]`` like ``images``.
    Returns:
      ``[image, future_image [B, H, W, C], mask [B, H, W, 1]]`` float32 (64-byte aligned,
      reused after TF drops them: copy to keep past that):
      ``future = warp_t(future_images or images)``, ``mask = warp_t(mask)``,
      ``image = warp_s(warp_t(images))``.
    """
    exit_guard.enter()
    batch, height, width, channels = images.shape
    work = _work(height, width, channels)
    outputs = _OUTPUTS.take(((batch, height, width, channels),) * 2 + ((batch, height, width, 1),))
    image_out, future_out, mask_out = outputs["arrays"]
    mask, mask_planes = mask[..., 0], mask_out[..., 0]
    for b in range(batch):
        grid_t, grid_s = sampling_maps(displacement[b], height, width, work)
        first = images[b] if future_images is None else future_images[b]
        _sample(_with_mask(first, mask, work), grid_t, work.warped)
        _split(work.warped, future_out[b])
        np.copyto(mask_planes[b], work.warped_mask)
        if future_images is not None:  # the source frame's own target warp
            _sample(_with_mask(images[b], mask, work), grid_t, work.warped)
        _sample(work.warped, grid_s, work.second)  # its mask channel rides along, unused
        _split(work.second, image_out[b])
    return _OUTPUTS.give(outputs)


__all__ = ["pixel_centres", "upsample_map", "remap", "aligned_empty", "sampling_maps", "warp_pair_batch"]

"""OpenCV sampling kernel of ``tps.warp_pairs(sampler="cv2")``: numpy in, numpy out.

``tps.py`` draws the random warps and evaluates the spline in TensorFlow (identical for
both samplers), then hands this module, through one ``tf.numpy_function`` per batch, the
*pixel* displacement of both warps on an ``m_h x m_w`` grid of normalised positions
``linspace(-1, 1, m)`` (``m = H`` and ``m = W``: every pixel). Per image it upsamples the
displacement bilinearly (corner-aligned, ``cv2.remap``), adds the pixel centres and samples
with ``cv2.remap`` (bilinear, ``BORDER_CONSTANT`` zeros): the TF sampler's math. Every
OpenCV call releases the GIL, so the parallel ``tf.data`` map calls of a pipeline run on
all cores. Not for XLA or GPU graphs: use ``sampler="tf"`` there.

Exactness (OpenCV 5, measured; asserted by ``tests/test_tps.py``): ``cv2.remap`` with float
maps interpolates in float for 1, 3 and 4 channel float32 images (~1e-5 of 255 from a
float64 bilinear reference) but rounds the sample position to 1/32 pixel for 2 or >= 5
channels (errors up to ~5 grey levels on noise). ``remap`` therefore splits images into
chunks of 4, 3 and 1 channels. The border mask travels as the 4th channel of RGB images.

Speed (128 px RGB, batch 50, one core, machine under load): this kernel ~0.3 ms per pair
(two 4-channel remaps ~0.13, upsampling both grids ~0.05, mask merge, grid and channel
shuffles ~0.08, Python); the TF side (random parameters, spline nodes, numpy_function
transfer) adds ~0.1-0.15 ms (``bench/tps.py``, ``bench/pairs.py --source=warp_only``).
"""

from __future__ import annotations

import functools

import cv2
import numpy as np
import tensorflow as tf

from keras_landmarks import exit_guard

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
        out = cv2.remap(src, grid, None, cv2.INTER_LINEAR, dst=dst, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return out.reshape(grid.shape[:2] + (channels,))
    if dst is None:
        dst = np.empty(grid.shape[:2] + (channels,), np.float32)
    start = 0
    while start < channels:
        size = 4 if channels - start >= 4 else 3 if channels - start == 3 else 1
        dst[..., start : start + size] = remap(np.ascontiguousarray(src[..., start : start + size]), grid)
        start += size
    return dst


def _with_mask(image: np.ndarray, mask: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out`` ``[H, W, C + 1]`` float32 = ``image`` ``[H, W, C]`` (uint8 or float32) then ``mask``."""
    if image.shape[2] == 3:
        rgb = image if image.dtype == np.float32 else image.astype(np.float32)
        return cv2.merge([rgb, mask], dst=out)
    out[..., :-1] = image
    out[..., -1:] = mask
    return out


def _split(warped: np.ndarray, channels: int, image_out: np.ndarray, mask_out: np.ndarray | None) -> None:
    """Copy the first ``channels`` channels of ``warped`` to ``image_out``, the last to ``mask_out``."""
    if channels == 3:
        cv2.cvtColor(warped, cv2.COLOR_RGBA2RGB, dst=image_out)
    else:
        image_out[...] = warped[..., :channels]
    if mask_out is not None:
        mask_out[...] = warped[..., channels:]


def warp_pair_batch(images, displacement, mask, future_images=None):
    """Training pairs of one batch (``tps.warp_pairs`` / ``tps.warp_frame_pairs`` math).

    Args:
      images: ``[B, H, W, C]`` uint8 or float32.
      displacement: ``[B, m_h, m_w, 4]`` float32 pixel displacement ``s(p) - p`` of the
        target warp (channels 0-1, ``(x, y)``) and the source warp (2-3) at the normalised
        positions ``linspace(-1, 1, m)``; ``(m_h, m_w) = (H, W)`` means every pixel.
      mask: ``[H, W, 1]`` float32 border mask (``tps.border_mask``).
      future_images: ``None`` (one image per pair) or ``[B, H, W, C]`` like ``images``.
    Returns:
      ``(image, future_image [B, H, W, C], mask [B, H, W, 1])`` float32:
      ``future = warp_t(future_images or images)``, ``mask = warp_t(mask)``,
      ``image = warp_s(warp_t(images))``.
    """
    exit_guard.enter()
    batch, height, width, channels = images.shape
    m_h, m_w = displacement.shape[1:3]
    base = pixel_centres(height, width, 2)  # [H, W, 4]: (x, y) of both warps
    up = None if (m_h, m_w) == (height, width) else upsample_map(m_h, m_w, height, width)
    image_out = np.empty(images.shape, np.float32)
    future_out = np.empty(images.shape, np.float32)
    mask_out = np.empty((batch, height, width, 1), np.float32)
    stack = np.empty((height, width, channels + 1), np.float32)
    warped = np.empty_like(stack)
    grids = np.empty((height, width, 4), np.float32)
    grid_t, grid_s = np.empty((2, height, width, 2), np.float32)
    for b in range(batch):
        disp = displacement[b]
        if up is not None:  # 4 float channels: exact bilinear; the last row/column reads m - 1
            disp = cv2.remap(disp, up, None, cv2.INTER_LINEAR, dst=grids, borderMode=cv2.BORDER_REPLICATE)
        cv2.add(disp, base, dst=grids)
        cv2.mixChannels([grids], [grid_t, grid_s], [0, 0, 1, 1, 2, 2, 3, 3])  # contiguous C-level copies
        first = images[b] if future_images is None else future_images[b]
        remap(_with_mask(first, mask, stack), grid_t, dst=warped)
        _split(warped, channels, future_out[b], mask_out[b])
        if future_images is not None:  # the source frame's own target warp
            remap(_with_mask(images[b], mask, stack), grid_t, dst=warped)
        remap(warped, grid_s, dst=stack)  # its mask channel rides along, unused
        _split(stack, channels, image_out[b], None)
    return image_out, future_out, mask_out


def _as_input(images) -> tf.Tensor:
    """uint8 and float32 pass as they are (no TF cast op); anything else becomes float32."""
    images = tf.convert_to_tensor(images)
    return images if images.dtype in (tf.uint8, tf.float32) else tf.cast(images, tf.float32)


def warp_pairs_graph(images, future_images, target_params, source_params, coarse_grid) -> dict:
    """TF side of ``tps.warp_pairs(sampler="cv2")``: spline nodes in TF, sampling here.

    Args:
      images, future_images: ``[B, H, W, C]`` tensors (static H, W, C); ``future_images``
        may be None. target_params, source_params: ``(weights, affine)`` of
        ``tps.random_tps_params``. coarse_grid: as in ``tps.warp_pairs``.
    Returns:
      The ``tps.warp_pairs`` dict, float32, static shapes.
    """
    from keras_landmarks import tps  # tps imports this module lazily: no import cycle

    images = _as_input(images)
    shape = images.shape
    height, width = int(shape[1]), int(shape[2])
    inputs = [images]
    if future_images is not None:
        inputs.append(_as_input(future_images))
        if not inputs[1].shape.is_compatible_with(shape):
            raise ValueError(f"future_images {inputs[1].shape} must have the shape of images {shape}")
    half = tps._half(height, width)
    disp = [tps._node_displacement(*p, height, width, coarse_grid, half) for p in (target_params, source_params)]
    mask = tps.border_mask(height, width)

    def kernel(imgs, displacement, *future):
        return warp_pair_batch(imgs, displacement, mask, *future)

    image, future, warped_mask = tf.numpy_function(
        kernel, [inputs[0], tf.concat(disp, -1), *inputs[1:]], (tf.float32,) * 3, stateful=False)
    image.set_shape(shape)
    future.set_shape(shape)
    warped_mask.set_shape(shape[:3].concatenate([1]))
    return {"image": image, "future_image": future, "mask": warped_mask}


__all__ = ["pixel_centres", "upsample_map", "remap", "warp_pair_batch", "warp_pairs_graph"]

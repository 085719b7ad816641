r"""Animate a still image with a driving video: the generator as a feature.

    landmarks-animate --model=faces --source=face.jpg --driving=clip.mp4 --output=out.mp4

For every driving frame ``t`` the detector finds its K points, the points are turned into
the source's frame (``motion``), and the generator redraws the source image with them:

* ``absolute``: the driving points themselves, ``kp_t``;
* ``relative`` (default, First Order Motion's ``--relative``): the source's own points
  plus the driving points' motion since the driving clip's first frame,
  ``kp_source + s * (kp_t - kp_0)``, with ``s = 1``, or with ``adapt_scale`` the ratio
  ``sqrt(area(hull(kp_source)) / area(hull(kp_0)))`` of the two point sets' convex-hull
  areas (FOMM's ``adapt_movement_scale``), so a small driving face moves a large source
  face by a proportionate amount. Relative motion keeps the source's identity (its face
  shape) where absolute motion imposes the driver's.

Points are ``[K, 2]`` ``(x, y)`` normalised ``[-1, 1]`` (``keras_landmarks.geometry``).
Every image (source and frames) is centre-cropped to a square (``fit="crop"``, or padded:
``"pad"``) as ``landmarks-predict`` does; the models see it at their ``S x S`` and the
output frames are ``display_size`` pixels square per panel.

Layouts: ``result`` (the animated frames only) or ``side_by_side`` (source | driving frame
with its points | result with the points it was given). Outputs by extension: ``.mp4``
(OpenCV's ``mp4v``), ``.gif`` (OpenCV's animation writer, 25 fps max), or ``.png``: a
strip of ``strip_frames`` frames evenly spaced over the clip, one row per layout panel.

Driving input: a video file or a folder of frames (natural name order); frames are read and
animated in batches, so memory is bounded by ``batch_size`` for MP4 output and by
``max_frames`` (default 1,000) for GIF and PNG, whose frames are held until written.
Unreadable frames of a folder are skipped with one warning; a clip with no readable frame,
a missing file or an output that cannot be written is a ``ValueError`` naming it.
"""

from __future__ import annotations

import os
import time
from typing import Iterator

import cv2
import numpy as np

from keras_landmarks.apps import media
from keras_landmarks.apps.media import check_driving, driving_frames, read_image, strip_indices  # noqa: F401 (re-exported)

MOTIONS = ("relative", "absolute")
LAYOUTS = ("result", "side_by_side")
OUTPUT_EXTENSIONS = (".mp4", ".gif", ".png")


# -- motion: closed form, numpy --------------------------------------------------------


def hull_area(points: np.ndarray) -> float:
    """Area of the convex hull of ``points`` ``[K, 2]`` (any units, squared)."""
    hull = cv2.convexHull(np.asarray(points, np.float32).reshape(-1, 1, 2))
    return float(cv2.contourArea(hull))


def motion_keypoints(source: np.ndarray, driving: np.ndarray, first: np.ndarray,
                     motion: str = "relative", adapt_scale: bool = False) -> np.ndarray:
    """The points the generator draws the source with, for each driving frame.

    Args:
      source: ``[K, 2]`` the source image's detected points.
      driving: ``[T, K, 2]`` the driving frames' points.
      first: ``[K, 2]`` the driving clip's first frame's points.
      motion: ``"relative"`` (``source + s * (driving - first)``) or ``"absolute"``
        (``driving``).
      adapt_scale: relative only: ``s = sqrt(hull_area(source) / hull_area(first))``
        instead of 1.
    Returns:
      ``[T, K, 2]`` float32, ``(x, y)`` normalised ``[-1, 1]`` (not clipped: the renderer
      accepts points outside the image, as parts can leave the frame).
    """
    if motion not in MOTIONS:
        raise ValueError(f"motion must be one of {MOTIONS}, got {motion!r}")
    source, driving, first = (np.asarray(a, np.float32) for a in (source, driving, first))
    if driving.ndim != 3 or source.shape != driving.shape[1:] or first.shape != source.shape:
        raise ValueError(f"expected source [K, 2], driving [T, K, 2], first [K, 2]; got "
                         f"{source.shape}, {driving.shape}, {first.shape}")
    if motion == "absolute":
        return driving.copy()
    scale = 1.0
    if adapt_scale:
        first_area = hull_area(first)
        scale = float(np.sqrt(hull_area(source) / first_area)) if first_area > 0 else 1.0
    return (source[None] + scale * (driving - first[None])).astype(np.float32)


# -- animating ----------------------------------------------------------------------------


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    """``[B, s, s, 3]`` uint8 -> ``[B, size, size, 3]`` uint8 (area when shrinking)."""
    if images.shape[1] == size:
        return images
    interpolation = cv2.INTER_AREA if images.shape[1] > size else cv2.INTER_LINEAR
    return np.stack([cv2.resize(im, (size, size), interpolation=interpolation) for im in images])


def _draw(images: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    from keras_landmarks import geometry  # noqa: PLC0415
    from keras_landmarks.evaluation import pictures  # noqa: PLC0415

    size = images.shape[1]
    pixels = np.asarray(geometry.normalized_to_pixels(keypoints, size))
    return np.stack([pictures.draw_points(im, p, radius=max(2.0, size / 80)) for im, p in zip(images, pixels)])


class Animator:
    """Detector + generator runners that animate one source image.

    Args:
      detector: a ``keras_landmarks.export.serving.Runner`` (any format: Keras, SavedModel,
        TFLite, ONNX) returning ``keypoints_normalized``.
      generator: a ``keras_landmarks.export.generator.GeneratorRunner`` of the same model.
      source: ``[D, D, 3]`` uint8 RGB square (``read_image``), any ``D``.
      motion, adapt_scale: see ``motion_keypoints``.
    """

    def __init__(self, detector, generator, source: np.ndarray, motion: str = "relative",
                 adapt_scale: bool = False):
        if motion not in MOTIONS:
            raise ValueError(f"--motion={motion!r}: choose from {MOTIONS}")
        if detector.image_size != generator.image_size:
            raise ValueError(f"the detector takes {detector.image_size} px and the generator "
                             f"{generator.image_size} px: export both from one model")
        self.detector, self.generator = detector, generator
        self.motion, self.adapt_scale = motion, adapt_scale
        self.size = generator.image_size
        self.source = np.ascontiguousarray(source, np.uint8)
        self.source_small = _resize(self.source[None], self.size)
        self.source_points = self.detect(self.source_small)[0]
        self.first_points = None
        self.model_seconds = 0.0

    def detect(self, squares: np.ndarray) -> np.ndarray:
        """``[B, K, 2]`` normalised points of ``[B, S, S, 3]`` uint8 squares."""
        return self.detector(squares.astype(self.detector.input_dtype))["keypoints_normalized"]

    def step(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        """Animate a batch of driving frames ``[B, D, D, 3]`` uint8 (the first batch of a clip
        fixes ``kp_0``). Returns ``{"generated": [B, S, S, 3] uint8, "driving_points",
        "points": [B, K, 2]}``."""
        start = time.perf_counter()
        driving_points = self.detect(_resize(frames, self.size))
        if self.first_points is None:
            self.first_points = driving_points[0]
        points = motion_keypoints(self.source_points, driving_points, self.first_points,
                                  self.motion, self.adapt_scale)
        sources = np.repeat(self.source_small, len(frames), axis=0).astype(self.generator.input_dtype)
        generated = self.generator(sources, points)
        self.model_seconds += time.perf_counter() - start
        return {"generated": np.clip(np.rint(generated), 0, 255).astype(np.uint8),
                "driving_points": driving_points, "points": points}

    def panels(self, frames: np.ndarray, out: dict, layout: str, display_size: int) -> np.ndarray:
        """``[B, D, D*P, 3]`` uint8 output frames: the result, or source | driving | result."""
        result = _resize(out["generated"], display_size)
        if layout == "result":
            return result
        driving = _draw(_resize(frames, display_size), out["driving_points"])
        drawn = _draw(result, out["points"])
        source = np.repeat(_resize(self.source[None], display_size), len(frames), axis=0)
        return np.concatenate([source, driving, drawn], axis=2)


def animate(detector, generator, source_path: str, driving_path: str, output: str,
            motion: str = "relative", adapt_scale: bool = False, layout: str = "result",
            fit: str = "crop", display_size: int = 256, batch_size: int = 16,
            max_frames: int | None = 1000, strip_frames: int = 8, fps: float | None = None,
            progress: bool = True, overwrite: bool = True) -> dict:
    """Animate ``source_path`` with ``driving_path``'s motion into ``output`` (module docstring).

    Returns ``{"frames", "model_seconds", "total_seconds", "output"}``. ``ValueError``
    naming the file for bad input or an output that cannot be written; nothing is left at
    ``output`` after a failure (it is written under a temporary name, then renamed).
    """
    ext = os.path.splitext(output)[1].lower()
    if ext not in OUTPUT_EXTENSIONS:
        raise ValueError(f"--output={output}: the extension picks the format, one of {OUTPUT_EXTENSIONS}")
    if layout not in LAYOUTS:
        raise ValueError(f"--layout={layout!r}: choose from {LAYOUTS}")
    if os.path.exists(output) and not overwrite:
        raise FileExistsError(f"{output} already exists")
    media.check_driving(driving_path)
    source = media.read_image(source_path, display_size, fit)
    animator = Animator(detector, generator, source, motion, adapt_scale)
    clip_fps, total = media.clip_info(driving_path, max_frames)
    fps = fps or clip_fps
    bar = _progress(total) if progress else None
    tmp = os.path.join(os.path.dirname(os.path.abspath(output)), f".{os.path.basename(output)}.tmp{ext}")
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    start, held, writer, count = time.perf_counter(), [], None, 0
    try:
        for batch in _batches(media.driving_frames(driving_path, display_size, fit, max_frames), batch_size):
            frames = animator.panels(batch, animator.step(batch), layout, display_size)
            if ext == ".mp4":
                writer = writer or media.video_writer(tmp, output, fps, frames.shape[2], frames.shape[1])
                for frame in frames:
                    writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            else:
                held += list(frames)
            count += len(frames)
            if bar is not None:
                bar.update(count)
        if writer is not None:
            writer.release()
            writer = None
        if ext == ".gif":
            media.write_gif(tmp, output, held, fps)
        elif ext == ".png":
            media.write_strip(tmp, output, held, strip_frames)
        if not os.path.isfile(tmp) or os.path.getsize(tmp) == 0:
            raise ValueError(f"could not write {output}: OpenCV wrote nothing there")
        os.replace(tmp, output)
    finally:
        if writer is not None:
            writer.release()
        if os.path.exists(tmp):
            os.remove(tmp)
    return {"frames": count, "model_seconds": animator.model_seconds,
            "total_seconds": time.perf_counter() - start, "output": output}


def _batches(frames: Iterator[np.ndarray], batch_size: int) -> Iterator[np.ndarray]:
    batch = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == batch_size:
            yield np.stack(batch)
            batch = []
    if batch:
        yield np.stack(batch)


def _progress(total: int | None):
    import keras  # noqa: PLC0415 (Keras' own bar: no new dependency)

    return keras.utils.Progbar(total, unit_name="frame")


__all__ = ["Animator", "LAYOUTS", "MOTIONS", "OUTPUT_EXTENSIONS", "animate", "check_driving",
           "driving_frames", "hull_area", "motion_keypoints", "read_image", "strip_indices"]

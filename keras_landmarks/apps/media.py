"""Reading and writing animation media: the source image, driving frames (a video or a frame
folder), and the output as MP4, GIF or a PNG strip (``keras_landmarks.apps.animate``). OpenCV
and numpy only; every failure is a ``ValueError`` naming the file and the flag."""

from __future__ import annotations

import logging
import os
from typing import Iterator

import cv2
import numpy as np

from keras_landmarks.data.images import VIDEO_EXTENSIONS, fit_to_square, frame_files, is_image_file, is_video_file

logger = logging.getLogger("keras_landmarks.animate")

GIF_MAX_FPS = 25.0


def check_driving(path: str) -> str:
    """``"video"`` or ``"frames"`` for a driving input; ``ValueError`` naming it otherwise."""
    if os.path.isdir(path):
        if not frame_files(path):
            raise ValueError(f"--driving={path}: the folder has no image frames")
        return "frames"
    if not os.path.isfile(path):
        raise ValueError(f"--driving={path} does not exist (a video {VIDEO_EXTENSIONS} or a folder of frames)")
    if not is_video_file(path):
        raise ValueError(f"--driving={path}: expected a video {VIDEO_EXTENSIONS} or a folder of frames")
    return "video"


def read_image(path: str, size: int, fit: str = "crop") -> np.ndarray:
    """``[size, size, 3]`` uint8 RGB square of the image at ``path`` (``fit_to_square``)."""
    if not os.path.isfile(path) or not is_image_file(path):
        raise ValueError(f"--source={path}: not an image file")
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"--source={path} is not a readable image")
    return fit_to_square(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), size, fit)[0]


def driving_frames(path: str, size: int, fit: str = "crop", max_frames: int | None = None) -> Iterator[np.ndarray]:
    """``[size, size, 3]`` uint8 RGB squares of a video's or frame folder's frames, in order.

    Stops after ``max_frames`` frames. Raises ``ValueError`` naming ``path`` if no frame
    is readable; unreadable frames of a folder are skipped with one warning.
    """
    kind, count = check_driving(path), 0
    if kind == "video":
        capture = cv2.VideoCapture(path)
        if not capture.isOpened():
            raise ValueError(f"--driving={path}: OpenCV cannot open this video")
        try:
            while max_frames is None or count < max_frames:
                ok, bgr = capture.read()
                if not ok:
                    break
                count += 1
                yield fit_to_square(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), size, fit)[0]
        finally:
            capture.release()
    else:
        skipped = []
        for file in frame_files(path):
            if max_frames is not None and count >= max_frames:
                break
            bgr = cv2.imread(str(file), cv2.IMREAD_COLOR)
            if bgr is None:
                skipped.append(file.name)
                continue
            count += 1
            yield fit_to_square(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), size, fit)[0]
        if skipped:
            logger.warning("--driving=%s: skipped %d unreadable frames (%s ...)", path, len(skipped), skipped[0])
    if count == 0:
        raise ValueError(f"--driving={path}: no readable frame")


def capture_fps(capture, default_fps: float = 25.0) -> float:
    """The frame rate an open ``cv2.VideoCapture`` reports, or ``default_fps`` where it reports
    none (0, NaN or negative: some containers and frame sequences)."""
    rate = capture.get(cv2.CAP_PROP_FPS)
    return rate if rate and np.isfinite(rate) and rate > 0 else default_fps


def clip_info(path: str, max_frames: int | None = None, default_fps: float = 25.0) -> tuple[float, int | None]:
    """``(frames per second, frame count)`` of a video or frame folder, from one open of the
    video (not the frames' reader's): ``default_fps`` for a folder or an unknown rate; the
    count capped at ``max_frames``, None when the container does not say (for the progress bar)."""
    fps, count = default_fps, 0
    if os.path.isdir(path):
        count = len(frame_files(path))
    else:
        capture = cv2.VideoCapture(path)
        try:
            fps = capture_fps(capture, default_fps)
            count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        finally:
            capture.release()
    if count and max_frames:
        count = min(count, max_frames)
    return fps, count or None


def video_writer(tmp: str, output: str, fps: float, width: int, height: int):
    writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise ValueError(f"could not write {output}: OpenCV cannot open a video writer there "
                         "(is the folder writable, is mp4v available?)")
    return writer


def write_gif(tmp: str, output: str, frames: list, fps: float) -> None:
    animation = cv2.Animation()
    animation.frames = [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f in frames]
    animation.durations = [int(round(1000 / min(fps, GIF_MAX_FPS)))] * len(frames)
    try:
        ok = cv2.imwriteanimation(tmp, animation)
    except cv2.error as e:
        raise ValueError(f"could not write {output}: {e}") from None
    if not ok:
        raise ValueError(f"could not write {output} (is the folder writable?)")


def strip_indices(count: int, strip_frames: int) -> np.ndarray:
    """``min(count, strip_frames)`` frame indices evenly spaced over ``[0, count - 1]``."""
    return np.unique(np.linspace(0, count - 1, min(count, strip_frames)).round().astype(int))


def write_strip(tmp: str, output: str, frames: list, strip_frames: int) -> None:
    """A PNG with one column per chosen frame (``strip_indices``) and one row per panel:
    ``frames`` are ``[D, P * D, 3]`` uint8 RGB (``P`` panels of ``D x D`` side by side)."""
    chosen = np.stack([frames[i] for i in strip_indices(len(frames), strip_frames)])
    d = chosen.shape[1]
    panels = chosen.shape[2] // d
    rows = [np.concatenate(list(chosen[:, :, p * d:(p + 1) * d]), axis=1) for p in range(panels)]
    image = np.concatenate(rows, axis=0)
    ok = cv2.imwrite(tmp, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"could not write {output} (is the folder writable?)")


__all__ = ["capture_fps", "check_driving", "clip_info", "driving_frames", "read_image", "strip_indices",
           "video_writer", "write_gif", "write_strip"]

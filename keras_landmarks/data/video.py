"""Training pairs from video: two frames of one clip (PAPER.md "Training pairs", Videos).

``video_pairs`` yields the project's batched pair dicts: ``image`` (source ``x``,
appearance) and ``future_image`` (target ``x'``, geometry) are two frames of the same clip
at most ``max_offset`` frames apart, ``mask`` is ones (or, with ``tps=True``, the TPS border
mask; both frames then also get the random warps of ``keras_landmarks.pairs.warps``).

``data_dir`` holds video files (``.mp4 .avi .mov .mkv .webm``, read with OpenCV) and/or
frame folders (one sub-folder of ``.jpg .jpeg .png .bmp .webp`` images per clip, in
natural name order: ``2.png`` before ``10.png``). Every frame is centre-cropped to a
square, resized to ``image_size`` (``INTER_AREA`` when shrinking) and kept as RGB.

How frames are read: each clip is decoded **once**, when the dataset is built, into a
``[T, S, S, 3]`` uint8 array of ready frames; a batch is then a numpy index into those
arrays. The alternative, seeking in the video for every pair, is slow and inexact with
OpenCV (it seeks to key frames), and decoding is cheap (the 184-frame 256x256 H.264 sample
decodes in ~0.1 s). The price is start-up time and storage, 48 KiB per frame at 128 px
(~70 min of 25 fps video per 4 GiB). Two stores:

* memory (default), capped by ``max_memory_bytes``: past the cap, building fails and says
  to use ``cache_dir``;
* disk (``cache_dir=...``): one ``.npy`` per clip, memory-mapped, so only the OS page cache
  holds frames in RAM; reused by later runs while the source's path, size, modification
  time and ``image_size`` are unchanged. Limited by disk space only.

Bad input: an unreadable or corrupt video (or a frame folder without one readable image)
is skipped with one warning naming it and counted in ``Clips.skipped``; a clip shorter
than ``min_offset + 1`` frames is skipped likewise. A missing folder, a folder without
clips or without any usable clip fails at once with an error naming the path.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import logging
import os
import re
from pathlib import Path

import cv2
import numpy as np
import tensorflow as tf

from keras_landmarks.config import SOURCE_WARP, TARGET_WARP, WarpParams
from keras_landmarks._internal.stale import remove_stale
from keras_landmarks.data import decode
from keras_landmarks.data.images import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, fit_to_square, frame_files, natural_key
from keras_landmarks.pairs import warps

_CACHE_VERSION = "1"
_log = logging.getLogger(__name__)


@dataclasses.dataclass
class Clips:
    """Decoded clips of a folder.

    Attributes:
      names: clip paths, one per entry of ``frames``.
      frames: ``[T_i, S, S, 3]`` uint8 RGB arrays (in memory or memory-mapped).
      skipped: paths of unreadable, corrupt or too-short clips.
    """

    names: list[str]
    frames: list[np.ndarray]
    skipped: list[str]


def crop_and_resize(frame_bgr: np.ndarray, image_size: int) -> np.ndarray:
    """Centre square crop of a ``[H, W, 3]`` uint8 BGR frame -> ``[S, S, 3]`` uint8 RGB
    (``images.fit_to_square``)."""
    return cv2.cvtColor(fit_to_square(frame_bgr, image_size)[0], cv2.COLOR_BGR2RGB)


def find_clips(data_dir: Path) -> list[Path]:
    """Video files and frame folders directly inside ``data_dir`` (hidden ones ignored), in
    natural name order."""
    entries = [p for p in Path(data_dir).iterdir() if not p.name.startswith(".")]
    videos = [p for p in entries if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS]
    folders = [p for p in entries if p.is_dir() and frame_files(p)]
    return sorted(videos + folders, key=natural_key)


class ClipTooLong(ValueError):
    """A clip reached the frame cap of the in-memory store while it was being read."""


def _decode(source: Path, image_size: int, max_frames: int | None = None) -> np.ndarray | None:
    """All readable frames of a clip as ``[T, S, S, 3]`` uint8 RGB, or None if none is.

    Frame-folder images go through ``decode.load_crop_resize`` (header checks, pixel cap).
    Reading stops as soon as ``max_frames`` frames are held: ``ClipTooLong`` then, not a
    whole clip decoded before the memory check.
    """
    frames = []

    def keep(frame):
        if max_frames is not None and len(frames) >= max_frames:
            raise ClipTooLong(f"clip {source} has more than {max_frames} frames")
        frames.append(frame)

    if source.is_dir():
        unreadable = []
        for path in frame_files(source):
            try:
                keep(decode.load_crop_resize(str(path), image_size)[0])
            except (decode.DecodeError, OSError):
                unreadable.append(path.name)
        if unreadable and frames:
            _log.warning("frame folder %s: skipped %d unreadable images (%s ...)", source, len(unreadable), unreadable[0])
    else:
        capture = cv2.VideoCapture(str(source))
        try:
            while capture.isOpened():
                ok, image = capture.read()
                if not ok:
                    break
                keep(crop_and_resize(image, image_size))
        finally:
            capture.release()
    return np.stack(frames) if frames else None


def _cache_file(cache_dir: Path, source: Path, image_size: int) -> Path:
    parts = [source] + (frame_files(source) if source.is_dir() else [])
    stats = [f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in parts]
    key = hashlib.sha1("|".join(stats + [str(image_size), _CACHE_VERSION]).encode()).hexdigest()
    return cache_dir / f"{source.name}-{image_size}-{key[:16]}.npy"


def _load(source: Path, image_size: int, cache_dir: Path | None, max_frames: int | None) -> np.ndarray | None:
    if cache_dir is None:
        return _decode(source, image_size, max_frames)
    path = _cache_file(cache_dir, source, image_size)
    if not path.exists():
        frames = _decode(source, image_size)
        if frames is None:
            return None
        remove_stale(str(cache_dir), re.escape(path.stem) + r"\.tmp(\d+)\.npy")  # a killed earlier run's
        tmp = path.with_suffix(f".tmp{os.getpid()}.npy")
        np.save(tmp, frames)
        os.replace(tmp, path)  # atomic: a concurrent reader never sees half a file
    return np.load(path, mmap_mode="r")


def load_clips(
    data_dir: str | os.PathLike,
    image_size: int = 128,
    min_frames: int = 2,
    cache_dir: str | os.PathLike | None = None,
    max_memory_bytes: int = 4 << 30,
    num_workers: int | None = None,
) -> Clips:
    """Decode every clip of ``data_dir`` once (module docstring); skip bad ones with a warning.

    Args:
      min_frames: clips with fewer frames are skipped. cache_dir: disk store (created).
      max_memory_bytes: cap of the in-memory store (ignored with ``cache_dir``).
      num_workers: decoding threads (OpenCV releases the GIL); default ``min(4, cpus)``.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"video data_dir {str(root)!r} is not a folder: pass a folder of videos or frame folders")
    sources = find_clips(root)
    if not sources:
        raise ValueError(
            f"video data_dir {str(root)!r} has no video files ({' '.join(VIDEO_EXTENSIONS)}) "
            f"and no sub-folders of frames ({' '.join(IMAGE_EXTENSIONS)})"
        )
    cache = Path(cache_dir) if cache_dir is not None else None
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
    clips, used = Clips([], [], []), 0
    too_much = (f"decoded frames of {str(root)!r} exceed max_memory_bytes={max_memory_bytes}: "
                "pass cache_dir=<folder> (landmarks-train --data.cache_dir=<folder>) to keep them on "
                "disk, or lower image_size (--config.image_size)")
    # In memory, no clip may hold more frames than the whole store: reading stops there.
    max_frames = None if cache is not None else max_memory_bytes // (image_size * image_size * 3) + 1
    pool = concurrent.futures.ThreadPoolExecutor(num_workers or min(4, os.cpu_count() or 1))
    try:
        try:
            loaded = list(pool.map(lambda s: _load(s, image_size, cache, max_frames), sources))
        except ClipTooLong:
            raise ValueError(too_much) from None
        for source, frames in zip(sources, loaded):
            if frames is None or len(frames) < min_frames:
                why = "unreadable or corrupt" if frames is None else f"{len(frames)} frames < {min_frames}"
                _log.warning("skipping clip %s: %s", source, why)
                clips.skipped.append(str(source))
                continue
            used += frames.nbytes if cache is None else 0
            if used > max_memory_bytes:
                raise ValueError(too_much)
            clips.names.append(str(source))
            clips.frames.append(frames)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    if not clips.frames:
        raise ValueError(
            f"video data_dir {str(root)!r}: none of its {len(sources)} clips is readable with "
            f">= {min_frames} frames (skipped: {', '.join(clips.skipped[:3])} ...)"
        )
    total = sum(len(f) for f in clips.frames)
    _log.info("%s: %d clips, %d frames, %d skipped", root, len(clips.frames), total, len(clips.skipped))
    return clips


class PairSampler:
    """Random frame pairs ``(clip, first, second)`` with ``min_offset <= |second - first| <= max_offset``.

    Every first frame that has a partner is equally likely (so clips are drawn in
    proportion to their length); the partner is uniform among the frames at an allowed
    offset before or after it, so ``image``/``future_image`` order is random in time.
    """

    def __init__(self, lengths, min_offset: int = 1, max_offset: int = 30):
        if not 1 <= min_offset <= max_offset:
            raise ValueError(f"need 1 <= min_offset <= max_offset, got {min_offset}, {max_offset}")
        lengths = np.asarray(lengths, np.int64)
        clip = np.repeat(np.arange(len(lengths)), lengths)
        local = np.arange(len(clip)) - np.concatenate([[0], np.cumsum(lengths)[:-1]])[clip]
        before = np.clip(np.minimum(max_offset, local) - min_offset + 1, 0, None)
        after = np.clip(np.minimum(max_offset, lengths[clip] - 1 - local) - min_offset + 1, 0, None)
        valid = before + after > 0
        if not valid.any():
            raise ValueError(f"no clip is longer than min_offset={min_offset} frames")
        self._clip, self._local = clip[valid], local[valid]
        self._before, self._after = before[valid], after[valid]
        self._min_offset = min_offset

    def sample(self, rng: np.random.Generator, batch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Three ``[batch]`` int64 arrays: clip index, first frame, second frame."""
        k = rng.integers(0, len(self._clip), batch)
        r = rng.integers(0, self._before[k] + self._after[k])
        offset = np.where(r < self._before[k], -(self._min_offset + r), self._min_offset + r - self._before[k])
        return self._clip[k], self._local[k], self._local[k] + offset


def video_pairs(
    data_dir: str | os.PathLike,
    image_size: int = 128,
    batch_size: int = 50,
    seed: int = 0,
    max_offset: int = 30,
    tps: bool = False,
    *,
    min_offset: int = 1,
    target_warp: WarpParams = TARGET_WARP,
    source_warp: WarpParams = SOURCE_WARP,
    cache_dir: str | os.PathLike | None = None,
    max_memory_bytes: int = 4 << 30,
    num_batches: int | None = None,
) -> tf.data.Dataset:
    """Batched video training pairs (data contract of the project).

    Args:
      data_dir: folder of video files and/or frame folders. image_size: side ``S``.
      seed: fixes the pair sampling and the TPS warps; a new iterator replays the stream.
      max_offset, min_offset: allowed time distance of the two frames, in frames
        (default 30: about a second of video).
      tps: also warp the pair, ``x' = warp_t(frame_b)``, ``x = warp_s(warp_t(frame_a))``,
        and return the warped border mask (``keras_landmarks.pairs.warps.warp_frame_pairs``).
      cache_dir: keep the decoded frames on disk in this folder (one memory-mapped ``.npy``
        per clip, reused by later runs) instead of in memory.
      max_memory_bytes: cap of the in-memory frame store; past it, building fails and says
        to use ``cache_dir``.
      num_batches: stop after this many batches; None = endless.
    Returns:
      ``tf.data.Dataset`` of ``{"image", "future_image": [B, S, S, 3] float32 RGB [0, 255],
      "mask": [B, S, S, 1] float32}`` with static shapes.
    """
    if image_size < 2 or batch_size < 1:
        raise ValueError(f"video_pairs: need image_size >= 2 and batch_size >= 1, got {image_size}, {batch_size}")
    clips = load_clips(data_dir, image_size, min_offset + 1, cache_dir, max_memory_bytes)
    sampler = PairSampler([len(f) for f in clips.frames], min_offset, max_offset)

    def generate():
        rng = np.random.default_rng(seed)
        count = 0
        while num_batches is None or count < num_batches:
            clip, first, second = sampler.sample(rng, batch_size)
            yield (
                np.stack([clips.frames[c][i] for c, i in zip(clip, first)]),
                np.stack([clips.frames[c][i] for c, i in zip(clip, second)]),
            )
            count += 1

    spec = tf.TensorSpec([batch_size, image_size, image_size, 3], tf.uint8)
    ds = tf.data.Dataset.from_generator(generate, output_signature=(spec, spec))

    def untouched(image, future):
        ones = tf.ones([batch_size, image_size, image_size, 1], tf.float32)
        return {"image": tf.cast(image, tf.float32), "future_image": tf.cast(future, tf.float32), "mask": ones}

    if tps:  # uint8 frames in
        return warps.warp_batches(ds, seed, target_warp, source_warp, frames=True)
    return ds.map(untouched, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


__all__ = ["Clips", "PairSampler", "crop_and_resize", "find_clips", "load_clips", "video_pairs"]

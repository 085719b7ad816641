"""Video pairs from clips written on the fly: a coloured square moves one pixel per frame."""

import logging
import os

import cv2
import numpy as np
import pytest
import tensorflow as tf

from keras_landmarks.pairs import warps
from keras_landmarks.data import video

HEIGHT, WIDTH, FRAMES = 24, 40, 12  # landscape: the centre crop is columns 8..31
COLOURS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}  # RGB


def _frame_rgb(colour: str, t: int) -> np.ndarray:
    """Full ``[24, 40, 3]`` RGB frame: grey, white bars outside the crop, a 4x4 square at x=8+t."""
    frame = np.full((HEIGHT, WIDTH, 3), 40, np.uint8)
    frame[:, :8] = frame[:, 32:] = 255
    frame[10:14, 8 + t : 12 + t] = COLOURS[colour]
    return frame


def _write_video(path, fourcc: str, colour: str) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, (WIDTH, HEIGHT))
    assert writer.isOpened(), f"OpenCV cannot write {fourcc} to {path}"
    for t in range(FRAMES):
        writer.write(cv2.cvtColor(_frame_rgb(colour, t), cv2.COLOR_RGB2BGR))
    writer.release()


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    _write_video(root / "red.avi", "FFV1", "red")  # lossless codecs: exact pixels
    _write_video(root / "green.mkv", "FFV1", "green")
    folder = root / "blue"
    folder.mkdir()
    for t in range(FRAMES):  # frame_2 must come before frame_10 (natural order)
        cv2.imwrite(str(folder / f"frame_{t}.png"), cv2.cvtColor(_frame_rgb("blue", t), cv2.COLOR_RGB2BGR))
    (root / "notes.txt").write_text("ignored")
    hidden = root / ".thumbnails"  # hidden folders are not clips
    hidden.mkdir()
    for t in range(3):
        cv2.imwrite(str(hidden / f"{t}.png"), np.zeros((8, 8, 3), np.uint8))
    return root


def _identify(image: np.ndarray) -> tuple[str, int]:
    """(colour, time) of a 24x24 crop from the square's colour and left edge."""
    ys, xs = np.nonzero(image.max(-1) > 128)
    colour = ("red", "green", "blue")[int(np.argmax(image[ys, xs].mean(0)))]
    return colour, int(round(xs.mean() - 1.5))


def test_pairs_come_from_one_clip_within_the_window_exact_rgb_crop(clip_dir):
    ds = video.video_pairs(clip_dir, image_size=24, batch_size=16, seed=1, max_offset=3, num_batches=4)
    seen, orders = set(), set()
    for batch in ds:
        assert batch["image"].shape == (16, 24, 24, 3) and batch["image"].dtype == tf.float32
        np.testing.assert_array_equal(batch["mask"].numpy(), np.ones((16, 24, 24, 1)))
        for x, x_future in zip(batch["image"].numpy(), batch["future_image"].numpy()):
            (c1, t1), (c2, t2) = _identify(x), _identify(x_future)
            assert c1 == c2 and 1 <= abs(t1 - t2) <= 3
            # Exactly the centre crop of the written frame, in RGB order.
            np.testing.assert_array_equal(x, _frame_rgb(c1, t1)[:, 8:32])
            np.testing.assert_array_equal(x_future, _frame_rgb(c2, t2)[:, 8:32])
            seen.add(c1)
            orders.add(t2 > t1)
    assert seen == {"red", "green", "blue"} and orders == {True, False}


def test_resize_is_an_area_average(clip_dir):
    clips = video.load_clips(clip_dir, image_size=12)
    for name, frames in zip(clips.names, clips.frames):
        colour = next(c for c in COLOURS if c in os.path.basename(name))
        crops = np.stack([_frame_rgb(colour, t)[:, 8:32] for t in range(FRAMES)]).astype(np.float64)
        block_mean = crops.reshape(FRAMES, 12, 2, 12, 2, 3).mean((2, 4))  # 2x2 area average
        np.testing.assert_allclose(frames, block_mean, atol=0.5 + 1e-9)  # uint8 rounding


def test_same_seed_replays_and_tps_path_matches_warp_frame_pairs(clip_dir):
    plain = video.video_pairs(clip_dir, image_size=24, batch_size=5, seed=3, num_batches=2)
    a, b = list(plain), list(plain)
    for key in a[0]:
        np.testing.assert_array_equal(a[1][key].numpy(), b[1][key].numpy())
    warped = list(video.video_pairs(clip_dir, image_size=24, batch_size=5, seed=3, num_batches=2, tps=True))
    ref = warps.warp_frame_pairs(a[1]["image"], a[1]["future_image"], tf.constant([3, 1], tf.int64))
    for key in ("image", "future_image", "mask"):
        np.testing.assert_allclose(warped[1][key].numpy(), ref[key].numpy(), atol=1e-3)
    mask = warped[0]["mask"].numpy()
    assert mask.shape == (5, 24, 24, 1) and mask.min() == 0.0 and mask.max() <= 1.0


def test_lossy_mp4_and_mov_are_read(tmp_path):
    _write_video(tmp_path / "a.mp4", "mp4v", "red")
    _write_video(tmp_path / "b.mov", "mp4v", "green")
    clips = video.load_clips(tmp_path, image_size=24)
    assert [os.path.basename(n) for n in clips.names] == ["a.mp4", "b.mov"]
    for frames, colour in zip(clips.frames, ("red", "green")):
        assert frames.shape == (FRAMES, 24, 24, 3) and frames.dtype == np.uint8
        found = [_identify(f) for f in frames]
        assert {c for c, _ in found} == {colour}
        # mp4v subsamples chroma 2x: the square's position is known to one pixel.
        assert np.abs(np.array([t for _, t in found]) - np.arange(FRAMES)).max() <= 1


def test_corrupt_and_short_clips_are_skipped_with_one_warning_each(clip_dir, tmp_path, caplog):
    for name in ("red.avi", "blue"):
        os.symlink(clip_dir / name, tmp_path / name)
    (tmp_path / "broken.mp4").write_bytes(os.urandom(3000))
    (tmp_path / "empty.webm").write_bytes(b"")
    short = tmp_path / "short"
    short.mkdir()
    cv2.imwrite(str(short / "0.png"), np.zeros((8, 8, 3), np.uint8))
    with caplog.at_level(logging.WARNING, logger=video.__name__):
        clips = video.load_clips(tmp_path, image_size=24)
    assert sorted(os.path.basename(p) for p in clips.skipped) == ["broken.mp4", "empty.webm", "short"]
    assert len(clips.frames) == 2
    for name in ("broken.mp4", "empty.webm", "short"):
        assert sum(f"{tmp_path / name}:" in r.getMessage() for r in caplog.records) == 1


def test_bad_folders_fail_fast_naming_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing"):
        video.video_pairs(tmp_path / "missing")
    with pytest.raises(ValueError, match=str(tmp_path)):
        video.video_pairs(tmp_path)
    (tmp_path / "bad.avi").write_bytes(b"not a video")
    with pytest.raises(ValueError, match="none of its 1 clips is readable"):
        video.video_pairs(tmp_path)


def test_disk_cache_is_memory_mapped_and_keyed_by_the_source(clip_dir, tmp_path):
    memory = video.load_clips(clip_dir, image_size=24)
    cached = video.load_clips(clip_dir, image_size=24, cache_dir=tmp_path / "cache")
    again = video.load_clips(clip_dir, image_size=24, cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 3
    for m, c, g in zip(memory.frames, cached.frames, again.frames):
        assert isinstance(g, np.memmap)
        np.testing.assert_array_equal(m, c)
        np.testing.assert_array_equal(m, g)
    video.load_clips(clip_dir, image_size=12, cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 6  # another size, other files
    with pytest.raises(ValueError, match="cache_dir"):
        video.load_clips(clip_dir, image_size=24, max_memory_bytes=1000)


def test_pair_sampler_matches_its_closed_form():
    sampler = video.PairSampler([1, 5, 40], min_offset=2, max_offset=4)
    clip, first, second = sampler.sample(np.random.default_rng(0), 40000)
    lengths = np.array([1, 5, 40])
    offset = second - first
    assert not np.any(clip == 0)  # one frame: no partner at distance >= 2
    assert np.all((np.abs(offset) >= 2) & (np.abs(offset) <= 4))
    assert np.all((second >= 0) & (second < lengths[clip]))
    # Every frame of clips 1 and 2 has a partner: P(clip 1) = 5 / 45.
    p = 5 / 45
    assert abs(np.mean(clip == 1) - p) < 4 * np.sqrt(p * (1 - p) / len(clip))
    # A middle frame's partner is uniform over the 6 allowed offsets.
    mid = (clip == 2) & (first == 20)
    counts = np.array([np.sum(offset[mid] == d) for d in (-4, -3, -2, 2, 3, 4)])
    assert counts.sum() > 600 and np.all(np.abs(counts / counts.sum() - 1 / 6) < 0.06)
    # Frame 0 of clip 1 (length 5) can only go forward, to 2, 3 or 4.
    assert set(second[(clip == 1) & (first == 0)]) == {2, 3, 4}
    with pytest.raises(ValueError, match="min_offset"):
        video.PairSampler([3], min_offset=3, max_offset=2)


def test_reading_stops_at_the_memory_cap_and_frame_folders_use_the_bounded_decoder(tmp_path, monkeypatch):
    from keras_landmarks.data import decode

    folder = tmp_path / "clips" / "frames"
    folder.mkdir(parents=True)
    for t in range(12):
        cv2.imwrite(str(folder / f"{t:03d}.png"), np.full((16, 16, 3), 20 * t, np.uint8))
    (folder / "999.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 8)  # header cut short: skipped
    calls = []
    real = decode.load_crop_resize
    monkeypatch.setattr(decode, "load_crop_resize", lambda path, size: calls.append(path) or real(path, size))
    clips = video.load_clips(tmp_path / "clips", image_size=8)
    assert [len(f) for f in clips.frames] == [12] and len(calls) == 13
    np.testing.assert_array_equal(clips.frames[0][:, 0, 0, 0], [20 * t for t in range(12)])
    calls.clear()
    frame_bytes = 8 * 8 * 3
    with pytest.raises(ValueError, match="exceed max_memory_bytes"):
        video.load_clips(tmp_path / "clips", image_size=8, max_memory_bytes=4 * frame_bytes)
    assert len(calls) == 6  # 5 frames held (the cap + 1), the 6th refused: the rest never read

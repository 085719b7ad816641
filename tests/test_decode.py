"""decode.py: every odd-but-valid image decodes to the right RGB pixels, every bad file is a
named, counted skip, and crop_resize moves points exactly as its closed form says.

All files are generated here: OpenCV writes the ordinary ones; palette PNG, CMYK JPEG and
EXIF-rotated JPEG are assembled byte by byte from their format specs.
"""

import logging
import struct
import zlib

import cv2
import numpy as np
import pytest
import tensorflow as tf

from keras_landmarks.data import decode

# ---------------------------------------------------------------- file builders


def _encode(ext, array, params=()):
    ok, buf = cv2.imencode(ext, array, list(params))
    assert ok
    return buf.tobytes()


def _jpeg_segments(jpeg):
    """(marker, payload, entropy data) of each segment of a baseline JPEG up to EOI."""
    i, out = 2, []
    while jpeg[i + 1] != 0xD9:
        marker, n = jpeg[i + 1], struct.unpack(">H", jpeg[i + 2:i + 4])[0]
        payload, i = jpeg[i + 4:i + 2 + n], i + 2 + n
        data = b""
        if marker == 0xDA:  # entropy-coded data runs to the next marker that is not RSTn/stuffing
            j = i
            while not (jpeg[j] == 0xFF and jpeg[j + 1] not in (0x00, *range(0xD0, 0xD8))):
                j += 1
            data, i = jpeg[i:j], j
        out.append((marker, payload, data))
    return out


def _segment(marker, payload):
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def cmyk_jpeg(rgb):
    """4-component Adobe JPEG (inverted CMYK, as Photoshop writes it) that displays as ``rgb``.

    Stored inverted C, M, Y = R, G, B and inverted K = 255 (no black); each component is the
    scan of a grayscale JPEG of that plane (same quantisation and Huffman tables), one
    non-interleaved scan per component. Sides must be multiples of 8.
    """
    planes = [rgb[..., 0], rgb[..., 1], rgb[..., 2], np.full(rgb.shape[:2], 255, np.uint8)]
    segs = [_jpeg_segments(_encode(".jpg", p, [cv2.IMWRITE_JPEG_QUALITY, 95])) for p in planes]
    h, w = rgb.shape[:2]
    out = b"\xff\xd8" + _segment(0xEE, b"Adobe" + struct.pack(">HHHB", 100, 0, 0, 0))
    out += b"".join(_segment(m, p) for m, p, _ in segs[0] if m in (0xDB, 0xC4))
    comps = b"".join(bytes([c + 1, 0x11, 0]) for c in range(4))
    out += _segment(0xC0, struct.pack(">BHHB", 8, h, w, 4) + comps)
    for c in range(4):
        out += _segment(0xDA, bytes([1, c + 1, 0x00, 0, 63, 0])) + segs[c][-1][2]
    return out + b"\xff\xd9"


def exif_jpeg(rgb, orientation):
    """JPEG of ``rgb`` with an EXIF APP1 segment holding only the Orientation tag."""
    params = [cv2.IMWRITE_JPEG_QUALITY, 100, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
    jpeg = _encode(".jpg", rgb[..., ::-1], params)  # no chroma subsampling: sharp edges
    ifd = struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + b"\0\0\0\0"
    return b"\xff\xd8" + _segment(0xE1, b"Exif\0\0MM\x00\x2a" + struct.pack(">I", 8) + ifd) + jpeg[2:]


def palette_png(index, palette):
    """8-bit indexed-colour PNG (colour type 3) of ``index`` ``[h, w]`` into ``palette`` ``[n, 3]``."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    h, w = index.shape
    raw = b"".join(b"\0" + index[r].astype(np.uint8).tobytes() for r in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 3, 0, 0, 0))
            + chunk(b"PLTE", palette.astype(np.uint8).tobytes())
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def quadrants(h=16, w=24):
    """RGB image with four distinct flat quadrants, so any rotation/flip is visible."""
    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 2, : w // 2] = (220, 30, 30)
    img[: h // 2, w // 2:] = (30, 220, 30)
    img[h // 2:, : w // 2] = (30, 30, 220)
    img[h // 2:, w // 2:] = (200, 200, 40)
    return img


def _decode(data, **kw):
    image, k = decode.decode_rgb(data, **kw)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    return image, k


# ---------------------------------------------------------------- valid files


def test_lossless_formats_decode_exactly():
    rgb = np.random.default_rng(0).integers(0, 256, (7, 11, 3), dtype=np.uint8)
    bgr = rgb[..., ::-1]
    for data in (_encode(".png", bgr), _encode(".bmp", bgr), _encode(".webp", bgr, [cv2.IMWRITE_WEBP_QUALITY, 101])):
        np.testing.assert_array_equal(_decode(data)[0], rgb)
    rgba = np.dstack([bgr, np.arange(77, dtype=np.uint8).reshape(7, 11)])  # alpha is dropped
    np.testing.assert_array_equal(_decode(_encode(".png", rgba))[0], rgb)
    tiny = rgb[:3, :5]
    np.testing.assert_array_equal(_decode(_encode(".png", tiny[..., ::-1]))[0], tiny)


def test_grayscale_palette_and_16bit_png():
    gray = np.arange(0, 240, 4, dtype=np.uint8).reshape(6, 10)
    np.testing.assert_array_equal(_decode(_encode(".png", gray))[0], np.repeat(gray[..., None], 3, -1))
    jpeg_gray = _decode(_encode(".jpg", gray, [cv2.IMWRITE_JPEG_QUALITY, 100]))[0]
    np.testing.assert_array_equal(jpeg_gray[..., 0], jpeg_gray[..., 2])  # R = G = B
    assert np.abs(jpeg_gray[..., 0].astype(int) - gray).max() <= 3
    palette = np.array([[255, 0, 0], [0, 128, 255], [7, 8, 9]])
    index = np.random.default_rng(1).integers(0, 3, (5, 9))
    np.testing.assert_array_equal(_decode(palette_png(index, palette))[0], palette[index])
    rgb16 = np.random.default_rng(2).integers(0, 65536, (4, 6, 3)).astype(np.uint16)
    out = _decode(_encode(".png", rgb16[..., ::-1]))[0].astype(float)
    assert np.abs(out - rgb16 / 257.0).max() <= 1.0  # 16 -> 8 bit keeps the high byte


def test_cmyk_jpeg_decodes_to_its_rgb():
    rgb = quadrants(16, 24)
    image = _decode(cmyk_jpeg(rgb))[0]
    assert image.shape == (16, 24, 3)
    assert np.abs(image.astype(int) - rgb).max() <= 4


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(orientation):
    rgb = quadrants(16, 24)
    # EXIF 1..8: how the stored image must be transformed for display.
    display = {
        1: rgb, 2: rgb[:, ::-1], 3: rgb[::-1, ::-1], 4: rgb[::-1],
        5: rgb.transpose(1, 0, 2), 6: np.rot90(rgb, -1), 7: rgb[::-1, ::-1].transpose(1, 0, 2), 8: np.rot90(rgb, 1),
    }[orientation]
    image = _decode(exif_jpeg(rgb, orientation))[0]
    assert image.shape == display.shape
    assert np.abs(image.astype(int) - display).max() <= 4


def test_huge_jpeg_is_decoded_at_reduced_scale():
    h, w = 4000, 6000
    img = np.zeros((h, w, 3), np.uint8)
    img[:, : w // 2] = (200, 40, 10)
    img[:, w // 2:] = (10, 90, 240)
    data = _encode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert decode.jpeg_size(data) == (h, w)
    image, k = _decode(data, min_side=128)
    assert k == 8 and image.shape == (h // 8, w // 8, 3)  # 4000 / 8 = 500 >= 128
    assert np.abs(image[:, :300].astype(int) - (200, 40, 10)).max() <= 4
    assert np.abs(image[:, 450:].astype(int) - (10, 90, 240)).max() <= 4
    assert _decode(data, min_side=600)[1] == 4  # 4000 / 8 < 600 <= 4000 / 4
    assert _decode(data)[1] == 1


# ---------------------------------------------------------------- sizes from headers


def _vp8x(width, height):
    """A WebP whose VP8X header claims ``width x height`` (the canvas fields hold size - 1)."""
    body = b"VP8X" + struct.pack("<I", 10) + b"\0\0\0\0" + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


def _png_claiming(width, height):
    """A PNG signature + IHDR claiming ``width x height`` RGB, then a tiny IDAT and IEND."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def _bmp_claiming(width, height):
    header = struct.pack("<IiiHHIIiiII", 40, width, -height, 1, 24, 0, 0, 0, 0, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(header) + 12, 0, 0, 14 + len(header)) + header + b"\0" * 12


@pytest.mark.parametrize("ext,params", [(".jpg", ()), (".png", ()), (".bmp", ()), (".webp", (cv2.IMWRITE_WEBP_QUALITY, 80)),
                                        (".webp", (cv2.IMWRITE_WEBP_QUALITY, 101))])  # lossy VP8, lossless VP8L
def test_header_size_is_the_decoded_size(ext, params):
    for h, w in ((37, 53), (64, 17), (1, 1)):
        data = _encode(ext, quadrants(h, w) if min(h, w) > 1 else np.zeros((h, w, 3), np.uint8), params)
        kind = decode.sniff_format(data)
        assert decode.header_size(data, kind) == (h, w) == _decode(data)[0].shape[:2], (ext, h, w)
    assert decode.header_size(_vp8x(16384, 300), "webp") == (300, 16384)


@pytest.mark.parametrize("data,kind", [(_png_claiming(30_000, 30_000), "png"), (_bmp_claiming(100_000, 1_000), "bmp"),
                                       (_vp8x(16_384, 16_384), "webp")])
def test_files_claiming_too_many_pixels_are_refused_from_their_header(data, kind, monkeypatch):
    def no_decode(*args):
        raise AssertionError("the decoder ran on a file its header already refused")

    monkeypatch.setattr(decode.cv2, "imdecode", no_decode)
    with pytest.raises(decode.DecodeError, match=rf"{kind} of .* over the cap of {decode.MAX_DECODED_PIXELS:,}"):
        decode.decode_rgb(data)


def test_the_pixel_cap_counts_a_jpeg_after_its_reduction(monkeypatch):
    side = 9_000  # 81 MP > the 64 MP cap at full size; 1,125^2 = 1.3 MP at 1/8
    jpeg = b"\xff\xd8" + _segment(0xC0, struct.pack(">BHHB", 8, side, side, 3) + bytes(9)) + b"\xff\xd9"
    assert decode.jpeg_size(jpeg) == (side, side)
    with pytest.raises(decode.DecodeError, match="over the cap"):
        decode.decode_rgb(jpeg)
    calls = []
    monkeypatch.setattr(decode.cv2, "imdecode", lambda buf, flags: calls.append(flags))
    with pytest.raises(decode.DecodeError, match="corrupt"):  # not refused by the cap: decoded (and corrupt)
        decode.decode_rgb(jpeg, min_side=128)
    assert calls == [cv2.IMREAD_REDUCED_COLOR_8]


# ---------------------------------------------------------------- bad files

_GOOD_JPEG = _encode(".jpg", quadrants(64, 64))
_GOOD_PNG = _encode(".png", quadrants(64, 64))
BAD_FILES = {
    "empty.jpg": (b"", "empty"),
    "text.jpg": (b"hello, I am not an image\n", "not a JPEG/PNG/BMP/WebP"),
    "truncated.jpg": (_GOOD_JPEG[: len(_GOOD_JPEG) * 2 // 3], "corrupt"),
    "no_eoi.jpg": (_GOOD_JPEG[:-2], "corrupt"),
    "truncated.png": (_GOOD_PNG[: len(_GOOD_PNG) // 2], "corrupt"),
    "truncated.webp": (_encode(".webp", quadrants(64, 64))[:40], "corrupt"),
    "truncated.bmp": (_encode(".bmp", quadrants(64, 64))[:100], "corrupt"),
    "garbage.jpg": (b"\xff\xd8\xff" + bytes(np.random.default_rng(3).integers(0, 256, 400, dtype=np.uint8)), "corrupt"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_files_raise_decode_error(name):
    data, reason = BAD_FILES[name]
    with pytest.raises(decode.DecodeError, match=reason):
        decode.decode_rgb(data)


def test_tf_op_skips_and_counts_bad_files_once(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="keras_landmarks.data")
    good = {"a.jpg": _GOOD_JPEG, "b.png": _GOOD_PNG, "c.bmp": _encode(".bmp", quadrants(20, 30))}
    files = {**good, **{k: v for k, (v, _) in BAD_FILES.items()}}
    paths = []
    for name, data in sorted(files.items()):
        (tmp_path / name).write_bytes(data)
        paths.append(str(tmp_path / name))
    paths.append(str(tmp_path / "vanished.jpg"))  # listed, then deleted: a read error
    stats = decode.DecodeStats("test", files_per_epoch=len(paths))
    # Eagerly, then twice through tf.data: bad files are warned about once, counted once.
    eager = [bool(decode.tf_load_crop_resize(tf.constant(p), 32, stats)["ok"]) for p in paths]
    ds = tf.data.Dataset.from_tensor_slices(paths).repeat(2)
    ds = ds.map(lambda p: decode.tf_load_crop_resize(p, 32, stats), num_parallel_calls=2)
    out = list(ds.as_numpy_iterator())
    expected = [p.rsplit("/", 1)[1] in good for p in paths]
    assert eager == expected and [bool(e["ok"]) for e in out] == expected * 2
    assert all(e["image"].shape == (32, 32, 3) and e["image"].dtype == np.uint8 for e in out)
    assert all(e["image"].max() > 0 for e in out if e["ok"]) and all(e["image"].max() == 0 for e in out if not e["ok"])
    n_bad = len(paths) - len(good)
    assert stats.skipped == n_bad and stats.decoded == 3 * len(good) and stats.attempts == 3 * len(paths)
    assert "vanished.jpg" in next(iter(k for k in stats.skipped_files if "vanished" in k))
    assert "cannot read" in stats.skipped_files[str(tmp_path / "vanished.jpg")]
    skip_lines = [r.getMessage() for r in caplog.records if "skipping" in r.getMessage()]
    assert sorted(skip_lines) == sorted(f"test: skipping unreadable image {p}: {r}" for p, r in stats.skipped_files.items())
    summaries = [r.getMessage() for r in caplog.records if "unreadable files skipped" in r.getMessage()]
    assert summaries == []  # no line per pass: the count is in the summary a run prints at its end
    assert stats.passes == 3.0 and f"{n_bad} unreadable files skipped" in stats.summary() and "3.0 passes" in stats.summary()


def _mixed_folder(tmp_path):
    """Paths of 3 good files, every ``BAD_FILES`` entry and a vanished file, sorted by name."""
    good = {"a.jpg": _GOOD_JPEG, "b.png": _GOOD_PNG, "c.bmp": _encode(".bmp", quadrants(20, 30))}
    for name, data in {**good, **{k: v for k, (v, _) in BAD_FILES.items()}}.items():
        (tmp_path / name).write_bytes(data)
    paths = sorted(str(tmp_path / n) for n in [*good, *BAD_FILES, "vanished.jpg"])
    return paths, [i for i, p in enumerate(paths) if p.rsplit("/", 1)[1] in good]


def test_batch_op_equals_per_file_decode_and_skips_bad_files_once(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="keras_landmarks.data")
    paths, good = _mixed_folder(tmp_path)
    stats = decode.DecodeStats("test", files_per_epoch=len(paths))
    expected = [decode.load_crop_resize(paths[i], 32) for i in good]
    # numpy, eager op, then twice through tf.data in batches of 3 (some batches all bad).
    images, affine, index = decode.load_batch(paths, 32, stats)
    eager = decode.tf_load_batch(tf.constant(paths), 32, stats)
    ds = tf.data.Dataset.from_tensor_slices(paths).repeat(2).batch(3)
    out = list(ds.map(lambda p: decode.tf_load_batch(p, 32, stats), num_parallel_calls=2).as_numpy_iterator())
    assert any(len(b["index"]) == 0 and b["image"].shape == (0, 32, 32, 3) for b in out)
    for imgs, aff, idx in [(images, affine, index), tuple(eager[k].numpy() for k in ("image", "affine", "index"))]:
        assert imgs.dtype == np.uint8 and list(idx) == good
        np.testing.assert_array_equal(imgs, [e[0] for e in expected])
        np.testing.assert_array_equal(aff, [e[1] for e in expected])
    positions = np.concatenate([b["index"] + 3 * n for n, b in enumerate(out)]) % len(paths)
    assert list(positions) == good * 2
    np.testing.assert_array_equal(np.concatenate([b["image"] for b in out]), [e[0] for e in expected] * 2)
    n_bad = len(paths) - len(good)
    assert stats.skipped == n_bad and stats.decoded == 4 * len(good) and stats.attempts == 4 * len(paths)
    assert "cannot read" in stats.skipped_files[str(tmp_path / "vanished.jpg")]
    skip_lines = [r.getMessage() for r in caplog.records if "skipping" in r.getMessage()]
    assert sorted(skip_lines) == sorted(f"test: skipping unreadable image {p}: {r}" for p, r in stats.skipped_files.items())
    summaries = [r.getMessage() for r in caplog.records if "unreadable files skipped" in r.getMessage()]
    assert summaries == []  # no line per pass: the count is in the summary a run prints at its end


def test_batch_decode_stops_at_interpreter_exit(tmp_path):
    """Checked before every file, not once per call: a long batch ends soon after exit begins."""
    from keras_landmarks._internal import exit_guard

    class ExitAfterFirstFile(decode.DecodeStats):
        def record(self, path, error=None):
            super().record(path, error)
            exit_guard._EXITING.set()  # as the atexit hook does

    paths, _ = _mixed_folder(tmp_path)
    stats = ExitAfterFirstFile("test")
    try:
        with pytest.raises(RuntimeError, match="exiting"):
            decode.load_batch(paths, 32, stats)
    finally:
        exit_guard._EXITING.clear()
    assert stats.attempts == 1


def test_exit_waits_for_a_decode_in_flight():
    """The exit hook returns only after a call inside ``running()`` has ended."""
    import threading

    from keras_landmarks._internal import exit_guard

    started, release, finished = threading.Event(), threading.Event(), []

    def slow_call():
        with exit_guard.running():
            started.set()
            release.wait(10)
        finished.append(True)

    worker = threading.Thread(target=slow_call)
    worker.start()
    started.wait(10)
    threading.Timer(0.3, release.set).start()  # the call ends only after the hook has begun
    try:
        assert exit_guard.in_flight() == 1
        exit_guard._quiesce_at_exit()
        assert exit_guard.in_flight() == 0 and release.is_set()
        with pytest.raises(RuntimeError, match="exiting"):
            with exit_guard.running():
                pass
    finally:
        exit_guard._EXITING.clear()
        worker.join()


# ---------------------------------------------------------------- geometry


def _blob_image(h, w, centres, sigma):
    """float image [h, w, 3] with one Gaussian blob per channel at pixel (x, y) ``centres``."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    chans = [np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2)) for cx, cy in centres]
    return np.stack(chans, -1)


def _centroids(image, radius=None):
    """Intensity-weighted (x, y) centroid of each channel, pixel coordinates; with ``radius``,
    only over pixels within that distance of the channel's maximum (ignores far noise)."""
    img = image.astype(np.float64)
    yy, xx = np.mgrid[0:img.shape[0], 0:img.shape[1]]
    out = []
    for c in range(img.shape[2]):
        weight = img[..., c]
        if radius is not None:
            py, px = np.unravel_index(np.argmax(weight), weight.shape)
            weight = weight * (((xx - px) ** 2 + (yy - py) ** 2) <= radius**2)
        out.append([(weight * xx).sum() / weight.sum(), (weight * yy).sum() / weight.sum()])
    return np.array(out)


@pytest.mark.parametrize("h,w,size", [(97, 153, 32), (200, 120, 64), (40, 30, 64), (64, 64, 64), (50, 51, 50)])
def test_crop_resize_moves_points_by_its_closed_form(h, w, size):
    rng = np.random.default_rng(h * w)
    side = min(h, w)
    x0, y0 = (w - side) // 2, (h - side) // 2
    sigma = side / 9.0
    centres = np.stack([x0 + rng.uniform(0.35, 0.65, 3) * side, y0 + rng.uniform(0.35, 0.65, 3) * side], -1)
    img = np.round(_blob_image(h, w, centres, sigma) * 255).astype(np.uint8)
    out, affine = decode.crop_resize(img, size)
    assert out.shape == (size, size, 3)
    expected = (centres - [x0, y0] + 0.5) * size / side - 0.5  # the documented closed form
    np.testing.assert_allclose(centres * affine[:2] + affine[2:], expected, atol=1e-4)
    np.testing.assert_allclose(_centroids(out), expected, atol=0.05 * max(1.0, size / side))


def test_reduced_jpeg_decode_keeps_point_mapping(tmp_path):
    h, w = 1800, 2400  # decoded at 1/8 for size 128, then cropped and resized
    centres = np.array([[700.3, 500.8], [1200.0, 900.5], [1500.7, 1300.2]])
    img = np.round(_blob_image(h, w, centres, 90.0) * 255).astype(np.uint8)
    path = tmp_path / "big.jpg"
    path.write_bytes(_encode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 98]))
    out, affine = decode.load_crop_resize(str(path), 128)
    # Decoded at 1/8 (300x225): x8 = (x + .5)/8 - .5; square crop side 225 at x0 = 37;
    # resized 225 -> 128: x' = (x8 - 37 + .5) * 128/225 - .5.
    reduced = (centres + 0.5) / 8 - 0.5
    expected = (reduced - [37, 0] + 0.5) * 128 / 225 - 0.5
    np.testing.assert_allclose(centres * affine[:2] + affine[2:], expected, atol=1e-3)
    np.testing.assert_allclose(_centroids(out, radius=20), expected, atol=0.1)  # JPEG noise far away


def test_the_opencv_floor_is_the_one_installed_and_declared():
    import os
    import re

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    pyproject = open(os.path.join(root, "pyproject.toml")).read()
    floor = re.search(r'"opencv-python-headless>=(\d+)\.(\d+),', pyproject)
    assert floor and tuple(map(int, floor.groups())) == decode.OPENCV_MIN
    assert tuple(int(p) for p in cv2.__version__.split(".")[:2]) >= decode.OPENCV_MIN
    assert hasattr(cv2, "IMREAD_COLOR_RGB")


def test_opencv_is_silenced_only_while_decoding(monkeypatch):
    level = cv2.utils.logging.getLogLevel()
    seen = []
    real = decode.cv2.imdecode
    monkeypatch.setattr(decode.cv2, "imdecode", lambda *a: seen.append(cv2.utils.logging.getLogLevel()) or real(*a))
    decode.decode_rgb(_GOOD_PNG)
    with pytest.raises(decode.DecodeError):
        decode.decode_rgb(BAD_FILES["truncated.png"][0])
    assert seen == [cv2.utils.logging.LOG_LEVEL_SILENT] * 2
    assert cv2.utils.logging.getLogLevel() == level != cv2.utils.logging.LOG_LEVEL_SILENT

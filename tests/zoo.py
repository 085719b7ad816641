"""A folder of good images among broken and hostile files: what robust loading is tested on.

``write_zoo(folder)`` writes ``GOOD`` solid-colour images (some with odd names) and one file
of each kind in ``BAD_KINDS`` (truncations, lies about format and size, non-files), and
returns what it wrote. ``tests/test_zoo.py`` trains on it and ``bench/bad_input.py`` reports
the time and peak memory; both need no data beyond what this module makes. Test data, not
part of the package (issue 28).
"""

from __future__ import annotations

import os
import struct
import zlib

import cv2
import numpy as np

# Odd but legal names: a space, a newline, a leading dash, non-ASCII, upper-case extensions.
GOOD_NAMES = ("plain.jpg", "with space.png", "new\nline.jpg", "-dash.png", "ünïcødé.jpg", "UPPER.JPG",
              "lossless.webp", "bitmap.bmp")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_claiming(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _chunk(b"IEND", b"")


def _bmp_claiming(width: int, height: int) -> bytes:
    header = struct.pack("<IiiHHIIiiII", 40, width, -height, 1, 24, 0, 0, 0, 0, 0, 0)
    return b"BM" + struct.pack("<IHHI", 66, 0, 0, 54) + header + b"\0" * 12


def _webp_claiming(width: int, height: int) -> bytes:
    body = b"VP8X" + struct.pack("<I", 10) + b"\0" * 4 + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


def _encode(ext: str, rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(ext, rgb[..., ::-1], [cv2.IMWRITE_WEBP_QUALITY, 101] if ext == ".webp" else [])
    assert ok, ext
    return buf.tobytes()


def colour(i: int) -> tuple[int, int, int]:
    """The RGB colour of good image ``i`` (distinct per image, recoverable after resizing)."""
    return (20 + 25 * i, 200 - 20 * i, 60 + 15 * (i % 5))


def _bad_files(jpeg: bytes, png: bytes) -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    return {
        "empty.jpg": b"",
        "text named.jpg": b"not an image, just text\n",
        "truncated.jpg": jpeg[: len(jpeg) * 2 // 3],
        "no end marker.jpg": jpeg[:-2],
        "garbage after SOI.jpg": b"\xff\xd8\xff" + rng.integers(0, 256, 500, dtype=np.uint8).tobytes(),
        "signature only.png": png[:8],
        "truncated.png": png[: len(png) // 2],
        "claims 30000x30000.png": _png_claiming(30_000, 30_000),
        "claims 100000x1000.bmp": _bmp_claiming(100_000, 1_000),
        "claims 16384x16384.webp": _webp_claiming(16_384, 16_384),
        "gif named.png": b"GIF89a\x01\x00\x01\x00\x00\x00\x00;",
        "tiff named.jpg": b"II*\x00\x08\x00\x00\x00" + b"\0" * 64,
    }


# Kind of each bad file written by write_zoo: file name -> what is wrong with it.
BAD_KINDS = {
    **{name: "broken bytes" for name in _bad_files(b"\xff\xd8\xff\xd9", b"\x89PNG\r\n\x1a\n" + b"\0" * 8)},
    "fifo.jpg": "a FIFO (reading it would block forever)",
    "dev zero.png": "a symlink to /dev/zero (endless bytes)",
    "dangling link.jpg": "a symlink to nothing",
    "sparse 300MB.jpg": "a 300 MB file (sparse) with a JPEG signature",
}


def write_zoo(folder: str, size: int = 48) -> dict[str, list[str]]:
    """Write the zoo into ``folder`` (created); returns ``{"good": paths, "bad": paths,
    "not_listed": paths}``. Good image ``i`` (``GOOD_NAMES[i]``) is ``size x size`` of
    ``colour(i)``. ``not_listed``: a folder named like an image (never an image file)."""
    os.makedirs(folder, exist_ok=True)
    good = []
    for i, name in enumerate(GOOD_NAMES):
        path = os.path.join(folder, name)
        with open(path, "wb") as f:
            f.write(_encode(os.path.splitext(name)[1].lower(), np.full((size, size, 3), colour(i), np.uint8)))
        good.append(path)
    sample = np.full((size, size, 3), 128, np.uint8)
    bad = []
    for name, data in _bad_files(_encode(".jpg", sample), _encode(".png", sample)).items():
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)
        bad.append(os.path.join(folder, name))
    os.mkfifo(os.path.join(folder, "fifo.jpg"))
    os.symlink("/dev/zero", os.path.join(folder, "dev zero.png"))
    os.symlink(os.path.join(folder, "no such file"), os.path.join(folder, "dangling link.jpg"))
    with open(os.path.join(folder, "sparse 300MB.jpg"), "wb") as f:
        f.write(b"\xff\xd8\xff")
        f.truncate(300 << 20)
    bad += [os.path.join(folder, n) for n in ("fifo.jpg", "dev zero.png", "dangling link.jpg", "sparse 300MB.jpg")]
    os.makedirs(os.path.join(folder, "a folder.jpg"), exist_ok=True)
    return {"good": good, "bad": bad, "not_listed": [os.path.join(folder, "a folder.jpg")]}


__all__ = ["BAD_KINDS", "GOOD_NAMES", "colour", "write_zoo"]

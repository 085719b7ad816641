"""Reading an image file safely, and what it says about itself before any decoder runs:
the format (magic bytes) and the ``(height, width)`` its header claims (stored orientation).

``read_image_file`` opens without blocking (a FIFO named ``x.jpg`` would otherwise hang the
reader), refuses anything that is not a regular file (FIFOs, devices such as a symlink to
``/dev/zero``, folders) and files over ``MAX_FILE_BYTES``, and reads at most that much.

``decode.decode_rgb`` refuses a file whose header it cannot read or whose claimed size is
over its pixel cap before any decoder runs. Formats: JPEG (start-of-frame marker), PNG
(IHDR), BMP (core and info headers), WebP (VP8, VP8L, VP8X).
"""

from __future__ import annotations

import os
import stat
import struct

# Largest image file read (a 64 MP PNG, the decoder's pixel cap, is at most ~200 MB).
MAX_FILE_BYTES = 256 << 20


class NotAnImageFile(ValueError):
    """A path that is not a regular file of a readable size; the message says why."""


def read_image_file(path: str, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of the regular file ``path``; ``NotAnImageFile`` or ``OSError`` otherwise."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a folder" if stat.S_ISDIR(info.st_mode) else "a FIFO, socket or device"
            raise NotAnImageFile(f"not a regular file ({kind})")
        if info.st_size > max_bytes:
            raise NotAnImageFile(f"{info.st_size:,} bytes, over the {max_bytes:,}-byte limit (headers.MAX_FILE_BYTES)")
        return f.read(max_bytes + 1)[:max_bytes]


def sniff_format(data: bytes) -> str | None:
    """``"jpeg" | "png" | "bmp" | "webp"`` from the file's magic bytes, else ``None``."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:2] == b"BM" and len(data) >= 26:
        return "bmp"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """``(height, width)`` from a JPEG's start-of-frame header (stored orientation), or None."""
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return h, w
        i += 2 + struct.unpack(">H", data[i + 2:i + 4])[0]
    return None


def png_size(data: bytes) -> tuple[int, int] | None:
    """``(height, width)`` from a PNG's IHDR chunk, or None if it is cut short or not there."""
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    w, h = struct.unpack(">II", data[16:24])
    return h, w


def bmp_size(data: bytes) -> tuple[int, int] | None:
    """``(height, width)`` from a BMP's info header (negative height: top-down rows), or None."""
    if len(data) < 26:
        return None
    header = struct.unpack("<I", data[14:18])[0]
    if header == 12:  # BITMAPCOREHEADER: 16-bit sizes
        w, h = struct.unpack("<HH", data[18:22])
    else:
        w, h = struct.unpack("<ii", data[18:26])
    return abs(h), abs(w)


def webp_size(data: bytes) -> tuple[int, int] | None:
    """``(height, width)`` from a WebP's VP8 / VP8L / VP8X header, or None."""
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        w, h = struct.unpack("<HH", data[26:30])
        return h & 0x3FFF, w & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = struct.unpack("<I", data[21:25])[0]
        return ((bits >> 14) & 0x3FFF) + 1, (bits & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return h, w
    return None


_HEADER_SIZE = {"jpeg": jpeg_size, "png": png_size, "bmp": bmp_size, "webp": webp_size}


def header_size(data: bytes, kind: str) -> tuple[int, int] | None:
    """``(height, width)`` an image's header claims, read without decoding it."""
    return _HEADER_SIZE[kind](data)


__all__ = ["MAX_FILE_BYTES", "NotAnImageFile", "bmp_size", "header_size", "jpeg_size", "png_size", "read_image_file",
           "sniff_format", "webp_size"]

"""A small PNG encoder for the offline provider's images (no imaging library needed)."""

from __future__ import annotations

import struct
import zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def encode_png(width: int, height: int, rows: list[bytes]) -> bytes:
    """Encode 8-bit RGB rows (``width * 3`` bytes each) as a PNG file."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    raw = b"".join(b"\x00" + row for row in rows)
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 6))
        + _chunk(b"IEND", b"")
    )


def _ramp(length: int, start: int, span: int) -> bytes:
    return bytes((start + span * i // max(length - 1, 1)) % 256 for i in range(length))


def pattern_png(width: int, height: int, seed: int) -> bytes:
    """A colourful picture derived from ``seed``: a gradient crossed by diagonal bands.

    Each row is assembled from per-channel byte strings with slice assignment, so a
    1024x1024 image takes milliseconds rather than a Python loop per pixel.
    """
    red = _ramp(width, seed % 256, 200)
    blue_cycle = _ramp(width, (seed >> 8) % 256, 255) * 2
    greens = _ramp(height, (seed >> 16) % 256, 180)
    rows = []
    row = bytearray(width * 3)
    row[0::3] = red
    for y in range(height):
        offset = (y * 2) % width
        row[1::3] = bytes((greens[y],)) * width
        row[2::3] = blue_cycle[offset : offset + width]
        rows.append(bytes(row))
    return encode_png(width, height, rows)

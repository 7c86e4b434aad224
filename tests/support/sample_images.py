"""Real image files made without an imaging library, for the fake image providers: PNGs
from the package's own encoder, and flat grey baseline JPEGs encoded here."""

from __future__ import annotations

import struct

from vaultgate.providers.png import pattern_png

JPEG_BLOCK = 8


def png_image(width: int, height: int, seed: int = 1) -> bytes:
    """A patterned RGB PNG of this size."""
    return pattern_png(width, height, seed)


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def _huffman_table(table_class: int, counts: list[int], symbols: list[int]) -> bytes:
    padded = counts + [0] * (16 - len(counts))
    return bytes([table_class << 4]) + bytes(padded) + bytes(symbols)


def _scan(blocks: int, level: int) -> bytes:
    """Every block flat: the first DC coefficient, then differences of zero, each block
    ended at once (EOB). DC codes: '00' for category 0, '01' for category 8; EOB is '0'."""
    dc = (level - 128) * JPEG_BLOCK
    assert 128 <= dc <= 255, "the level must give a category-8 DC coefficient"
    bits = "01" + format(dc, "08b") + "0"
    bits += ("00" + "0") * (blocks - 1)
    bits += "1" * (-len(bits) % 8)
    data = bytearray()
    for start in range(0, len(bits), 8):
        byte = int(bits[start : start + 8], 2)
        data.append(byte)
        if byte == 0xFF:
            data.append(0x00)
    return bytes(data)


def jpeg_image(width: int, height: int, level: int = 150) -> bytes:
    """A baseline greyscale JPEG of one flat grey ``level`` (144 to 159 stays exact)."""
    assert width % JPEG_BLOCK == 0
    assert height % JPEG_BLOCK == 0
    blocks = (width // JPEG_BLOCK) * (height // JPEG_BLOCK)
    quant = bytes([0]) + bytes([1] * 64)
    frame = struct.pack(">BHHB", 8, height, width, 1) + bytes([1, 0x11, 0])
    tables = _huffman_table(0, [0, 2], [0, 8]) + _huffman_table(1, [1], [0])
    scan_header = bytes([1, 1, 0x00, 0, 63, 0])
    return (
        b"\xff\xd8"
        + _segment(0xDB, quant)
        + _segment(0xC0, frame)
        + _segment(0xC4, tables)
        + _segment(0xDA, scan_header)
        + _scan(blocks, level)
        + b"\xff\xd9"
    )

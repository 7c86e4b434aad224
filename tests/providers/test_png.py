"""The small PNG encoder."""

from __future__ import annotations

import struct
import zlib

from vaultgate.providers.png import PNG_SIGNATURE, encode_png, pattern_png


def test_encode_png_rows_round_trip_through_zlib() -> None:
    rows = [bytes([10, 20, 30, 40, 50, 60]), bytes([255, 0, 255, 0, 255, 0])]

    data = encode_png(2, 2, rows)

    assert data.startswith(PNG_SIGNATURE)
    (ihdr_length,) = struct.unpack(">I", data[8:12])
    idat_start = 8 + 12 + ihdr_length
    (idat_length,) = struct.unpack(">I", data[idat_start : idat_start + 4])
    assert data[idat_start + 4 : idat_start + 8] == b"IDAT"
    idat = data[idat_start + 8 : idat_start + 8 + idat_length]
    assert zlib.decompress(idat) == b"\x00" + rows[0] + b"\x00" + rows[1]
    assert data.endswith(b"IEND\xae\x42\x60\x82")


def test_pattern_png_same_seed_same_bytes_other_seed_differs() -> None:
    assert pattern_png(16, 8, 7) == pattern_png(16, 8, 7)
    assert pattern_png(16, 8, 7) != pattern_png(16, 8, 8)


def test_pattern_png_one_pixel_wide_image_is_encoded() -> None:
    data = pattern_png(1, 4, 99)

    assert struct.unpack(">II", data[16:24]) == (1, 4)

"""Read an 8-bit RGB or RGBA PNG (what a browser's screenshot is) into rows of pixels, standard
library only: enough to tell a blank screenshot from one with charts on it."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Image:
    width: int
    height: int
    channels: int  # 3 (RGB) or 4 (RGBA)
    rows: list[bytes]

    def pixels(self, step: int = 1) -> set[tuple[int, ...]]:
        """The distinct colours (RGB) of every ``step``-th pixel of every ``step``-th row."""
        found: set[tuple[int, ...]] = set()
        c = self.channels
        for row in self.rows[::step]:
            for x in range(0, self.width, step):
                found.add(tuple(row[x * c : x * c + 3]))
        return found


def read_png(data: bytes) -> Image:
    if not data.startswith(SIGNATURE):
        raise ValueError("not a PNG")
    position, header, compressed = len(SIGNATURE), None, bytearray()
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            compressed += body
        elif kind == b"IEND":
            break
    if header is None:
        raise ValueError("no IHDR chunk")
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or colour not in (2, 6) or interlace:
        raise ValueError(f"unsupported PNG: depth {depth}, colour type {colour}, interlace {interlace}")
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(bytes(compressed))
    stride = width * channels
    rows: list[bytes] = []
    previous = bytes(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        previous = _unfilter(kind, line, previous, channels)
        rows.append(previous)
    return Image(width, height, channels, rows)


def _unfilter(kind: int, line: bytearray, previous: bytes, bpp: int) -> bytes:
    if kind == 0:
        return bytes(line)
    if kind == 2:  # up
        if not any(line):
            return previous
        return bytes((a + b) & 255 for a, b in zip(line, previous, strict=True))
    n = len(line)
    if kind == 1:  # sub
        for i in range(bpp, n):
            line[i] = (line[i] + line[i - bpp]) & 255
    elif kind == 3:  # average
        for i in range(n):
            left = line[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + ((left + previous[i]) >> 1)) & 255
    elif kind == 4:  # paeth
        for i in range(n):
            a = line[i - bpp] if i >= bpp else 0
            b = previous[i]
            c = previous[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            predictor = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            line[i] = (line[i] + predictor) & 255
    else:
        raise ValueError(f"unknown PNG filter {kind}")
    return bytes(line)

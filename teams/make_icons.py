#!/usr/bin/env python3
"""Draw the two Microsoft Teams app icons with nothing but the standard library.

    python teams/make_icons.py            # rewrite teams/color.png and teams/outline.png
    python teams/make_icons.py --check    # exit 1 if the committed icons differ from the drawing

Teams wants two PNG files in the app package:

* ``color.png``, 192x192: the full-colour icon. Here a solid accent-coloured square (Teams rounds
  the corners itself) with a white speech bubble carrying the letter E, kept inside the central
  area so nothing is lost when Teams crops it.
* ``outline.png``, 32x32: the same bubble in white on a transparent background (RGBA). Teams
  tints it for its light, dark and high-contrast themes, so it may use only white and alpha.

The glyph is described as geometry in a unit square and rendered with supersampling, so edges are
anti-aliased. The PNG writer and reader below implement just what this needs: 8-bit RGB/RGBA,
non-interlaced images. The output is deterministic, so ``--check`` can compare bytes.
"""

from __future__ import annotations

import argparse
import struct
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Keep in step with "accentColor" in teams/manifest.json (a test checks that they agree).
ACCENT = (0x4F, 0x46, 0xE5)
WHITE = (0xFF, 0xFF, 0xFF)

COLOR_SIZE = 192
OUTLINE_SIZE = 32

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

Pixel = tuple[int, int, int, int]


# --------------------------------------------------------------------------------------------
# PNG encoding and decoding
# --------------------------------------------------------------------------------------------


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def encode_png(width: int, height: int, pixels: list[list[Pixel]]) -> bytes:
    """Encode rows of (r, g, b, a) tuples as an 8-bit RGBA PNG (colour type 6)."""
    if len(pixels) != height or any(len(row) != width for row in pixels):
        raise ValueError("pixel rows do not match the image size")
    raw = bytearray()
    for row in pixels:
        raw.append(0)  # filter type 0 (None) for every scanline keeps the encoder trivial
        for pixel in row:
            raw.extend(pixel)
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(bytes(raw), 9))
        + _chunk(b"IEND", b"")
    )


def _paeth(left: int, up: int, up_left: int) -> int:
    estimate = left + up - up_left
    d_left, d_up, d_up_left = abs(estimate - left), abs(estimate - up), abs(estimate - up_left)
    if d_left <= d_up and d_left <= d_up_left:
        return left
    return up if d_up <= d_up_left else up_left


def decode_png(data: bytes) -> tuple[int, int, int, list[list[Pixel]]]:
    """Decode an 8-bit, non-interlaced grey/RGB/grey+alpha/RGBA PNG.

    Returns ``(width, height, colour_type, rows)`` where every pixel is an (r, g, b, a) tuple.
    Raises ``ValueError`` for anything else, or for a damaged file.
    """
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG file")
    pos = len(PNG_SIGNATURE)
    header: tuple[int, ...] | None = None
    idat = bytearray()
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        payload = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        if len(payload) != length or zlib.crc32(kind + payload) & 0xFFFFFFFF != crc:
            raise ValueError(f"damaged {kind.decode('latin-1')} chunk")
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", payload)
        elif kind == b"IDAT":
            idat.extend(payload)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if header is None:
        raise ValueError("no IHDR chunk")
    width, height, depth, colour_type, _compression, _filter, interlace = header
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(colour_type)
    if depth != 8 or channels is None or interlace != 0:
        raise ValueError(
            f"unsupported PNG (bit depth {depth}, colour type {colour_type}, interlace {interlace})"
        )
    raw = zlib.decompress(bytes(idat))
    stride = width * channels
    if len(raw) != height * (stride + 1):
        raise ValueError("image data has the wrong length")
    rows: list[list[Pixel]] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        filter_type = raw[start]
        line = bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            up_left = previous[i - channels] if i >= channels else 0
            if filter_type == 1:
                line[i] = (line[i] + left) & 0xFF
            elif filter_type == 2:
                line[i] = (line[i] + up) & 0xFF
            elif filter_type == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif filter_type == 4:
                line[i] = (line[i] + _paeth(left, up, up_left)) & 0xFF
            elif filter_type != 0:
                raise ValueError(f"unknown filter type {filter_type} in row {y}")
        row: list[Pixel] = []
        for x in range(width):
            px = line[x * channels : (x + 1) * channels]
            if channels == 1:
                row.append((px[0], px[0], px[0], 255))
            elif channels == 2:
                row.append((px[0], px[0], px[0], px[1]))
            elif channels == 3:
                row.append((px[0], px[1], px[2], 255))
            else:
                row.append((px[0], px[1], px[2], px[3]))
        rows.append(row)
        previous = line
    return width, height, colour_type, rows


# --------------------------------------------------------------------------------------------
# The glyph: a speech bubble with a tail, the letter E cut out of it (unit square, y down)
# --------------------------------------------------------------------------------------------

BUBBLE = (0.14, 0.18, 0.86, 0.70)  # left, top, right, bottom
BUBBLE_RADIUS = 0.13
TAIL = ((0.28, 0.66), (0.46, 0.66), (0.24, 0.86))
LETTER_E = (
    (0.37, 0.28, 0.45, 0.60),  # stem
    (0.37, 0.28, 0.64, 0.35),  # top arm
    (0.37, 0.405, 0.59, 0.475),  # middle arm
    (0.37, 0.53, 0.64, 0.60),  # bottom arm
)
GLYPH_BOUNDS = (0.14, 0.18, 0.86, 0.86)


def _in_box(x: float, y: float, box: tuple[float, float, float, float]) -> bool:
    left, top, right, bottom = box
    return left <= x <= right and top <= y <= bottom


def _in_rounded_box(x: float, y: float, box: tuple[float, float, float, float], r: float) -> bool:
    left, top, right, bottom = box
    if not _in_box(x, y, box):
        return False
    cx = min(max(x, left + r), right - r)
    cy = min(max(y, top + r), bottom - r)
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r


def _in_triangle(x: float, y: float, triangle: tuple[tuple[float, float], ...]) -> bool:
    (ax, ay), (bx, by), (cx, cy) = triangle
    d1 = (x - bx) * (ay - by) - (ax - bx) * (y - by)
    d2 = (x - cx) * (by - cy) - (bx - cx) * (y - cy)
    d3 = (x - ax) * (cy - ay) - (cx - ax) * (y - ay)
    has_negative = d1 < 0 or d2 < 0 or d3 < 0
    has_positive = d1 > 0 or d2 > 0 or d3 > 0
    return not (has_negative and has_positive)


def in_glyph(x: float, y: float) -> bool:
    """True where the white part of the glyph is, in unit coordinates."""
    if not (_in_rounded_box(x, y, BUBBLE, BUBBLE_RADIUS) or _in_triangle(x, y, TAIL)):
        return False
    return not any(_in_box(x, y, bar) for bar in LETTER_E)


def coverage(
    size: int, samples: int, inset: float, inside: Callable[[float, float], bool]
) -> list[list[float]]:
    """Fraction (0..1) of each pixel covered by the glyph, drawn inside a margin of ``inset``."""
    span = 1.0 - 2 * inset
    left, top, right, bottom = GLYPH_BOUNDS
    grid: list[list[float]] = []
    for py in range(size):
        row: list[float] = []
        for px in range(size):
            # Skip pixels that cannot touch the glyph at all.
            u0, u1 = (px / size - inset) / span, ((px + 1) / size - inset) / span
            v0, v1 = (py / size - inset) / span, ((py + 1) / size - inset) / span
            if u1 < left or u0 > right or v1 < top or v0 > bottom:
                row.append(0.0)
                continue
            hits = 0
            for sy in range(samples):
                v = ((py + (sy + 0.5) / samples) / size - inset) / span
                for sx in range(samples):
                    u = ((px + (sx + 0.5) / samples) / size - inset) / span
                    hits += inside(u, v)
            row.append(hits / (samples * samples))
        grid.append(row)
    return grid


def draw_color(size: int = COLOR_SIZE) -> bytes:
    """Opaque accent square with the white glyph in its central part."""
    grid = coverage(size, samples=4, inset=0.2, inside=in_glyph)
    return encode_png(size, size, [[_blend_on_accent(c) for c in row] for row in grid])


def _blend_on_accent(amount: float) -> Pixel:
    r, g, b = (round(a + (w - a) * amount) for a, w in zip(ACCENT, WHITE, strict=True))
    return (r, g, b, 255)


def draw_outline(size: int = OUTLINE_SIZE) -> bytes:
    """White glyph on a fully transparent background; only the alpha channel varies."""
    grid = coverage(size, samples=8, inset=0.0, inside=in_glyph)
    pixels = [[(*WHITE, round(255 * c)) for c in row] for row in grid]
    return encode_png(size, size, pixels)


def build_icons() -> dict[str, bytes]:
    return {"color.png": draw_color(), "outline.png": draw_outline()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Draw the Teams app icons (color.png, outline.png)."
    )
    parser.add_argument(
        "--out-dir", type=Path, default=HERE, help="where to write them (default: teams/)"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if the files in --out-dir differ from a fresh drawing",
    )
    args = parser.parse_args(argv)
    icons = build_icons()
    if args.check:
        stale = [
            name
            for name, data in icons.items()
            if not (args.out_dir / name).is_file() or (args.out_dir / name).read_bytes() != data
        ]
        if stale:
            print(
                f"out of date: {', '.join(stale)} (run python teams/make_icons.py)", file=sys.stderr
            )
            return 1
        print("icons are up to date")
        return 0
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, data in icons.items():
        (args.out_dir / name).write_bytes(data)
        print(f"wrote {args.out_dir / name} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

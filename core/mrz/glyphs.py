"""The glyphs of an MRZ band: cut apart on their fixed pitch, the fillers told by shape, masks for the recogniser
and its character boxes mapped back to the glyphs."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageOps

from core.mrz.bands import MRZ_WIDTHS, above_floor, runs
from core.mrz.icao import Mrz

TARGET_CHAR_HEIGHT = 32  # px: tesseract's LSTM reads OCR-B best at about this cap height

# Tesseract's English model reads OCR-B letters and digits well but the filler '<' badly (K, X, E, S, or two
# characters for one). The MRZ is printed at a fixed pitch with a glyph in every cell, so the glyphs can be cut
# apart by their columns of ink and the fillers told by their shape: a chevron with its point in the middle of
# the left side. Masking them leaves tesseract only letters and digits, and the fillers are put back by position.


@dataclass(frozen=True)
class Glyph:
    left: int
    right: int
    top: int
    bottom: int
    filler: bool


def is_filler(ink: np.ndarray, line_height: int) -> bool:
    """Whether a glyph's ink (cropped to its bounding box) is the chevron '<'."""
    height, width = ink.shape
    if not (0.55 * line_height <= height <= 1.1 * line_height and 0.45 * height <= width <= 1.15 * height):
        return False

    def density(r0: float, r1: float, c0: float, c1: float) -> float:
        rows = slice(int(r0 * height), max(int(r0 * height) + 1, int(r1 * height)))
        cols = slice(int(c0 * width), max(int(c0 * width) + 1, int(c1 * width)))
        return float(ink[rows, cols].mean())

    return (
        density(0.4, 0.6, 0.0, 0.25) > 0.4  # the point, middle left
        and density(0.0, 0.25, 0.65, 1.0) > 0.15  # the arms' ends, top right ...
        and density(0.75, 1.0, 0.65, 1.0) > 0.15  # ... and bottom right
        and density(0.0, 0.3, 0.0, 0.3) < 0.15  # nothing top left (K, E, X, C, S, Z have)
        and density(0.7, 1.0, 0.0, 0.3) < 0.15  # nothing bottom left
        and density(0.35, 0.65, 0.7, 1.0) < 0.15  # nothing middle right (4, K's leg, B, ...)
        and density(0.4, 0.6, 0.45, 0.65) < 0.5  # the open inside
    )


def glyph_line(dark: np.ndarray, top: int, bottom: int, pad: int = 0) -> list[Glyph]:
    """The longest run of evenly spaced, character-sized glyphs in a line, cut apart by their columns of ink."""
    height = bottom - top  # the line's height, without the `pad` rows taken above and below it
    top, bottom = max(0, top - pad), min(dark.shape[0], bottom + pad)
    band = dark[top:bottom]
    glyphs: list[Glyph | None] = []
    for left, right in runs(band.any(axis=0), gap=0):
        ink = band[:, left:right]
        rows = np.flatnonzero(ink.any(axis=1))
        g_top, g_bottom = int(rows[0]), int(rows[-1]) + 1
        if g_bottom - g_top < 0.35 * height or ink.sum() < 0.02 * height * height:
            continue  # a speck, a dot of dust, a piece of background line
        if right - left > 1.3 * height or ink.sum() > 0.8 * (right - left) * (g_bottom - g_top):
            glyphs.append(None)  # a blot, a shadow, a picture: not a character, and it breaks the run
            continue
        glyphs.append(Glyph(left, right, top + g_top, top + g_bottom, is_filler(ink[g_top:g_bottom], height)))
    best: list[Glyph] = []
    run: list[Glyph] = []
    for glyph in [*glyphs, None]:
        if glyph is not None and run and not 0.6 * height <= centre(glyph) - centre(run[-1]) <= 1.5 * height:
            best, run = max(best, run, key=len), []
        if glyph is None:
            best, run = max(best, run, key=len), []
        else:
            run.append(glyph)
    return best


def centre(glyph: Glyph) -> float:
    return (glyph.left + glyph.right) / 2


def regular(glyphs: list[Glyph]) -> bool:
    """Whether the glyph centres stand on one fixed-pitch grid, a glyph in each cell."""
    centres = np.array([centre(g) for g in glyphs])
    steps = np.diff(centres)
    if len(steps) == 0 or float(np.median(steps)) <= 0:
        return False
    cells = np.arange(len(centres))
    slope = float(np.median(steps))
    # a gently curved grid too: a photo taken at an angle draws the far end of a line smaller (foreshortening)
    fitted = np.polyval(np.polyfit(cells, centres, 2), cells)
    residual = np.abs(centres - fitted)
    pitch = np.gradient(fitted)
    return bool(
        residual.max() < 0.35 * slope
        and steps.min() > 0.5 * slope
        and float(pitch.min()) > 0.75 * float(pitch.max())
    )


def glyph_template(dark: np.ndarray) -> list[list[Glyph]] | None:
    """The glyphs of the MRZ lines in a thresholded band (dark = ink), bottom-most group first; None if unsure."""
    profile = dark.sum(axis=1)
    if profile.max(initial=0) == 0:
        return None
    lines = []
    profile = above_floor(profile, 3 * TARGET_CHAR_HEIGHT)
    floor = max(2.0, 0.01 * dark.shape[1], 0.15 * float(np.percentile(profile, 95)))
    for top, bottom in runs(profile >= floor, gap=1):
        if 0.5 * TARGET_CHAR_HEIGHT <= bottom - top <= 2.2 * TARGET_CHAR_HEIGHT:
            # the profile's run misses the thin tops and bottoms of round glyphs: take a little more of the line
            glyphs = glyph_line(dark, top, bottom, pad=(bottom - top) // 6)
            if len(glyphs) in MRZ_WIDTHS and regular(glyphs):
                lines.append(glyphs)
            else:
                lines.append([])
        else:
            lines.append([])
    for end in range(len(lines), 0, -1):
        width = len(lines[end - 1])
        count = MRZ_WIDTHS.get(width, 0)
        group = lines[end - count : end] if count and end >= count else []
        if group and all(len(line) == width for line in group):
            pitches = [(line[-1].right - line[0].left) / width for line in group]
            lefts = [line[0].left for line in group]
            if max(pitches) < 1.1 * min(pitches) and max(lefts) - min(lefts) < 2 * max(pitches):
                return _fillers_like_the_others(group, dark)
    return None


def _shape(dark: np.ndarray, glyph: Glyph) -> np.ndarray:
    ink = dark[glyph.top : glyph.bottom, glyph.left : glyph.right]
    image = Image.fromarray(np.where(ink, 255, 0).astype(np.uint8), "L").resize((16, 16), Image.Resampling.BILINEAR)
    return np.asarray(image) > 127


def _fillers_like_the_others(group: list[list[Glyph]], dark: np.ndarray) -> list[list[Glyph]]:
    """Glyphs shaped like the fillers the chevron test found, made fillers too: a thin chevron that a blur or a
    JPEG filled in fails the test but still looks like the document's other fillers (and like no letter)."""
    fillers = [glyph for line in group for glyph in line if glyph.filler]
    if len(fillers) < 3:
        return group
    prototype = np.mean([_shape(dark, glyph) for glyph in fillers], axis=0) > 0.5
    height = float(np.median([glyph.bottom - glyph.top for glyph in fillers]))
    out = []
    for line in group:
        kept = []
        for glyph in line:
            if not glyph.filler and 0.8 * height <= glyph.bottom - glyph.top <= 1.25 * height:
                shape = _shape(dark, glyph)
                overlap = float((shape & prototype).sum()) / max(1, int((shape | prototype).sum()))
                if overlap >= 0.75:
                    glyph = replace(glyph, filler=True)
            kept.append(glyph)
        out.append(kept)
    return out


def masked(pixels: np.ndarray, template: list[list[Glyph]]) -> Image.Image:
    """Only the letters and digits of the MRZ lines, in place, on white: fillers and everything else removed.

    `pixels`: the thresholded band (bool, True = ink) or its grey levels (uint8)."""
    if pixels.dtype == bool:
        pixels = np.where(pixels, 0, 255).astype(np.uint8)
    canvas = np.full(pixels.shape, 255, dtype=np.uint8)
    for line in template:
        for glyph in line:
            if not glyph.filler:
                box = (slice(glyph.top, glyph.bottom), slice(glyph.left, glyph.right))
                canvas[box] = pixels[box]
    return ImageOps.expand(Image.fromarray(canvas, "L"), border=TARGET_CHAR_HEIGHT, fill=255)


def unmask(boxes: str, template: list[list[Glyph]], image_height: int) -> str | None:
    """The MRZ lines from tesseract's character boxes on a masked image, each glyph taking the character whose box
    covers it most and the fillers put back; None if a glyph got no character. Going by position rather than by
    count, a glyph read as two characters (7 as 7T) or a stray mark read as one do not shift the line."""
    found: list[tuple[str, float, float, float]] = []  # character, left, right, vertical centre (image coordinates)
    for row in boxes.splitlines():
        parts = row.split()
        if len(parts) >= 5 and len(parts[0]) == 1 and all(p.lstrip("-").isdigit() for p in parts[1:5]):
            left, bottom, right, top = (float(p) - TARGET_CHAR_HEIGHT for p in parts[1:5])
            centre = image_height - 2 * TARGET_CHAR_HEIGHT - (bottom + top) / 2
            found.append((parts[0], left, right, centre))
    out = []
    for line in template:
        chars = []
        for glyph in line:
            if glyph.filler:
                chars.append("<")
                continue
            best, cover = "", 0.3 * float(glyph.right - glyph.left)
            for char, left, right, centre in found:
                overlap = min(right, float(glyph.right)) - max(left, float(glyph.left))
                if glyph.top - 2 <= centre <= glyph.bottom + 2 and overlap > cover:
                    best, cover = char, overlap
            if not best:
                return None
            chars.append(best)
        out.append("".join(chars))
    return "\n".join(out)


def agrees(found: Mrz, template: list[list[Glyph]] | None) -> Mrz:
    """`found`, with a failing check `fillers` when its fillers are not where the image has them."""
    if template is None:
        return found
    shape = [len(line) for line in template]
    if [len(line) for line in found.lines] != shape:
        return found
    pattern = ["".join("<" if glyph.filler else "x" for glyph in line) for line in template]
    seen = ["".join("<" if ch == "<" else "x" for ch in line) for line in found.lines]
    return replace(found, checks={**found.checks, "fillers": seen == pattern})

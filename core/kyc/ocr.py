"""Reading the machine readable zone (MRZ) of a passport or ID card from a photo or scan, with tesseract.

`read_document(path_or_image)` runs a bounded pipeline and returns a `Reading`:

1. decode (refusing more than `MAX_PIXELS`), apply the EXIF orientation, convert to grey;
2. on a small analysis copy: autocontrast, a median filter against noise, the lighting flattened (divided by a
   blurred local maximum), then ink = below an Otsu threshold of the histogram and below a local (Sauvola)
   threshold, so neither specks in light areas nor a shadow or a dark table count as print;
3. estimate the skew of the text lines (the angle in [-4, 4] degrees, 0.5 then 0.1 steps, that maximises the
   variance of the horizontal projection of ink) and rotate it away;
4. find the MRZ band: 2 or 3 evenly spaced lines of similar length, dense in dark-light transitions, near the
   bottom (a horizontal projection profile less its running minimum, so a textured surrounding does not merge the
   lines); fixed bottom crops (35%, 25%, 50%) back it up;
5. each crop is scaled so that the MRZ characters are about 32 px tall (several scales), thresholded the same way;
   the MRZ glyphs are cut apart on their fixed pitch and the fillers '<' told by shape (tesseract's English model
   misreads them as K, X, E, S...); tesseract (LSTM only, `--psm 6`, whitelist, dictionaries off) reads the
   letters and digits alone, mapped back to their glyphs by its character boxes, and `mrz.read` parses the lines;
6. look-alike letters and digits (0/O, 9/O, 8/B, ...) in document numbers and optional data are re-decided by the
   document's own prints of each; a name or country letter that looks like another letter's prints fails a check,
   and so does a look-alike (O/0, I/1, B/8, S/5, Z/2) in a document or personal number that the check digit
   cannot decide (its look-alike passes too) unless the prints clearly decide it: doubt is never valid;
7. fields no check digit covers (names, country codes, nationality, sex) must be read the same from two different
   crops before a reading verifies; it stops there, else keeps the best parse (most passing checks), within
   `TIME_BUDGET` seconds and `MAX_ATTEMPTS` tesseract runs, so a hostile or blank image cannot run for ever.

Any decodable image gives a Reading (mrz None when nothing plausible is found); a missing tesseract raises. Checks
this module adds to `Mrz.checks` (all must pass for `valid`): `fillers` (the fillers are where the image has
chevrons), `lookalikes`, and `corroborated` (False on a valid parse read from one crop only).
"""

from __future__ import annotations

import io
import itertools
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import IO

import numpy as np
import pytesseract  # type: ignore[import-untyped]
from PIL import Image, ImageFilter, ImageOps

from core.kyc import mrz
from core.kyc.mrz import Mrz

TIME_BUDGET = 20.0  # seconds for one document, decoding included
MAX_ATTEMPTS = 14  # tesseract runs for one document
MAX_PIXELS = 40_000_000  # larger images are not decoded (a JPEG is decoded reduced when it can be)
MRZ_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<"
TARGET_CHAR_HEIGHT = 32  # px: tesseract's LSTM reads OCR-B best at about this cap height
ANALYSIS_SIZE = 1200  # px, the long side of the copy on which skew and the MRZ band are found
WORK_SIZE = 4000  # px, the long side beyond which the image is reduced before cropping
_MRZ_WIDTHS = {44: 2, 36: 2, 30: 3}  # characters per line -> lines, for TD3 and MRV-A, TD2 and MRV-B, TD1
_BASE_CONFIG = "--oem 1 --psm 6 -c load_system_dawg=0 -c load_freq_dawg=0"
_WHITELIST_CONFIG = f"{_BASE_CONFIG} -c tessedit_char_whitelist={MRZ_ALPHABET}"
_LETTERS_CONFIG = f"{_BASE_CONFIG} -c tessedit_char_whitelist={MRZ_ALPHABET[:-1]}"

ImageInput = str | os.PathLike[str] | bytes | IO[bytes] | Image.Image


@dataclass(frozen=True)
class Reading:
    mrz: Mrz | None  # best parse found (fully valid preferred, else most passing checks)
    text: str  # the OCR text that produced it
    attempts: int  # how many preprocess/crop/OCR variants were tried (tesseract runs)
    seconds: float


def read_document(
    path_or_image: ImageInput,
    *,
    today: date | None = None,
    time_budget: float = TIME_BUDGET,
    max_attempts: int = MAX_ATTEMPTS,
) -> Reading:
    """Read the MRZ of the document in `path_or_image` (a path, bytes, a binary file or a PIL image).

    Never raises for the content of an image: an undecodable, blank or unreadable one gives mrz None. A missing
    file raises FileNotFoundError, a missing tesseract pytesseract.TesseractNotFoundError.
    """
    started = time.monotonic()
    deadline = started + time_budget
    seen: list[_Seen] = []  # every parse, with the text and the crop it came from
    attempts = 0
    grey = _load_grey(path_or_image)
    if grey is not None:
        os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # tesseract's OpenMP threads slow it on small machines
        templates: list[list[list[_Glyph]]] = []
        for variant in _variants(grey, templates):
            if attempts >= max_attempts or time.monotonic() >= deadline:
                break
            attempts += 1
            text = _ocr(variant.image, variant.config, deadline, boxes=variant.template is not None)
            if text is None:
                break
            if variant.template is not None:
                text = _unmask(text, variant.template, variant.image.height) or ""
            found = _read_mrz(text, today)
            if found is None:
                continue
            if variant.template is not None and variant.dark is not None:
                resolved = _resolve_lookalikes(found, variant.template, variant.dark, today)
                if resolved.lines != found.lines:
                    text = "\n".join(resolved.lines)
                found = resolved
            else:
                found = _doubts_settled(found, {})
            found = _agrees(found, variant.template or (templates[0] if templates else None))
            seen.append(_Seen(found, text, variant.source))
            if _settled(seen):
                break
    best, text = _choose(seen)
    return Reading(best, text, attempts, time.monotonic() - started)


def _unchecked(found: Mrz) -> str:
    """The characters no check digit covers: line 1 of the long formats (code, issuing state, names), nationality
    and sex; in TD1 the code, issuing state, sex, nationality and names. One misread there still passes every check,
    so a verification needs two readings that agree on them."""
    lines = found.lines
    if len(lines) == 3:
        return lines[0][0:5] + lines[1][7] + lines[1][15:18] + lines[2]
    return lines[0] + lines[1][10:13] + lines[1][20]


@dataclass(frozen=True)
class _Seen:
    mrz: Mrz
    text: str
    source: int


def _corroborated(reading: _Seen, seen: list[_Seen]) -> bool:
    """A valid parse whose unchecked characters a reading of another crop (of any validity) read the same."""
    if not reading.mrz.valid:
        return False
    key = (reading.mrz.format, _unchecked(reading.mrz))
    return any(other.source != reading.source and (other.mrz.format, _unchecked(other.mrz)) == key for other in seen)


def _settled(seen: list[_Seen]) -> bool:
    return any(_corroborated(reading, seen) for reading in seen)


def _choose(seen: list[_Seen]) -> tuple[Mrz | None, str]:
    """The corroborated valid parse if any; else the best plausible one, which does not verify (a valid parse read
    from one crop only gets a failing check `corroborated`)."""
    for reading in seen:
        if _corroborated(reading, seen):
            return reading.mrz, reading.text
    candidates = [reading for reading in seen if reading.mrz.valid or _plausible(reading.mrz)]
    if not candidates:
        return None, ""
    best = max(candidates, key=lambda reading: _score(reading.mrz))
    found = best.mrz
    if found.valid:
        found = replace(found, checks={**found.checks, "corroborated": False})
    return found, best.text


# --- decoding ---------------------------------------------------------------------------------------------------


def _load_grey(source: ImageInput) -> Image.Image | None:
    """The image in grey (mode L), upright per EXIF and at most WORK_SIZE on its long side; None if undecodable."""
    if isinstance(source, str | os.PathLike) and not Path(source).exists():
        raise FileNotFoundError(source)
    try:
        if isinstance(source, Image.Image):
            image = source
        else:
            opened = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
            if opened.width * opened.height > MAX_PIXELS:
                opened.draft("L", (opened.width // 4, opened.height // 4))  # JPEG only: decode reduced
            if opened.width * opened.height > MAX_PIXELS:
                return None
            opened.load()
            image = opened
        if image.width * image.height > MAX_PIXELS or image.width < 1 or image.height < 1:
            return None
        try:
            image = ImageOps.exif_transpose(image)
        except Exception:  # a broken EXIF block: keep the pixels as they are
            pass
        grey = _to_grey(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, MemoryError, EOFError):
        return None
    if max(grey.size) > WORK_SIZE:
        ratio = WORK_SIZE / max(grey.size)
        grey = grey.resize(
            (max(1, round(grey.width * ratio)), max(1, round(grey.height * ratio))), Image.Resampling.BOX
        )
    return grey


def _to_grey(image: Image.Image) -> Image.Image:
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        pixels = np.asarray(image, dtype=np.float64)
        low, high = float(pixels.min()), float(pixels.max())
        scaled = (pixels - low) * (255.0 / (high - low)) if high > low else np.zeros_like(pixels)
        return Image.fromarray(scaled.astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("L")
    return image.convert("L")


# --- image operations -------------------------------------------------------------------------------------------


def _resize(image: Image.Image, factor: float) -> Image.Image:
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    if size == image.size:
        return image
    method = Image.Resampling.LANCZOS if factor < 1 else Image.Resampling.BICUBIC
    return image.resize(size, method)


def _flatten(grey: Image.Image, feature: float) -> np.ndarray:
    """Divide out the lighting: the background is a blurred local maximum over windows a few times `feature` px."""
    k = max(1, int(feature))
    small = grey.resize((max(1, grey.width // k), max(1, grey.height // k)), Image.Resampling.BOX)
    background = small.filter(ImageFilter.MaxFilter(5)).filter(ImageFilter.GaussianBlur(1.5))
    background = background.resize(grey.size, Image.Resampling.BILINEAR)
    pixels = np.asarray(grey, dtype=np.float32)
    light = np.maximum(np.asarray(background, dtype=np.float32), 1.0)
    return np.clip(pixels * (255.0 / light), 0, 255).astype(np.uint8)


def _otsu(pixels: np.ndarray) -> int:
    """The Otsu threshold of a uint8 array, from its histogram."""
    histogram = np.bincount(pixels.ravel(), minlength=256).astype(np.float64)
    total = histogram.sum()
    if total == 0:
        return 128
    levels = np.arange(256, dtype=np.float64)
    weight = np.cumsum(histogram)
    mass = np.cumsum(histogram * levels)
    background = total - weight
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_dark = mass / weight
        mean_light = (mass[-1] - mass) / background
        between = weight * background * (mean_dark - mean_light) ** 2
    between = np.nan_to_num(between, nan=0.0, posinf=0.0, neginf=0.0)
    return int(np.argmax(between))


def _local_threshold(pixels: np.ndarray, window: int, k: float = 0.2) -> np.ndarray:
    """Sauvola's local threshold: dark where darker than the local mean, less where the contrast is low. A dark table
    or a shadow, uniform around a pixel, stays background."""
    window = max(3, window | 1)
    values = pixels.astype(np.float64)
    padded = np.pad(values, window // 2 + 1, mode="edge")
    squares = padded * padded
    integral = padded.cumsum(0).cumsum(1)
    integral_sq = squares.cumsum(0).cumsum(1)
    h, w = values.shape

    def box(table: np.ndarray) -> np.ndarray:
        return (
            table[window : window + h, window : window + w]
            - table[0:h, window : window + w]
            - table[window : window + h, 0:w]
            + table[0:h, 0:w]
        )

    area = float(window * window)
    mean = box(integral) / area
    deviation = np.sqrt(np.maximum(box(integral_sq) / area - mean * mean, 0.0))
    return values <= mean * (1.0 + k * (deviation / 128.0 - 1.0))


def _binarize(grey: Image.Image, feature: float, denoise: bool) -> np.ndarray:
    """Dark pixels (True) of a grey image: contrast normalised, lighting flattened, then below both an Otsu threshold
    of the whole (no specks in light areas) and a local threshold (no shadow or dark surroundings as ink)."""
    grey = ImageOps.autocontrast(grey, cutoff=1)
    if denoise:
        grey = grey.filter(ImageFilter.MedianFilter(3))
    flat = _flatten(grey, feature)
    return (flat <= _otsu(flat)) & _local_threshold(np.asarray(grey), int(feature * 2))


def _skew(dark: np.ndarray) -> float:
    """The angle (degrees, counter-clockwise) of the text lines: the shear maximising the projection's variance."""
    ys, xs = np.nonzero(dark)
    if len(ys) < 50:
        return 0.0
    if len(ys) > 300_000:
        pick = np.random.default_rng(0).choice(len(ys), 300_000, replace=False)
        ys, xs = ys[pick], xs[pick]
    ys = ys.astype(np.float64)
    xs = xs.astype(np.float64)

    def sharpness(angle: float) -> float:
        projected = np.round(ys + xs * math.tan(math.radians(angle))).astype(np.int64)
        counts = np.bincount(projected - projected.min())
        return float(np.dot(counts, counts))

    coarse = max(np.arange(-4.0, 4.01, 0.5), key=sharpness)
    fine = max(np.arange(coarse - 0.4, coarse + 0.41, 0.1), key=sharpness)
    return float(round(fine, 2))


def _rotate(grey: Image.Image, angle: float) -> Image.Image:
    if abs(angle) < 0.05:
        return grey
    border = np.concatenate([np.asarray(grey)[0], np.asarray(grey)[-1]])
    fill = int(np.median(border))
    return grey.rotate(-angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=fill)


# --- finding the MRZ --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Line:
    top: int
    bottom: int
    left: int
    right: int

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def width(self) -> int:
        return self.right - self.left


@dataclass(frozen=True)
class _Band:
    box: tuple[int, int, int, int]  # left, top, right, bottom in the analysed image
    char_height: float  # px in the analysed image
    score: float


def _runs(mask: np.ndarray | np.bool_, gap: int) -> list[tuple[int, int]]:
    """[start, end) runs of True in a 1-D mask, joining runs separated by at most `gap` False."""
    runs: list[tuple[int, int]] = []
    indices = np.flatnonzero(mask)
    if len(indices) == 0:
        return runs
    start = previous = int(indices[0])
    for index in indices[1:]:
        index = int(index)
        if index - previous > gap + 1:
            runs.append((start, previous + 1))
            start = index
        previous = index
    runs.append((start, previous + 1))
    return runs


def _above_floor(profile: np.ndarray, window: int) -> np.ndarray:
    """A row profile less its running minimum: what lines of print add to a textured or noisy surrounding."""
    window = max(3, min(len(profile), window))
    padded = np.pad(profile, window // 2, mode="edge")
    floor = np.lib.stride_tricks.sliding_window_view(padded, window).min(axis=1)[: len(profile)]
    return np.asarray(profile - floor, dtype=np.float64)


def _text_lines(dark: np.ndarray) -> list[_Line]:
    """Rows dense in dark-light transitions, grouped into lines, each with the horizontal extent of its ink."""
    transitions = np.count_nonzero(dark[:, 1:] & ~dark[:, :-1], axis=1).astype(np.float64)
    if transitions.max(initial=0) < 8:
        return []
    raw = np.convolve(transitions, np.ones(3) / 3, mode="same")
    smooth = _above_floor(raw, max(15, dark.shape[0] // 8))
    # a line of print stands well above its surrounding; the ups and downs of noise do not
    threshold = max(6.0, 0.3 * float(np.percentile(smooth, 99.5)), 0.3 * float(np.median(raw)))
    lines = []
    for top, bottom in _runs(smooth >= threshold, gap=1):
        height = bottom - top
        if height < 4 or height > dark.shape[0] / 4:
            continue
        # the columns with more ink in the line than just above and below it: print, not background texture
        ink = dark[top:bottom].mean(axis=0)
        around = np.concatenate([dark[max(0, top - height) : top], dark[bottom : bottom + height]])
        surrounding = around.mean(axis=0) if len(around) else np.zeros_like(ink)
        spans = _runs(ink - surrounding > 0.12, gap=max(2, int(height * 1.6)))
        if not spans:
            continue
        left, right = max(spans, key=lambda span: span[1] - span[0])
        lines.append(_Line(top, bottom, left, right))
    return lines


def _find_bands(dark: np.ndarray) -> list[_Band]:
    """Groups of 2 or 3 lines that look like an MRZ, best first."""
    lines = _text_lines(dark)
    height = dark.shape[0]
    bands = []
    for count in (2, 3):
        for i in range(len(lines) - count + 1):
            group = lines[i : i + count]
            heights = [line.height for line in group]
            widths = [line.width for line in group]
            pitches = [b.top - a.top for a, b in zip(group, group[1:], strict=False)]
            mean_height = sum(heights) / count
            if max(heights) > 1.6 * min(heights) or min(widths) < 0.75 * max(widths):
                continue
            if max(pitches) > 1.3 * min(pitches) or not 1.15 <= sum(pitches) / len(pitches) / mean_height <= 3.2:
                continue
            if max(line.left for line in group) - min(line.left for line in group) > 3 * mean_height:
                continue
            aspect = sum(widths) / count / mean_height  # OCR-B's pitch is about its cap height: ~44, 36 or 30
            if aspect < 15:
                continue
            lowness = group[-1].bottom / height
            fit = max(1 - abs(aspect - chars) / chars for chars, lines in _MRZ_WIDTHS.items() if lines == count)
            score = lowness + fit
            margin_x, margin_y = int(1.5 * mean_height), int(0.9 * mean_height)
            pitch = sum(pitches) / len(pitches)
            # two lines of ~30 characters may be the lower two of an ID card's three
            reach_up = int(pitch) if count == 2 and aspect < 33 else 0
            box = (
                max(0, min(line.left for line in group) - margin_x),
                max(0, group[0].top - margin_y - reach_up),
                min(dark.shape[1], max(line.right for line in group) + margin_x),
                min(height, group[-1].bottom + margin_y),
            )
            bands.append(_Band(box, mean_height, score))
    bands.sort(key=lambda band: -band.score)
    distinct: list[_Band] = []
    for band in bands:
        if not any(_overlap(band.box, other.box) > 0.6 for other in distinct):
            distinct.append(band)
    return distinct[:2]


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return width * height / max(1, smaller)


# --- the glyphs of the MRZ -------------------------------------------------------------------------------------
# Tesseract's English model reads OCR-B letters and digits well but the filler '<' badly (K, X, E, S, or two
# characters for one). The MRZ is printed at a fixed pitch with a glyph in every cell, so the glyphs can be cut
# apart by their columns of ink and the fillers told by their shape: a chevron with its point in the middle of
# the left side. Masking them leaves tesseract only letters and digits, and the fillers are put back by position.


@dataclass(frozen=True)
class _Glyph:
    left: int
    right: int
    top: int
    bottom: int
    filler: bool


def _is_filler(ink: np.ndarray, line_height: int) -> bool:
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


def _glyph_line(dark: np.ndarray, top: int, bottom: int) -> list[_Glyph]:
    """The longest run of evenly spaced, character-sized glyphs in a line, cut apart by their columns of ink."""
    band = dark[top:bottom]
    height = bottom - top
    glyphs: list[_Glyph | None] = []
    for left, right in _runs(band.any(axis=0), gap=0):
        ink = band[:, left:right]
        rows = np.flatnonzero(ink.any(axis=1))
        g_top, g_bottom = int(rows[0]), int(rows[-1]) + 1
        if g_bottom - g_top < 0.35 * height or ink.sum() < 0.02 * height * height:
            continue  # a speck, a dot of dust, a piece of background line
        if right - left > 1.3 * height or ink.sum() > 0.8 * (right - left) * (g_bottom - g_top):
            glyphs.append(None)  # a blot, a shadow, a picture: not a character, and it breaks the run
            continue
        glyphs.append(_Glyph(left, right, top + g_top, top + g_bottom, _is_filler(ink[g_top:g_bottom], height)))
    best: list[_Glyph] = []
    run: list[_Glyph] = []
    for glyph in [*glyphs, None]:
        if glyph is not None and run and not 0.6 * height <= _centre(glyph) - _centre(run[-1]) <= 1.5 * height:
            best, run = max(best, run, key=len), []
        if glyph is None:
            best, run = max(best, run, key=len), []
        else:
            run.append(glyph)
    return best


def _centre(glyph: _Glyph) -> float:
    return (glyph.left + glyph.right) / 2


def _regular(glyphs: list[_Glyph]) -> bool:
    """Whether the glyph centres stand on one fixed-pitch grid, a glyph in each cell."""
    centres = np.array([_centre(g) for g in glyphs])
    steps = np.diff(centres)
    if len(steps) == 0 or float(np.median(steps)) <= 0:
        return False
    slope, intercept = np.polyfit(np.arange(len(centres)), centres, 1)
    residual = np.abs(centres - (intercept + slope * np.arange(len(centres))))
    return bool(residual.max() < 0.35 * slope and steps.min() > 0.5 * slope)


def _template(dark: np.ndarray) -> list[list[_Glyph]] | None:
    """The glyphs of the MRZ lines in a thresholded band (dark = ink), bottom-most group first; None if unsure."""
    profile = dark.sum(axis=1)
    if profile.max(initial=0) == 0:
        return None
    lines = []
    profile = _above_floor(profile, 3 * TARGET_CHAR_HEIGHT)
    floor = max(2.0, 0.01 * dark.shape[1], 0.15 * float(np.percentile(profile, 95)))
    for top, bottom in _runs(profile >= floor, gap=1):
        if 0.5 * TARGET_CHAR_HEIGHT <= bottom - top <= 2.2 * TARGET_CHAR_HEIGHT:
            glyphs = _glyph_line(dark, top, bottom)
            if len(glyphs) in _MRZ_WIDTHS and _regular(glyphs):
                lines.append(glyphs)
            else:
                lines.append([])
        else:
            lines.append([])
    for end in range(len(lines), 0, -1):
        width = len(lines[end - 1])
        count = _MRZ_WIDTHS.get(width, 0)
        group = lines[end - count : end] if count and end >= count else []
        if group and all(len(line) == width for line in group):
            pitches = [(line[-1].right - line[0].left) / width for line in group]
            lefts = [line[0].left for line in group]
            if max(pitches) < 1.1 * min(pitches) and max(lefts) - min(lefts) < 2 * max(pitches):
                return group
    return None


def _masked(pixels: np.ndarray, template: list[list[_Glyph]]) -> Image.Image:
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


def _unmask(boxes: str, template: list[list[_Glyph]], image_height: int) -> str | None:
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


def _agrees(found: Mrz, template: list[list[_Glyph]] | None) -> Mrz:
    """`found`, with a failing check `fillers` when its fillers are not where the image has them."""
    if template is None:
        return found
    shape = [len(line) for line in template]
    if [len(line) for line in found.lines] != shape:
        return found
    pattern = ["".join("<" if glyph.filler else "x" for glyph in line) for line in template]
    seen = ["".join("<" if ch == "<" else "x" for ch in line) for line in found.lines]
    return replace(found, checks={**found.checks, "fillers": seen == pattern})


# --- characters that look alike ---------------------------------------------------------------------------------
# OCR-B's 0 and O, D and O, 8 and B, ... differ only slightly, and tesseract sometimes picks the wrong one: in a
# document number or optional data no field type decides, and in the names or country codes no check digit catches
# it. The other glyphs of the same MRZ show how this document prints each character: a glyph that clearly resembles
# the prints of a look-alike more than those of the character read takes the look-alike. Positions whose type is
# fixed keep it (a date stays digits, a name letters).

_SAME_GLYPH = 0.8  # similarity two prints of one character reach (0 and 0: 0.85-0.9; 0 and O: about 0.7)


def _typed(lines: tuple[str, ...]) -> tuple[set[tuple[int, int]], set[tuple[int, int]]]:
    """(positions that hold a letter or filler, positions that hold a digit or filler) of an MRZ of this shape."""
    width = len(lines[0])

    def cells(line: int, start: int, end: int) -> set[tuple[int, int]]:
        return {(line, i) for i in range(start, end)}

    if len(lines) == 3:
        letters = cells(0, 0, 5) | cells(1, 7, 8) | cells(1, 15, 18) | cells(2, 0, 30)
        digits = cells(0, 14, 15) | cells(1, 0, 7) | cells(1, 8, 15) | cells(1, 29, 30)
        return letters, digits
    letters = cells(0, 0, width) | cells(1, 10, 13) | cells(1, 20, 21)
    digits = cells(1, 9, 10) | cells(1, 13, 20) | cells(1, 21, 28)
    if lines[0][:1] != "V":  # visas have no check digits at the end
        digits |= cells(1, 42, 44) if width == 44 else cells(1, 35, 36)
    return letters, digits


class _Print:
    """One glyph's ink, normalised for comparison with others."""

    def __init__(self, ink: np.ndarray) -> None:
        image = Image.fromarray(np.where(ink, 255, 0).astype(np.uint8), "L")
        self.shape = np.asarray(image.resize((20, 28), Image.Resampling.BILINEAR)) > 127
        self.height, self.width = ink.shape

    def likeness(self, other: _Print) -> float:
        """Overlap of the normalised shapes, less the difference in size: ~0.85-0.9 for two prints of one
        character, ~0.7 for 0 and O."""
        overlap = float((self.shape & other.shape).sum()) / max(1, int((self.shape | other.shape).sum()))
        return (
            overlap
            - abs(self.height - other.height) / max(self.height, other.height)
            - abs(self.width - other.width) / max(self.width, other.width)
        )


Scores = dict[tuple[int, int], dict[str, float]]


def _scores(lines: tuple[str, ...], template: list[list[_Glyph]], dark: np.ndarray) -> Scores:
    """For each glyph of the MRZ, its best likeness to the document's other prints of each character."""
    prints: dict[tuple[int, int], _Print] = {}
    for row, line in enumerate(template):
        for col, glyph in enumerate(line):
            if not glyph.filler and lines[row][col] != "<":
                prints[row, col] = _Print(dark[glyph.top : glyph.bottom, glyph.left : glyph.right])
    scores: Scores = {}
    for position, ink in prints.items():
        score: dict[str, float] = {}
        for other_position, other in prints.items():
            if other_position != position:
                other_char = lines[other_position[0]][other_position[1]]
                score[other_char] = max(score.get(other_char, -1.0), ink.likeness(other))
        scores[position] = score
    return scores


def _resolve_lookalikes(found: Mrz, template: list[list[_Glyph]], dark: np.ndarray, today: date | None) -> Mrz:
    """`found` with the glyphs of its letter-and-digit fields re-decided by the document's own prints, and a failing
    check `lookalikes` if a letter of a name or country code looks more like the prints of another letter, or if a
    look-alike in the document number or personal number is one the check digit cannot decide and the prints do
    not decide either (see `_doubts_settled`)."""
    lines = found.lines
    if [len(line) for line in lines] != [len(line) for line in template]:
        return _doubts_settled(found, {})
    letters, digits = _typed(lines)
    scores = _scores(lines, template, dark)
    chars = [list(line) for line in lines]
    doubts = 0
    for position, score in scores.items():
        if position in digits:
            continue  # mrz.clean made it a digit, and a check digit covers it
        char = lines[position[0]][position[1]]
        rivals = [c for c in score if c != char and (position not in letters or c.isalpha())]
        if not rivals:
            continue
        rival = max(rivals, key=lambda c: score[c])
        if score[rival] >= _SAME_GLYPH and score[rival] > score.get(char, -1.0) + 0.05:
            if position in letters:
                doubts += 1  # a name or country: nothing would catch a wrong guess, so the reading is not trusted
            else:
                chars[position[0]][position[1]] = rival  # a document number or optional data: check digits judge
    fixed = ["".join(row) for row in chars]
    result = found
    if fixed != list(lines):
        try:
            result = mrz.parse(fixed, today=today)
        except mrz.MrzError:
            pass
    if doubts:
        result = replace(result, checks={**result.checks, "lookalikes": False})
    return _doubts_settled(result, scores)


def _doubts_settled(found: Mrz, scores: Scores) -> Mrz:
    """A look-alike the check digit cannot decide (mrz.doubtful_positions) must be decided by the document's own
    prints: either it looks like the other prints of the character read and clearly less like those of its
    look-alike, or the document has no other print of the character read but does print the look-alike, and this
    glyph clearly is not that. Otherwise the reading fails the check `lookalikes`: doubt is never valid. A reading
    without glyph prints (no template) has no such evidence."""
    for row, col in mrz.doubtful_positions(found):
        char = found.lines[row][col]
        score = scores.get((row, col), {})
        mine, rival = score.get(char), score.get(mrz.LOOKALIKES[char])
        if mine is not None and mine >= _SAME_GLYPH and (rival is None or mine > rival + 0.05):
            continue
        if mine is None and rival is not None and rival < _SAME_GLYPH - 0.05:
            continue
        return replace(found, checks={**found.checks, "lookalikes": False})
    return found


# --- the variants to read ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Variant:
    image: Image.Image
    config: str
    source: int  # the prepared crop it comes from: readings that corroborate each other come from different ones
    template: list[list[_Glyph]] | None = None  # set on a masked image: its text needs the fillers put back
    dark: np.ndarray | None = None  # the thresholded band the template's glyphs are in


_serials = itertools.count()


@dataclass
class _Prepared:
    dark: np.ndarray  # thresholded, dark = True, at TARGET_CHAR_HEIGHT
    grey: Image.Image  # the same, before thresholding
    template: list[list[_Glyph]] | None
    serial: int = field(default_factory=lambda: next(_serials))

    def binary(self) -> Image.Image:
        image = Image.fromarray(np.where(self.dark, 0, 255).astype(np.uint8), "L")
        return ImageOps.expand(image, border=TARGET_CHAR_HEIGHT, fill=255)

    def contrast(self) -> np.ndarray:
        flat = _flatten(ImageOps.autocontrast(self.grey, cutoff=1), TARGET_CHAR_HEIGHT * 1.5)
        return np.asarray(ImageOps.autocontrast(Image.fromarray(flat, "L"), cutoff=0.5))


def _prepare(crop: Image.Image, char_height: float) -> _Prepared | None:
    """The crop scaled to TARGET_CHAR_HEIGHT characters, normalised and thresholded; None if it holds no print."""
    factor = min(4.0, max(0.2, TARGET_CHAR_HEIGHT / max(char_height, 1.0)))
    scaled = _resize(crop, factor)
    if scaled.width < 40 or scaled.height < 20:
        return None
    dark = _binarize(scaled, TARGET_CHAR_HEIGHT * 1.5, denoise=True)
    share = float(dark.mean())
    if not 0.003 <= share <= 0.4:  # blank, or noise and solid areas rather than print
        return None
    template = _template(dark)
    lines = [line for line in _text_lines(dark) if 0.4 * TARGET_CHAR_HEIGHT <= line.height <= 2 * TARGET_CHAR_HEIGHT]
    if template is None and sum(1 for line in lines if line.width >= 8 * line.height) < 2:
        return None  # no lines of print: noise, texture or a picture; tesseract would only take long on it
    return _Prepared(dark, scaled, template)


def _readings(prepared: _Prepared | None, *kinds: str) -> Iterator[_Variant]:
    """Variants of one prepared crop: `masked` (letters and digits only, thresholded), `masked grey` (the same in
    grey levels), `plain` (the thresholded crop, fillers and all; also instead of `masked` when no MRZ glyphs were
    found)."""
    if prepared is None:
        return
    source = prepared.serial
    template, dark = prepared.template, prepared.dark
    for kind in kinds:
        if template is not None and kind == "masked":
            yield _Variant(_masked(dark, template), _LETTERS_CONFIG, source, template, dark)
        elif template is not None and kind == "masked grey":
            yield _Variant(_masked(prepared.contrast(), template), _LETTERS_CONFIG, source, template, dark)
        elif kind == "plain" or (template is None and kind == "masked"):
            yield _Variant(prepared.binary(), _WHITELIST_CONFIG, source)


def _variants(grey: Image.Image, found: list[list[list[_Glyph]]]) -> Iterator[_Variant]:
    """Images for tesseract, most promising first, built lazily. Templates seen are appended to `found`."""
    if grey.width < 60 or grey.height < 20:
        return
    analysis_ratio = min(1.0, ANALYSIS_SIZE / max(grey.size))
    small = _resize(grey, analysis_ratio)
    feature = max(8.0, max(small.size) / 60)
    angle = _skew(_binarize(small, feature, denoise=True)[small.height * 2 // 5 :])
    upright = _rotate(grey, angle)
    bands = _find_bands(_binarize(_rotate(small, angle), feature, denoise=True))

    def band_crop(band: _Band) -> Image.Image:
        return upright.crop(tuple(round(v / analysis_ratio) for v in band.box))  # type: ignore[arg-type]

    def prepared(region: Image.Image, height: float) -> _Prepared | None:
        result = _prepare(region, height)
        if result is not None and result.template is not None:
            found.append(result.template)
        return result

    guess = bands[0].char_height / analysis_ratio if bands else None
    if bands:
        # the band at the measured size and at two others: two readings from different scales must agree
        region, height = band_crop(bands[0]), bands[0].char_height / analysis_ratio
        measured = prepared(region, height)
        yield from _readings(measured, "masked")
        smaller = prepared(region, height * TARGET_CHAR_HEIGHT / 26)
        yield from _readings(smaller, "masked")
        yield from _readings(measured, "masked grey")
        yield from _readings(prepared(region, height * TARGET_CHAR_HEIGHT / 38), "masked", "masked grey")
        yield from _readings(smaller, "masked grey")
        for size in (29, 35):
            yield from _readings(prepared(region, height * TARGET_CHAR_HEIGHT / size), "masked")
    for band in bands[1:]:
        yield from _readings(prepared(band_crop(band), band.char_height / analysis_ratio), "masked")
    for share in (0.35, 0.25, 0.5):
        region = upright.crop((0, round(upright.height * (1 - share)), upright.width, upright.height))
        # without a band the characters are guessed from the width: a TD3 MRZ is ~44 characters, a TD1 ~30
        for height in [guess] if guess else [region.width / 50, region.width / 36]:
            yield from _readings(prepared(region, height), "masked", "plain")
    if bands:
        again = _prepare(band_crop(bands[0]), bands[0].char_height / analysis_ratio)
        if again is not None:
            yield from _readings(again, "plain")
            yield _Variant(again.binary(), _BASE_CONFIG, again.serial)  # no whitelist: mrz.clean sorts letters, digits


# --- tesseract --------------------------------------------------------------------------------------------------


def _ocr(image: Image.Image, config: str, deadline: float, *, boxes: bool = False) -> str | None:
    """Tesseract's text for the image (with `boxes`, a character and its box a line); '' when it fails on the image,
    None when the time is up."""
    remaining = deadline - time.monotonic()
    if remaining <= 0.2:
        return None
    try:
        read = pytesseract.image_to_boxes if boxes else pytesseract.image_to_string
        text = read(image, lang="eng", config=config, timeout=max(1.0, remaining))
    except RuntimeError as error:  # pytesseract's timeout
        if "timeout" in str(error).lower():
            return None
        raise
    except pytesseract.TesseractError:
        return ""
    return str(text)


def _read_mrz(text: str, today: date | None) -> Mrz | None:
    try:
        return mrz.read(text, today=today) if today is not None else mrz.read(text)
    except (mrz.MrzError, ValueError, IndexError):
        return None


def _plausible(found: Mrz) -> bool:
    """Whether a parse that fails checks is still worth returning: most checks pass and a date is real."""
    passed = sum(1 for ok in found.checks.values() if ok)
    return 2 * passed >= len(found.checks) and (found.birth_date is not None or found.expiry_date is not None)


def _score(found: Mrz) -> tuple[bool, int]:
    return found.valid, sum(1 for passed in found.checks.values() if passed)

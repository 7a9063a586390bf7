"""Band finding: the 2 or 3 evenly spaced, long lines of print near the bottom of a document that make its MRZ."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from core.mrz.prepare import binarize, resize, rotate, skew

ANALYSIS_SIZE = 1200  # px, the long side of the copy on which skew and the MRZ band are found

MRZ_WIDTHS = {44: 2, 36: 2, 30: 3}  # characters per line -> lines, for TD3 and MRV-A, TD2 and MRV-B, TD1

@dataclass(frozen=True)
class Line:
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
class Band:
    box: tuple[int, int, int, int]  # left, top, right, bottom in the analysed image
    char_height: float  # px in the analysed image
    score: float


def runs(mask: np.ndarray | np.bool_, gap: int) -> list[tuple[int, int]]:
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


def above_floor(profile: np.ndarray, window: int) -> np.ndarray:
    """A row profile less its running minimum: what lines of print add to a textured or noisy surrounding."""
    window = max(3, min(len(profile), window))
    padded = np.pad(profile, window // 2, mode="edge")
    floor = np.lib.stride_tricks.sliding_window_view(padded, window).min(axis=1)[: len(profile)]
    return np.asarray(profile - floor, dtype=np.float64)


def text_lines(dark: np.ndarray) -> list[Line]:
    """Rows dense in dark-light transitions, grouped into lines, each with the horizontal extent of its ink."""
    transitions = np.count_nonzero(dark[:, 1:] & ~dark[:, :-1], axis=1).astype(np.float64)
    if transitions.max(initial=0) < 8:
        return []
    raw = np.convolve(transitions, np.ones(3) / 3, mode="same")
    smooth = above_floor(raw, max(15, dark.shape[0] // 8))
    # a line of print stands well above its surrounding; the ups and downs of noise do not
    threshold = max(6.0, 0.3 * float(np.percentile(smooth, 99.5)), 0.3 * float(np.median(raw)))
    lines = []
    for top, bottom in runs(smooth >= threshold, gap=1):
        height = bottom - top
        if height < 4 or height > dark.shape[0] / 4:
            continue
        # the columns with more ink in the line than just above and below it: print, not background texture
        ink = dark[top:bottom].mean(axis=0)
        around = np.concatenate([dark[max(0, top - height) : top], dark[bottom : bottom + height]])
        surrounding = around.mean(axis=0) if len(around) else np.zeros_like(ink)
        spans = runs(ink - surrounding > 0.12, gap=max(2, int(height * 1.6)))
        if not spans:
            continue
        left, right = max(spans, key=lambda span: span[1] - span[0])
        lines.append(Line(top, bottom, left, right))
    return lines


def find_bands(dark: np.ndarray) -> list[Band]:
    """Groups of 2 or 3 lines that look like an MRZ, best first."""
    lines = text_lines(dark)
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
            fit = max(1 - abs(aspect - chars) / chars for chars, lines in MRZ_WIDTHS.items() if lines == count)
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
            bands.append(Band(box, mean_height, score))
    bands.sort(key=lambda band: -band.score)
    distinct: list[Band] = []
    for band in bands:
        if not any(overlap(band.box, other.box) > 0.6 for other in distinct):
            distinct.append(band)
    return distinct[:2]


def overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return width * height / max(1, smaller)


@dataclass
class Located:
    """The document turned upright and the bands that may be its MRZ, in the coordinates of a copy `ratio` times
    the size of `upright`."""

    upright: Image.Image
    ratio: float
    bands: list[Band] = field(default_factory=list)

    def crop(self, band: Band) -> Image.Image:
        return self.upright.crop(tuple(round(v / self.ratio) for v in band.box))  # type: ignore[arg-type]


def locate(grey: Image.Image) -> Located:
    """Estimate the skew of the text lines on a small copy, turn the image upright and find the MRZ bands."""
    if grey.width < 60 or grey.height < 20:
        return Located(grey, 1.0)
    ratio = min(1.0, ANALYSIS_SIZE / max(grey.size))
    small = resize(grey, ratio)
    feature = max(8.0, max(small.size) / 60)
    angle = skew(binarize(small, feature, denoise=True)[small.height * 2 // 5 :])
    return Located(rotate(grey, angle), ratio, find_bands(binarize(rotate(small, angle), feature, denoise=True)))


def stacked(lines: list[Image.Image], gap: float = 0.9) -> Image.Image:
    """Rectified lines of print one under the other, left aligned, as a band crop (the MRZ, straightened line by
    line when a photo's perspective tilts its lines differently)."""
    height = max(line.height for line in lines)
    width = max(line.width for line in lines)
    space = round(gap * height)
    fill = int(np.median(np.concatenate([np.asarray(line)[0] for line in lines])))
    band = Image.new("L", (width, len(lines) * height + (len(lines) + 1) * space), fill)
    for index, line in enumerate(lines):
        band.paste(line.resize((width, line.height)), (0, space + index * (height + space)))
    return band

"""Image preparation: decoding an upload safely, grey levels, contrast and lighting normalised, ink thresholded,
the text lines' skew found and rotated away."""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageFilter, ImageOps

MAX_PIXELS = 40_000_000  # larger images are not decoded (a JPEG is decoded reduced when it can be)
MAX_SKEW = 12.0  # degrees: phone photos are seldom straighter
WORK_SIZE = 4000  # px, the long side beyond which the image is reduced before cropping

ImageInput = str | os.PathLike[str] | bytes | IO[bytes] | Image.Image


def load_grey(source: ImageInput) -> Image.Image | None:
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
        grey = to_grey(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, MemoryError, EOFError):
        return None
    if max(grey.size) > WORK_SIZE:
        ratio = WORK_SIZE / max(grey.size)
        grey = grey.resize(
            (max(1, round(grey.width * ratio)), max(1, round(grey.height * ratio))), Image.Resampling.BOX
        )
    return grey


def to_grey(image: Image.Image) -> Image.Image:
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


def resize(image: Image.Image, factor: float) -> Image.Image:
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    if size == image.size:
        return image
    method = Image.Resampling.LANCZOS if factor < 1 else Image.Resampling.BICUBIC
    return image.resize(size, method)


def flatten(grey: Image.Image, feature: float) -> np.ndarray:
    """Divide out the lighting: the background is a blurred local maximum over windows a few times `feature` px."""
    k = max(1, int(feature))
    small = grey.resize((max(1, grey.width // k), max(1, grey.height // k)), Image.Resampling.BOX)
    background = small.filter(ImageFilter.MaxFilter(5)).filter(ImageFilter.GaussianBlur(1.5))
    background = background.resize(grey.size, Image.Resampling.BILINEAR)
    pixels = np.asarray(grey, dtype=np.float32)
    light = np.maximum(np.asarray(background, dtype=np.float32), 1.0)
    return np.clip(pixels * (255.0 / light), 0, 255).astype(np.uint8)


def otsu(pixels: np.ndarray) -> int:
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


def local_threshold(pixels: np.ndarray, window: int, k: float = 0.2) -> np.ndarray:
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


def binarize(grey: Image.Image, feature: float, denoise: bool) -> np.ndarray:
    """Dark pixels (True) of a grey image: contrast normalised, lighting flattened, then below both an Otsu threshold
    of the whole (no specks in light areas) and a local threshold (no shadow or dark surroundings as ink)."""
    grey = ImageOps.autocontrast(grey, cutoff=1)
    if denoise:
        grey = grey.filter(ImageFilter.MedianFilter(3))
    flat = flatten(grey, feature)
    return (flat <= otsu(flat)) & local_threshold(np.asarray(grey), int(feature * 2))


def skew(dark: np.ndarray) -> float:
    """The angle (degrees, counter-clockwise) of the text lines: the shear maximising the projection's variance."""
    ys, xs = np.nonzero(dark)
    if len(ys) < 50:
        return 0.0
    if len(ys) > 120_000:
        pick = np.random.default_rng(0).choice(len(ys), 120_000, replace=False)
        ys, xs = ys[pick], xs[pick]
    ys = ys.astype(np.float64)
    xs = xs.astype(np.float64)

    def sharpness(angle: float) -> float:
        projected = np.round(ys + xs * math.tan(math.radians(angle))).astype(np.int64)
        counts = np.bincount(projected - projected.min())
        return float(np.dot(counts, counts))

    coarse = max(np.arange(-MAX_SKEW, MAX_SKEW + 0.01, 0.5), key=sharpness)
    fine = max(np.arange(coarse - 0.4, coarse + 0.41, 0.1), key=sharpness)
    return float(round(fine, 2))


def rotate(grey: Image.Image, angle: float) -> Image.Image:
    if abs(angle) < 0.05:
        return grey
    border = np.concatenate([np.asarray(grey)[0], np.asarray(grey)[-1]])
    fill = int(np.median(border))
    return grey.rotate(-angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=fill)

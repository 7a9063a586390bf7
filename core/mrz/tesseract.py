"""Recognition with tesseract: the crops of the band (several scales, thresholded and grey, fillers masked) and
tesseract's LSTM on each, most promising first."""

from __future__ import annotations

import functools
import glob
import itertools
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytesseract  # type: ignore[import-untyped]
from PIL import Image, ImageOps

from core.mrz.bands import Band, Line, Located, text_lines
from core.mrz.glyphs import TARGET_CHAR_HEIGHT, Glyph, glyph_template, masked
from core.mrz.prepare import binarize, flatten, resize

MRZ_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<"
_BASE_CONFIG = "--oem 1 --psm 6 -c load_system_dawg=0 -c load_freq_dawg=0"
_WHITELIST_CONFIG = f"{_BASE_CONFIG} -c tessedit_char_whitelist={MRZ_ALPHABET}"
_LETTERS_CONFIG = f"{_BASE_CONFIG} -c tessedit_char_whitelist={MRZ_ALPHABET[:-1]}"


@dataclass(frozen=True)
class Variant:
    image: Image.Image
    config: str
    source: int  # the prepared crop it comes from: readings that corroborate each other come from different ones
    prepared: Prepared
    template: list[list[Glyph]] | None = None  # set on a masked image: its text needs the fillers put back
    dark: np.ndarray | None = None  # the thresholded band the template's glyphs are in


_serials = itertools.count()


@dataclass
class Prepared:
    """A crop of the document scaled to TARGET_CHAR_HEIGHT characters: what every recogniser reads."""

    dark: np.ndarray  # thresholded, dark = True, at TARGET_CHAR_HEIGHT
    grey: Image.Image  # the same, before thresholding
    template: list[list[Glyph]] | None
    lines: list[Line]  # its long lines of print
    serial: int = field(default_factory=lambda: next(_serials))

    def line_images(self) -> list[Image.Image]:
        """Each MRZ line (the template's, else the bottom-most long lines) cut from the grey crop, with a margin."""
        if self.template is not None:
            boxes = [
                (line[0].left, min(g.top for g in line), line[-1].right, max(g.bottom for g in line))
                for line in self.template
            ]
        else:
            boxes = [(line.left, line.top, line.right, line.bottom) for line in self.lines[-3:]]
        out = []
        for left, top, right, bottom in boxes:
            pad = max(4, (bottom - top) // 3)
            box = (max(0, left - pad), max(0, top - pad), min(self.grey.width, right + pad),
                   min(self.grey.height, bottom + pad))
            out.append(self.grey.crop(box))
        return out

    def binary(self) -> Image.Image:
        image = Image.fromarray(np.where(self.dark, 0, 255).astype(np.uint8), "L")
        return ImageOps.expand(image, border=TARGET_CHAR_HEIGHT, fill=255)

    def contrast(self) -> np.ndarray:
        flat = flatten(ImageOps.autocontrast(self.grey, cutoff=1), TARGET_CHAR_HEIGHT * 1.5)
        return np.asarray(ImageOps.autocontrast(Image.fromarray(flat, "L"), cutoff=0.5))


def prepare_crop(crop: Image.Image, char_height: float) -> Prepared | None:
    """The crop scaled to TARGET_CHAR_HEIGHT characters, normalised and thresholded; None if it holds no print."""
    factor = min(4.0, max(0.2, TARGET_CHAR_HEIGHT / max(char_height, 1.0)))
    scaled = resize(crop, factor)
    if scaled.width < 40 or scaled.height < 20:
        return None
    dark = binarize(scaled, TARGET_CHAR_HEIGHT * 1.5, denoise=True)
    share = float(dark.mean())
    if not 0.003 <= share <= 0.4:  # blank, or noise and solid areas rather than print
        return None
    glyphs = glyph_template(dark)
    lines = [line for line in text_lines(dark) if 0.4 * TARGET_CHAR_HEIGHT <= line.height <= 2 * TARGET_CHAR_HEIGHT]
    long_lines = [line for line in lines if line.width >= 8 * line.height]
    if glyphs is None and len(long_lines) < 2:
        return None  # no lines of print: noise, texture or a picture; tesseract would only take long on it
    return Prepared(dark, scaled, glyphs, long_lines)


def _readings(prepared: Prepared | None, *kinds: str) -> Iterator[Variant]:
    """Variants of one prepared crop: `masked` (letters and digits only, thresholded), `masked grey` (the same in
    grey levels), `plain` (the thresholded crop, fillers and all; also instead of `masked` when no MRZ glyphs were
    found)."""
    if prepared is None:
        return
    source = prepared.serial
    template, dark = prepared.template, prepared.dark
    for kind in kinds:
        if template is not None and kind == "masked":
            yield Variant(masked(dark, template), _LETTERS_CONFIG, source, prepared, template, dark)
        elif template is not None and kind == "masked grey":
            yield Variant(masked(prepared.contrast(), template), _LETTERS_CONFIG, source, prepared, template, dark)
        elif kind == "plain" or (template is None and kind == "masked"):
            yield Variant(prepared.binary(), _WHITELIST_CONFIG, source, prepared)


Rectified = Callable[[], list[tuple[Image.Image, float]]]  # band images straightened line by line, char heights


def variants(
    located: Located, found: list[list[list[Glyph]]], rectified: Rectified | None = None
) -> Iterator[Variant]:
    """Images for tesseract, most promising first, built lazily. Templates seen are appended to `found`.
    `rectified`, called at most once, gives bands the text detector found and straightened: tried after the
    found band's first two crops, or first when no band was found."""
    upright, analysis_ratio, bands = located.upright, located.ratio, located.bands
    if upright.width < 60 or upright.height < 20:
        return
    straightened: list[tuple[Image.Image, float]] | None = None

    def straight() -> Iterator[Variant]:
        nonlocal straightened
        if rectified is None or straightened is not None:
            return
        straightened = rectified()
        for image, height in straightened:
            measured = prepared(image, height)
            yield from _readings(measured, "masked")
            yield from _readings(prepared(image, height * TARGET_CHAR_HEIGHT / 26), "masked")
            yield from _readings(measured, "masked grey", "plain")

    def band_crop(band: Band) -> Image.Image:
        return upright.crop(tuple(round(v / analysis_ratio) for v in band.box))  # type: ignore[arg-type]

    def prepared(region: Image.Image, height: float) -> Prepared | None:
        result = prepare_crop(region, height)
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
        yield from straight()
        yield from _readings(measured, "masked grey")
        yield from _readings(prepared(region, height * TARGET_CHAR_HEIGHT / 38), "masked", "masked grey")
        yield from _readings(smaller, "masked grey")
        for size in (29, 35):
            yield from _readings(prepared(region, height * TARGET_CHAR_HEIGHT / size), "masked")
    yield from straight()
    for band in bands[1:]:
        yield from _readings(prepared(band_crop(band), band.char_height / analysis_ratio), "masked")
    for share in (0.35, 0.25, 0.5):
        region = upright.crop((0, round(upright.height * (1 - share)), upright.width, upright.height))
        # without a band the characters are guessed from the width: a TD3 MRZ is ~44 characters, a TD1 ~30
        for height in [guess] if guess else [region.width / 50, region.width / 36]:
            yield from _readings(prepared(region, height), "masked", "plain")
    if bands:
        again = prepare_crop(band_crop(bands[0]), bands[0].char_height / analysis_ratio)
        if again is not None:
            yield from _readings(again, "plain")
            # no whitelist: text.clean sorts letters and digits
            yield Variant(again.binary(), _BASE_CONFIG, again.serial, again)


# --- tesseract --------------------------------------------------------------------------------------------------
# In-process through tesserocr (its wheel carries libtesseract; the models are Debian's tesseract-ocr-eng) when it is
# installed: about 0.07 s a crop instead of 0.3 s for a `tesseract` process that loads the model each time. The
# command, through pytesseract, is the fallback.


@functools.cache
def _tessdata() -> str | None:
    prefix = os.environ.get("TESSDATA_PREFIX")
    if prefix and Path(prefix, "eng.traineddata").exists():
        return prefix
    found = sorted(glob.glob("/usr/share/tesseract-ocr/*/tessdata/eng.traineddata"))
    return str(Path(found[-1]).parent) if found else None


_apis: dict[str, Any] = {}
_api_lock = threading.Lock()


def _api(config: str) -> Any | None:
    """A tesseract engine set up for `config` (one per configuration, kept for the process)."""
    if config in _apis:
        return _apis[config]
    try:
        import tesserocr  # type: ignore[import-untyped]
    except ImportError:
        _apis[config] = None
        return None
    tessdata = _tessdata()
    if tessdata is None:
        _apis[config] = None
        return None
    api = tesserocr.PyTessBaseAPI(
        path=tessdata, lang="eng", psm=tesserocr.PSM.SINGLE_BLOCK, oem=tesserocr.OEM.LSTM_ONLY
    )
    for name, value in re.findall(r"-c (\w+)=(\S+)", config):
        api.SetVariable(name, value)
    _apis[config] = api
    return api


def in_process() -> bool:
    return _api(_BASE_CONFIG) is not None


def ocr(image: Image.Image, config: str, deadline: float, *, boxes: bool = False) -> str | None:
    """Tesseract's text for the image (with `boxes`, a character and its box a line); '' when it fails on the image,
    None when the time is up."""
    remaining = deadline - time.monotonic()
    if remaining <= 0.2:
        return None
    api = _api(config)
    if api is not None:
        with _api_lock:
            api.SetImage(image)
            if not api.Recognize(timeout=max(1000, int(remaining * 1000))):
                return None if time.monotonic() >= deadline else ""
            return str(api.GetBoxText(0) if boxes else api.GetUTF8Text())
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


def looks_like_mrz(band: Image.Image, char_height: float) -> bool:
    """Whether a candidate band's glyphs stand on an MRZ's grid: 2 or 3 lines of 30, 36 or 44 glyphs at one fixed
    pitch. For choosing among the lines a text detector found on a busy photo, without reading them."""
    prepared = prepare_crop(band, char_height)
    return prepared is not None and prepared.template is not None

"""The second recogniser: RapidOCR's PP-OCRv4 text detection and recognition models (ONNX, shipped inside the
`rapidocr-onnxruntime` wheel, run on one thread). It reads a whole MRZ line, fillers included, in about 0.1 s,
independently of tesseract: where the two agree character for character, neither is guessing.

`available()` is False when the package is not installed; the reader then works with tesseract alone (and no
reading verifies on one recogniser's word: see `core.mrz.reader`).
"""

from __future__ import annotations

import functools
import logging
import re
from typing import Any

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)
DETECTION_SIZE = 960  # px, the long side of the copy the text detector looks at
LINE_HEIGHT = 48  # px, the recogniser's input height
_NOT_MRZ = re.compile(r"[^A-Z0-9<]")


@functools.cache
def _engine() -> Any | None:
    try:
        from rapidocr_onnxruntime import RapidOCR  # type: ignore[import-untyped]
    except ImportError:
        return None
    logging.getLogger("RapidOCR").setLevel(logging.WARNING)
    return RapidOCR(
        intra_op_num_threads=1,
        inter_op_num_threads=1,
        det_limit_type="max",
        det_limit_side_len=DETECTION_SIZE,
        use_cls=False,
    )


def available() -> bool:
    return _engine() is not None


def _rgb(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


def mrz_text(raw: str) -> str:
    """A recognised line as MRZ characters: upper case, spaces gone, the chevron's look-alikes made fillers."""
    line = raw.upper().replace(" ", "").replace("«", "<<").replace("‹", "<").replace("＜", "<")
    return _NOT_MRZ.sub("", line)


def read_lines(lines: list[Image.Image]) -> list[tuple[str, float]]:
    """Each image of one line of print read as MRZ text, with the recogniser's confidence (0..1)."""
    engine = _engine()
    if engine is None or not lines:
        return []
    crops = []
    for line in lines:
        scale = LINE_HEIGHT / max(1, line.height)
        size = (max(1, round(line.width * scale)), LINE_HEIGHT)
        crops.append(_rgb(line.resize(size, Image.Resampling.BICUBIC if scale > 1 else Image.Resampling.LANCZOS)))
    results, _ = engine.text_rec(crops)
    return [(mrz_text(text), float(confidence)) for text, confidence in results]


Box = tuple[int, int, int, int]
Quad = np.ndarray  # 4 x 2 corners (top left, top right, bottom right, bottom left), image coordinates


def find_lines(image: Image.Image) -> list[Quad]:
    """The corners of the long, thin lines of text the detector finds, top to bottom: where an MRZ may be when the
    band finder sees none (a busy surrounding), and how each line is tilted (a photo taken at an angle)."""
    engine = _engine()
    if engine is None:
        return []
    ratio = min(1.0, DETECTION_SIZE / max(image.size))
    small = image if ratio == 1.0 else image.resize(
        (max(1, round(image.width * ratio)), max(1, round(image.height * ratio))), Image.Resampling.BOX
    )
    boxes, _ = engine.text_det(_rgb(small))
    found: list[Quad] = []
    for points in [] if boxes is None else boxes:
        quad = np.asarray(points, dtype=np.float32) / ratio
        width = float(np.linalg.norm(quad[1] - quad[0]))
        height = float(np.linalg.norm(quad[3] - quad[0]))
        if width >= 12 * max(1.0, height):
            found.append(quad)
    return sorted(found, key=lambda quad: float(quad[:, 1].mean()))


def rectified(image: Image.Image, quad: Quad, *, grow: float = 0.25) -> Image.Image:
    """The line inside `quad` warped to an upright rectangle, with a little more of the page above and below."""
    import cv2  # type: ignore[import-not-found]  # comes with rapidocr-onnxruntime

    top_left, top_right, bottom_right, bottom_left = quad
    down = (bottom_left - top_left + bottom_right - top_right) / 2
    along = (top_right - top_left + bottom_right - bottom_left) / 2
    source = np.array(
        [
            top_left - grow * down - 0.02 * along,
            top_right - grow * down + 0.02 * along,
            bottom_right + grow * down + 0.02 * along,
            bottom_left + grow * down - 0.02 * along,
        ],
        dtype=np.float32,
    )
    width = max(8, round(float(np.linalg.norm(source[1] - source[0]))))
    height = max(8, round(float(np.linalg.norm(source[3] - source[0]))))
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(source, target)
    pixels = np.asarray(image.convert("L"))
    warped = cv2.warpPerspective(
        pixels, matrix, (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
    )
    return Image.fromarray(warped, "L")


def read_page(image: Image.Image) -> list[str]:
    """Every long line of text on a page, top to bottom, as MRZ text (the whole-page reader the bench compares)."""
    quads = find_lines(image)
    texts = read_lines([rectified(image, quad, grow=0.1) for quad in quads])
    return [text for text, _ in texts]

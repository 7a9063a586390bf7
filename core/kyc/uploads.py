"""Judging an uploaded image by its content: PNG or JPEG, bounded in bytes and pixels, fully decodable.

The stored copy is re-encoded from the decoded pixels, so trailing data (polyglots) and metadata never
reach the disk, and the name on disk is generated, never the user's. Stored files whose transaction did not commit
are removed again (remove_uploads)."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import BankqError, ValidationFailed

log = logging.getLogger(__name__)
MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000
FORMATS = {"PNG": ("image/png", "png"), "JPEG": ("image/jpeg", "jpg")}


class TooLarge(BankqError):
    status, code, title = 413, "payload_too_large", "Payload too large"


class UnsupportedMedia(BankqError):
    status, code, title = 415, "unsupported_media_type", "Unsupported media type"


@dataclass(frozen=True)
class CheckedImage:
    content: bytes
    content_type: str
    extension: str
    width: int
    height: int
    sha256: str
    original_size: int


def check_image(data: bytes) -> CheckedImage:
    if not data:
        raise ValidationFailed("The file is empty.", code="empty_file", errors={"file": ["The file is empty."]})
    if len(data) > MAX_BYTES:
        raise TooLarge(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB.", code="file_too_large")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(io.BytesIO(data), formats=list(FORMATS))
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise TooLarge(f"The image has more than {MAX_PIXELS // 1_000_000} megapixels.", code="image_too_large")
            fmt = image.format or ""
            image.load()
            image = ImageOps.exif_transpose(image)
    except BankqError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise TooLarge(
            f"The image has more than {MAX_PIXELS // 1_000_000} megapixels.", code="image_too_large"
        ) from exc
    except UnidentifiedImageError as exc:
        raise UnsupportedMedia("The file is not a PNG or JPEG image.", code="unsupported_image") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise UnsupportedMedia("The file is not a valid image (truncated or corrupt).", code="invalid_image") from exc
    content_type, extension = FORMATS[fmt]
    if image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    out = io.BytesIO()
    if fmt == "PNG":
        image.save(out, "PNG", optimize=False)
    else:
        image.save(out, "JPEG", quality=95)
    return CheckedImage(
        out.getvalue(), content_type, extension, image.width, image.height, hashlib.sha256(data).hexdigest(), len(data)
    )


def store_upload(path: Path, content: bytes) -> Path:
    """Owner-only from the first byte, and on disk before the transaction that records it commits."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def remove_uploads(paths: list[Path]) -> None:
    """Files of uploads whose transaction rolled back: no row points at them."""
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError:
            log.warning("kyc: could not remove the orphan upload %s", path, exc_info=True)

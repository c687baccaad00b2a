"""Photos (pets' photos, images attached to messages): what may be uploaded, and what is kept of it
(no I/O).

Every upload is decoded and drawn again: the stored JPEG holds pixels only — no EXIF (so no GPS
position, camera or time), no ICC trickery, no polyglot payload — at most 2048 px on its long side,
turned upright by its EXIF orientation first, with a 320 px thumbnail. Anything Pillow cannot decode
in full, or that would decode to more pixels than a photo has, is refused.
"""

from __future__ import annotations

import functools
import hashlib
import io
import warnings
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

MAX_PHOTO_BYTES = 8 * 1024 * 1024
MAX_PIXELS = 50_000_000  # a 50-megapixel phone photo; more is a decompression bomb here
FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "HEIF": "image/heic"}
LONG_SIDE = 2048
THUMBNAIL_SIDE = 320


class PhotoRejected(ValueError):
    """The upload is not a photo the portal keeps; the message says why."""


class PhotoTooLarge(PhotoRejected):
    pass


class PhotoTypeRefused(PhotoRejected):
    pass


@dataclass(frozen=True)
class Photo:
    jpeg: bytes
    thumbnail: bytes
    width: int
    height: int

    @property
    def etag(self) -> str:
        return hashlib.sha256(self.jpeg).hexdigest()[:32]


@functools.cache
def _pillow() -> tuple[ModuleType, ModuleType]:
    """Pillow with HEIC support, imported by the first photo (7 MB a process that never gets one
    does without)."""
    from PIL import Image, ImageOps
    from pillow_heif import register_heif_opener

    register_heif_opener()
    return Image, ImageOps


def process_photo(data: bytes) -> Photo:
    """The photo as the portal keeps it; `PhotoRejected` (with the reason) otherwise."""
    Image, ImageOps = _pillow()
    if len(data) > MAX_PHOTO_BYTES:
        raise PhotoTooLarge(f"a photo may be at most {MAX_PHOTO_BYTES // (1024 * 1024)} MB")
    if not data:
        raise PhotoRejected("the photo is empty")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=tuple(FORMATS)) as image:
                if image.width * image.height > MAX_PIXELS:
                    raise PhotoTooLarge(f"a photo may have at most {MAX_PIXELS // 1_000_000} megapixels")
                image.load()
                upright = ImageOps.exif_transpose(image)
                rgb = upright.convert("RGB")
        except Image.UnidentifiedImageError:
            raise PhotoTypeRefused("the photo must be a JPEG, PNG, WebP or HEIC image") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise PhotoTooLarge(f"a photo may have at most {MAX_PIXELS // 1_000_000} megapixels") from None
        except (OSError, ValueError, SyntaxError, EOFError):
            raise PhotoRejected("the photo could not be read: the file is damaged or incomplete") from None
    rgb.thumbnail((LONG_SIDE, LONG_SIDE))
    thumbnail = rgb.copy()
    thumbnail.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    return Photo(_jpeg(rgb, 85), _jpeg(thumbnail, 80), rgb.width, rgb.height)


def _jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality, optimize=True)  # no exif= : nothing carried over
    return out.getvalue()

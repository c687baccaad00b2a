"""What is kept of an uploaded photo: pixels only, upright, bounded; anything else is refused."""

from __future__ import annotations

import io
import struct
import zlib

import pillow_heif
import pytest
from PIL import Image

from petportal_runtime.photos import (
    MAX_PHOTO_BYTES,
    PhotoRejected,
    PhotoTooLarge,
    PhotoTypeRefused,
    process_photo,
)

pytestmark = pytest.mark.unit

GPS_IFD = 0x8825


def jpeg_with_gps(size: tuple[int, int] = (1200, 800), orientation: int = 1) -> bytes:
    image = Image.new("RGB", size, (200, 120, 40))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0112] = orientation
    exif[GPS_IFD] = {1: "N", 2: (51.0, 30.0, 0.0), 3: "W", 4: (0.0, 7.0, 0.0)}
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    return out.getvalue()


def test_a_photo_with_a_gps_position_comes_back_without_any_exif() -> None:
    original = jpeg_with_gps()
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(GPS_IFD)  # the upload has one
    photo = process_photo(original)
    for kept in (photo.jpeg, photo.thumbnail):
        image = Image.open(io.BytesIO(kept))
        assert image.format == "JPEG"
        assert dict(image.getexif()) == {}
        assert b"PhoneMaker" not in kept
    assert (photo.width, photo.height) == (1200, 800)
    assert max(Image.open(io.BytesIO(photo.thumbnail)).size) == 320


def test_a_photo_is_turned_upright_and_bounded() -> None:
    photo = process_photo(jpeg_with_gps((3000, 1000), orientation=6))  # rotated 90° by the camera
    assert (photo.width, photo.height) == (683, 2048)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_png_and_webp_are_accepted(fmt: str) -> None:
    out = io.BytesIO()
    Image.new("RGBA", (40, 30), (0, 0, 255, 128)).save(out, format=fmt)
    assert Image.open(io.BytesIO(process_photo(out.getvalue()).jpeg)).size == (40, 30)


def test_heic_from_a_phone_is_accepted() -> None:
    out = io.BytesIO()
    pillow_heif.from_pillow(Image.new("RGB", (64, 48), "green")).save(out, format="HEIF")
    assert process_photo(out.getvalue()).width == 64


def _png_header_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge image: a decompression bomb's first bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    data = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    idat = zlib.compress(b"\x00" * 100)
    data += struct.pack(">I", len(idat)) + b"IDAT" + idat + struct.pack(">I", zlib.crc32(b"IDAT" + idat))
    return data + struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (_png_header_claiming(60_000, 60_000), PhotoTooLarge),
        (b"x" * (MAX_PHOTO_BYTES + 1), PhotoTooLarge),
        (b"GIF89a" + b"\x00" * 40, PhotoTypeRefused),
        (b"%PDF-1.7 not a photo", PhotoTypeRefused),
        (jpeg_with_gps()[:600], PhotoRejected),  # cut off
        (b"", PhotoRejected),
    ],
)
def test_bombs_oversize_other_types_and_damaged_files_are_refused(
    data: bytes, error: type[Exception]
) -> None:
    with pytest.raises(error):
        process_photo(data)

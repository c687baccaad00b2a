"""Photos over HTTP, one way for every service that takes them (pets' photos, images in messages):
the raw image as the request body, a JPEG back with its ETag."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import HTTPException, Request, Response, status

from .errors import ErrorStatuses
from .photos import MAX_PHOTO_BYTES, Photo, PhotoRejected, PhotoTooLarge, PhotoTypeRefused, process_photo

PHOTO_TYPES = ("image/jpeg", "image/png", "image/webp", "image/heic", "image/heif")
UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in PHOTO_TYPES},
    }
}
UPLOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"description": f"over {MAX_PHOTO_BYTES // (1024 * 1024)} MB or 50 megapixels"},
    415: {"description": "not a JPEG, PNG, WebP or HEIC image"},
    422: {"description": "a damaged or unreadable image"},
}
JPEG_ANSWER: dict[int | str, dict[str, Any]] = {200: {"content": {"image/jpeg": {}}}, 304: {}}
# Domain errors of an upload, answered over HTTP (add to a service's ERRORS).
PHOTO_ERRORS: ErrorStatuses = {
    PhotoTooLarge: status.HTTP_413_CONTENT_TOO_LARGE,
    PhotoTypeRefused: status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
    PhotoRejected: status.HTTP_422_UNPROCESSABLE_CONTENT,
}


async def photo_body(request: Request) -> bytes:
    """The image the request carries, as sent; 415 for a body that does not say it is an image."""
    media_type = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if media_type not in PHOTO_TYPES:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            "send the photo as image/jpeg, image/png, image/webp or image/heic",
        )
    return await request.body()


async def uploaded_photo(request: Request) -> Photo:
    """The image the request carries, decoded and re-encoded (off the event loop); `PhotoRejected`
    for one that is not a usable photo."""
    return await asyncio.to_thread(process_photo, await photo_body(request))


def jpeg_response(request: Request, data: bytes, etag: str) -> Response:
    """The JPEG, or 304 when the client has it already."""
    headers = {"ETag": f'"{etag}"', "Cache-Control": "private, max-age=300"}
    if request.headers.get("if-none-match") == headers["ETag"]:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(data, media_type="image/jpeg", headers=headers)

"""Photos in the conversation: a parent's photo is kept re-encoded without its EXIF data (no GPS
position), staff see it (and send one), nobody else reaches it; bad uploads get the reason, not a 500."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from petportal_schemas import ClientMessageSent

from .conftest import Messaging

pytestmark = pytest.mark.integration


def jpeg_with_gps() -> bytes:
    image = Image.new("RGB", (1200, 900), (30, 140, 90))
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0), 3: "W", 4: (0.0, 7.0, 0.0)}  # GPSInfo
    exif[0x010F] = "PhoneMaker"
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


async def test_a_parents_photo_reaches_staff_without_its_gps_position(messaging: Messaging) -> None:
    m = messaging
    await m.add_client("k1")
    await m.add_client("k2")
    original = jpeg_with_gps()
    assert Image.open(io.BytesIO(original)).getexif().get(0x8825) is not None
    sent = await m.http.post(
        "/api/v1/conversation/messages/photo?caption=Rex%27s%20rash",
        content=original,
        headers={**m.parent("k1"), "content-type": "image/jpeg"},
    )
    assert sent.status_code == 201, sent.text
    message_id = sent.json()["message_id"]
    conversation_id = sent.json()["conversation_id"]

    view = (await m.http.get("/api/v1/conversation", headers=m.parent("k1"))).json()
    [message] = view["messages"]
    assert (message["body"], message["has_photo"]) == ("Rex's rash", True)

    photo = await m.http.get(f"/api/v1/conversation/messages/{message_id}/photo", headers=m.parent("k1"))
    assert (photo.status_code, photo.headers["content-type"]) == (200, "image/jpeg")
    kept = Image.open(io.BytesIO(photo.content))
    assert dict(kept.getexif()) == {}  # no GPS, no camera
    assert kept.size == (1200, 900)
    again = await m.http.get(
        f"/api/v1/conversation/messages/{message_id}/photo",
        headers={**m.parent("k1"), "if-none-match": photo.headers["etag"]},
    )
    assert again.status_code == 304
    thumb = await m.http.get(
        f"/api/v1/conversation/messages/{message_id}/photo?size=thumbnail", headers=m.parent("k1")
    )
    assert max(Image.open(io.BytesIO(thumb.content)).size) == 320

    staff = await m.http.get(
        f"/clinic/v1/conversations/{conversation_id}/messages/{message_id}/photo", headers=m.staff()
    )
    assert staff.content == photo.content
    # Another parent, another clinic's staff: nothing.
    assert (
        await m.http.get(f"/api/v1/conversation/messages/{message_id}/photo", headers=m.parent("k2"))
    ).status_code == 404
    assert (
        await m.http.get(
            f"/clinic/v1/conversations/{conversation_id}/messages/{message_id}/photo",
            headers=m.staff("other-clinic"),
        )
    ).status_code == 404
    [(_, event)] = [
        (e, ev)
        for e, ev in await m.published("ClientMessageSent", 1)
        if str(ev.message_id) == message_id  # type: ignore[attr-defined]
    ]
    assert isinstance(event, ClientMessageSent)

    # Staff answer with a photo of their own; the parent sees it.
    reply = await m.http.post(
        "/clinic/v1/clients/k1/messages/photo",
        content=original,
        headers={**m.staff(), "content-type": "image/jpeg"},
    )
    assert reply.status_code == 201, reply.text
    view = (await m.http.get("/api/v1/conversation", headers=m.parent("k1"))).json()
    assert [(x["sender"], x["body"], x["has_photo"]) for x in view["messages"]] == [
        ("client", "Rex's rash", True),
        ("staff", "Photo", True),
    ]


@pytest.mark.parametrize(
    ("content", "media_type", "status"),
    [
        (b"hello", "text/plain", 415),
        (b"not an image at all", "image/png", 415),
        (jpeg_with_gps()[:5000], "image/jpeg", 422),  # cut short: damaged
    ],
)
async def test_bad_uploads_get_the_reason_and_store_nothing(
    messaging: Messaging, content: bytes, media_type: str, status: int
) -> None:
    m = messaging
    await m.add_client("k1")
    response = await m.http.post(
        "/api/v1/conversation/messages/photo",
        content=content,
        headers={**m.parent("k1"), "content-type": media_type},
    )
    assert response.status_code == status, response.text
    view = (await m.http.get("/api/v1/conversation", headers=m.parent("k1"))).json()
    assert view["messages"] == []
    caption = await m.http.post(
        "/api/v1/conversation/messages/photo?caption=%00",
        content=jpeg_with_gps(),
        headers={**m.parent("k1"), "content-type": "image/jpeg"},
    )
    assert caption.status_code == 422


async def test_a_photo_over_8_mb_is_413_while_text_bodies_keep_their_small_limit(
    messaging: Messaging,
) -> None:
    m = messaging
    await m.add_client("k1")
    huge = await m.http.post(
        "/api/v1/conversation/messages/photo",
        content=b"\xff" * (9 * 1024 * 1024),
        headers={**m.parent("k1"), "content-type": "image/jpeg"},
    )
    assert huge.status_code == 413
    big_json = await m.http.post(
        "/api/v1/conversation/messages",
        content=b'{"body": "' + b"x" * 70_000 + b'"}',
        headers={**m.parent("k1"), "content-type": "application/json"},
    )
    assert big_json.status_code == 413

"""The local delivery sinks for real: mail sent over SMTP lands in a Maildir, the `twilio` library talks
to the SMS sink as to api.twilio.com, status callbacks are signed as Twilio signs them, and the CLI
`make run` starts serves both and stops on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import mailbox
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx
import pytest
from fastapi import FastAPI, Request
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.rest.api.v2010.account.message import MessageInstance

from petportal_devkit.devinfra import free_port
from petportal_devkit.sinks import DevMailbox, create_sms_sink
from petportal_devkit.testing import app_client, eventually, serve

pytestmark = pytest.mark.integration

SID = "AC" + "1" * 32
TOKEN = "sink-test-auth-token"
SENDER = "+15005550006"
API = f"/2010-04-01/Accounts/{SID}"


def _mail(to: str, subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "clinic@example.com"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content("Rabies booster is due.")
    return msg


@dataclass
class Sms:
    app: FastAPI
    url: str
    store: Path

    def twilio(self, sid: str = SID, token: str = TOKEN) -> Client:
        """The real twilio client, sending to this sink instead of api.twilio.com."""
        client = Client(sid, token)
        client.api.base_url = self.url
        return client

    def http(self, sid: str = SID, token: str = TOKEN) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, auth=(sid, token), timeout=10)


@pytest.fixture
async def sms(tmp_path: Path) -> AsyncIterator[Sms]:
    store = tmp_path / "sms" / "sms.jsonl"  # its directory does not exist yet
    app = create_sms_sink(store, account_sid=SID, auth_token=TOKEN)
    async with serve(app) as url:
        yield Sms(app, url, store)


async def _send(sms: Sms, to: str, body: str = "See you Tuesday", **kwargs: Any) -> MessageInstance:
    return await asyncio.to_thread(sms.twilio().messages.create, to=to, from_=SENDER, body=body, **kwargs)


async def _refused(sms: Sms, to: str, **kwargs: Any) -> TwilioRestException:
    with pytest.raises(TwilioRestException) as caught:
        await _send(sms, to, **kwargs)
    return caught.value


# SMTP


async def test_a_mail_sent_over_smtp_is_kept_in_a_maildir(tmp_path: Path) -> None:
    with DevMailbox(tmp_path / "mail") as box:  # port 0: a free one
        assert box.port > 0
        await aiosmtplib.send(_mail("ada@example.com", "First"), hostname="127.0.0.1", port=box.port)
        await aiosmtplib.send(_mail("bob@example.com", "Second"), hostname="127.0.0.1", port=box.port)

        assert [(m["To"], m["Subject"]) for m in box.messages()] == [
            ("ada@example.com", "First"),
            ("bob@example.com", "Second"),
        ]
        assert box.messages()[0].get_content().strip() == "Rabies booster is due."
        # Any mail client reads it: the stdlib's Maildir, opened on its own.
        independent = mailbox.Maildir(tmp_path / "mail", create=False)
        assert sorted(str(m["Subject"]) for m in independent) == ["First", "Second"]
    assert DevMailbox.read(tmp_path / "mail")[1]["Subject"] == "Second"  # still there once stopped


async def test_a_recipient_without_an_at_sign_is_refused(tmp_path: Path) -> None:
    with DevMailbox(tmp_path / "mail") as box:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=box.port)
        async with smtp:
            await smtp.mail("clinic@example.com")
            with pytest.raises(aiosmtplib.SMTPRecipientRefused) as refused:
                await smtp.rcpt("nobody")
            assert refused.value.code == 553
            await smtp.rset()
            with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
                await smtp.sendmail("clinic@example.com", ["nobody"], b"Subject: x\r\n\r\nx\r\n")
        assert box.messages() == []


# SMS: sending


async def test_the_twilio_client_sends_through_the_sink(sms: Sms) -> None:
    message = await _send(sms, "+15551230001", body="x" * 161)

    assert message.sid is not None
    assert message.sid.startswith("SM")
    assert len(message.sid) == 34
    assert message.account_sid == SID
    assert (message.to, message.from_, message.body) == ("+15551230001", SENDER, "x" * 161)
    assert message.status == MessageInstance.Status.QUEUED
    assert message.direction == MessageInstance.Direction.OUTBOUND_API
    assert (message.num_segments, message.num_media, message.api_version) == ("2", "0", "2010-04-01")
    assert message.date_created is not None  # RFC 2822, parsed by the library
    assert message.date_created.tzinfo is not None
    assert message.date_sent is None
    assert message.price is None
    assert message.error_code is None
    assert message.uri == f"{API}/Messages/{message.sid}.json"
    assert message.subresource_uris == {"media": f"{API}/Messages/{message.sid}/Media.json"}

    [line] = sms.store.read_text().splitlines()
    assert json.loads(line)["sid"] == message.sid
    assert [m["sid"] for m in sms.app.state.messages] == [message.sid]


@pytest.mark.parametrize(
    ("length", "segments"), [(1, "1"), (160, "1"), (161, "2"), (306, "2"), (307, "3"), (1600, "11")]
)
async def test_segments_are_counted_as_twilio_counts_them(sms: Sms, length: int, segments: str) -> None:
    async with sms.http() as http:
        response = await http.post(
            f"{API}/Messages.json", data={"To": "+15551230002", "From": SENDER, "Body": "y" * length}
        )
    assert response.status_code == 201
    assert response.json()["num_segments"] == segments


async def test_wrong_credentials_are_refused_as_twilio_refuses_them(sms: Sms) -> None:
    unauthorised = {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }
    for sid, token in [(SID, "not-the-token"), ("AC" + "2" * 32, TOKEN)]:
        with pytest.raises(TwilioRestException) as caught:
            await asyncio.to_thread(
                sms.twilio(sid, token).messages.create, to="+15551230003", from_=SENDER, body="hi"
            )
        assert (caught.value.status, caught.value.code) == (401, 20003)
    async with httpx.AsyncClient(base_url=sms.url) as http:
        response = await http.post(f"{API}/Messages.json", data={"To": "+15551230003", "From": SENDER})
        assert (response.status_code, response.json()) == (401, unauthorised)
        response = await http.get(f"{API}/Messages.json", headers={b"Authorization": "Basic ✓".encode()})
        assert response.status_code == 401
    # The right token on another account's path is no better.
    async with sms.http() as http:
        response = await http.get(f"/2010-04-01/Accounts/AC{'2' * 32}/Messages.json")
        assert response.status_code == 401
    assert sms.app.state.messages == []


async def test_invalid_requests_get_twilios_error_codes(sms: Sms) -> None:
    invalid = await _refused(sms, "555-0100")
    assert (invalid.status, invalid.code) == (400, 21211)
    assert invalid.msg.endswith("Invalid 'To' Phone Number")
    assert (await _refused(sms, "+15005550001")).code == 21211  # Twilio's magic invalid number
    unsubscribed = await _refused(sms, "+15005550004")
    assert (unsubscribed.status, unsubscribed.code) == (400, 21610)

    async with sms.http() as http:
        for form, code in [
            ({"To": "+15551230004", "Body": "hi"}, 21603),
            ({"To": "+15551230004", "From": "", "Body": "hi"}, 21603),
            ({"To": "+15551230004", "From": SENDER, "Body": ""}, 21602),
            ({"To": "+15551230004", "From": SENDER}, 21602),
            ({"To": "+15551230004", "From": SENDER, "Body": "z" * 1601}, 21617),
            ({"To": "+0123456789", "From": SENDER, "Body": "hi"}, 21211),
        ]:
            response = await http.post(f"{API}/Messages.json", data=form)
            assert (response.status_code, response.json()["code"]) == (400, code), form
            assert response.json()["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    assert sms.app.state.messages == []
    assert not sms.store.exists()


async def test_an_injected_outage_fails_the_next_sends_then_recovers(sms: Sms) -> None:
    sms.app.state.fail_next = 2
    for _ in range(2):
        outage = await _refused(sms, "+15551230005")
        assert (outage.status, outage.code) == (503, 20500)
    assert sms.app.state.messages == []
    assert (await _send(sms, "+15551230005")).status == "queued"

    # From another process: POST /_sink/fail.
    async with httpx.AsyncClient(base_url=sms.url) as http:
        response = await http.post("/_sink/fail", json={"count": 1, "status": 500})
        assert response.status_code == 200
        assert (await http.post("/_sink/fail", json={"count": -1})).status_code == 422
    outage = await _refused(sms, "+15551230005")
    assert (outage.status, outage.code) == (500, 20500)
    await _send(sms, "+15551230005")
    assert len(sms.app.state.messages) == 2


# SMS: reading back


async def test_messages_are_listed_newest_first_and_fetched_by_sid(sms: Sms) -> None:
    first = await _send(sms, "+15551230006", body="one")
    await _send(sms, "+15551230007", body="two")
    third = await _send(sms, "+15551230006", body="three")
    client = sms.twilio()

    listed = await asyncio.to_thread(client.messages.list, to="+15551230006")
    assert [m.body for m in listed] == ["three", "one"]
    assert [m.sid for m in await asyncio.to_thread(client.messages.list, limit=1)] == [third.sid]
    fetched = await asyncio.to_thread(client.messages(first.sid).fetch)
    assert (fetched.sid, fetched.body, fetched.to) == (first.sid, "one", "+15551230006")

    with pytest.raises(TwilioRestException) as missing:
        await asyncio.to_thread(client.messages("SM" + "0" * 32).fetch)
    assert (missing.value.status, missing.value.code) == (404, 20404)

    async with sms.http() as http:
        page = (await http.get(f"{API}/Messages.json", params={"From": SENDER, "PageSize": 2})).json()
    assert [m["body"] for m in page["messages"]] == ["three", "two"]
    assert (page["page"], page["page_size"], page["start"], page["end"]) == (0, 2, 0, 1)
    assert page["next_page_uri"] is None
    assert page["previous_page_uri"] is None
    assert page["uri"] == f"{API}/Messages.json"
    assert page["first_page_uri"].startswith(f"{API}/Messages.json")


async def test_a_restarted_sink_still_lists_earlier_messages(sms: Sms) -> None:
    sent = await _send(sms, "+15551230008", body="before the restart")

    again = create_sms_sink(sms.store, account_sid=SID, auth_token=TOKEN)
    async with app_client(again) as http:
        response = await http.get(f"{API}/Messages.json", auth=(SID, TOKEN))
        assert [m["sid"] for m in response.json()["messages"]] == [sent.sid]
        response = await http.get(f"{API}/Messages/{sent.sid}.json", auth=(SID, TOKEN))
        assert response.json()["body"] == "before the restart"


# SMS: status callbacks


async def test_status_callbacks_are_posted_and_signed_as_twilio_signs_them(sms: Sms) -> None:
    received: list[tuple[dict[str, str], str]] = []
    receiver = FastAPI()

    @receiver.post("/webhooks/sms/status")
    async def status(request: Request) -> dict[str, bool]:
        form = await request.form()
        received.append(({k: str(v) for k, v in form.items()}, request.headers["X-Twilio-Signature"]))
        return {"ok": True}

    async with serve(receiver) as receiver_url:
        url = f"{receiver_url}/webhooks/sms/status"
        message = await _send(sms, "+15551230009", status_callback=url)

        async def both() -> bool:
            return len(received) >= 2

        await eventually(both, within=10)

    assert [form["MessageStatus"] for form, _ in received] == ["sent", "delivered"]
    validator = RequestValidator(TOKEN)
    for form, signature in received:
        assert validator.validate(url, form, signature)
        assert not RequestValidator("another-token").validate(url, form, signature)
        assert form["MessageSid"] == form["SmsSid"] == message.sid
        assert (form["AccountSid"], form["From"], form["To"]) == (SID, SENDER, "+15551230009")
        assert form["ApiVersion"] == "2010-04-01"

    fetched = await asyncio.to_thread(sms.twilio().messages(message.sid).fetch)
    assert fetched.status == MessageInstance.Status.DELIVERED
    assert fetched.date_sent is not None


async def test_an_unreachable_status_callback_changes_nothing(sms: Sms) -> None:
    url = f"http://127.0.0.1:{free_port()}/status"  # nothing listens there
    message = await _send(sms, "+15551230010", status_callback=url)

    async def delivered() -> bool:
        return bool(sms.app.state.messages[0]["status"] == "delivered")

    await eventually(delivered, within=10)  # the attempts were made, their errors swallowed
    assert (await _send(sms, "+15551230010")).sid != message.sid


# The CLI `make run` starts


async def test_the_cli_serves_both_sinks_and_stops_on_sigterm(tmp_path: Path) -> None:
    data = tmp_path / "dev"
    smtp_port, sms_port = free_port(), free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "petportal_devkit.sinks",
        "--smtp-port",
        str(smtp_port),
        "--sms-port",
        str(sms_port),
        "--data-dir",
        str(data),
        "--account-sid",
        SID,
        "--auth-token",
        TOKEN,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        ready = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
        assert ready == (
            f"sinks ready: smtp 127.0.0.1:{smtp_port} (Maildir {data / 'mail'}) · "
            f"sms http://127.0.0.1:{sms_port} ({data / 'sms.jsonl'})"
        )

        await aiosmtplib.send(_mail("ada@example.com", "Via the CLI"), hostname="127.0.0.1", port=smtp_port)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sms_port}", auth=(SID, TOKEN)) as http:
            response = await http.post(
                f"{API}/Messages.json", data={"To": "+15551230011", "From": SENDER, "Body": "Via the CLI"}
            )
        assert response.status_code == 201

        [mail] = mailbox.Maildir(data / "mail", create=False)
        assert mail["Subject"] == "Via the CLI"
        [line] = (data / "sms.jsonl").read_text().splitlines()
        assert json.loads(line)["sid"] == response.json()["sid"]

        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

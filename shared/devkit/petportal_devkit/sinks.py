"""Where `make run` and the tests deliver: a real SMTP server that keeps every mail in a Maildir (read
it with any mail client: `mutt -f .data/dev/mail`), and a server speaking Twilio's Messages API that
keeps every text (`.data/dev/sms.jsonl`, or `GET /2010-04-01/Accounts/<sid>/Messages.json`) and
calls the status callback, signed as Twilio signs it.

    python -m petportal_devkit.sinks --data-dir .data/dev [--smtp-port 1025] [--sms-port 8026]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import email.policy
import email.utils
import json
import mailbox
import re
import secrets
import signal
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi import BackgroundTasks, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from .devinfra import free_port

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
API = "/2010-04-01/Accounts/{account_sid}"
# Twilio's magic test numbers: https://www.twilio.com/docs/iam/test-credentials
REFUSED = {
    "+15005550001": (21211, "Invalid 'To' Phone Number"),
    "+15005550004": (21610, "Attempt to send to unsubscribed recipient"),
}


class _Keep:
    """aiosmtpd handler: every accepted mail goes into the Maildir."""

    def __init__(self, box: mailbox.Maildir) -> None:
        self.box = box

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if "@" not in address:
            return "553 5.1.3 not an address"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.box.add(mailbox.MaildirMessage(content))
        return "250 Message accepted for delivery"


class DevMailbox:
    """A real SMTP server on loopback keeping every mail in a Maildir."""

    def __init__(self, path: Path, port: int = 0) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.box = mailbox.Maildir(path, create=True)
        self._port = port or free_port()  # aiosmtpd's Controller needs a concrete port
        self._controller = Controller(_Keep(self.box), hostname="127.0.0.1", port=self._port)

    @property
    def port(self) -> int:
        return self._port

    def start(self) -> DevMailbox:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> DevMailbox:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def messages(self) -> list[EmailMessage]:
        """Every mail, oldest first."""
        return self.read(self.path)

    @staticmethod
    def read(path: Path) -> list[EmailMessage]:
        """Every mail in the Maildir at `path` (another process's, too), oldest first."""
        box = mailbox.Maildir(path, create=False)
        found: list[tuple[float, str, EmailMessage]] = []
        for key in box.keys():  # noqa: SIM118 - iterating a Maildir yields messages, not keys
            raw = box.get_bytes(key)
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            assert isinstance(msg, EmailMessage)
            found.append((box.get_message(key).get_date(), key, msg))
        return [m for _, _, m in sorted(found, key=lambda entry: entry[:2])]


def _error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status_code=status,
    )


def _segments(body: str) -> int:
    return 1 if len(body) <= 160 else -(-len(body) // 153)


class FailSpec(BaseModel):
    """`POST /_sink/fail`: the next `count` sends answer `status`."""

    count: int = Field(default=1, ge=0)
    status: int = Field(default=503, ge=400, le=599)


def create_sms_sink(store: Path, *, account_sid: str, auth_token: str) -> FastAPI:
    """An app answering Twilio's Messages API for one account; `app.state.messages` holds what it took,
    newest last. `app.state.fail_next` (or `POST /_sink/fail`) makes the next sends fail, as an outage."""
    messages: list[dict[str, Any]] = []
    if store.exists():
        messages += [json.loads(line) for line in store.read_text().splitlines() if line.strip()]
    validator = RequestValidator(auth_token)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=10) as client:
            app.state.http = client
            yield

    app = FastAPI(title="Local SMS sink (Twilio Messages API)", lifespan=lifespan)
    app.state.messages = messages
    app.state.fail_next = 0
    app.state.fail_status = 503

    def authorised(request: Request, sid: str) -> bool:
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        try:
            given = base64.b64decode(credentials.strip(), validate=True)
        except ValueError:
            return False
        expected = f"{account_sid}:{auth_token}".encode()
        return scheme.lower() == "basic" and sid == account_sid and secrets.compare_digest(given, expected)

    def uri(msid: str = "") -> str:
        base = API.format(account_sid=account_sid)
        return f"{base}/Messages/{msid}.json" if msid else f"{base}/Messages.json"

    async def callback(url: str, message: dict[str, Any]) -> None:
        with contextlib.suppress(Exception):  # as Twilio: a failing callback changes nothing
            await post_statuses(url, message)

    async def post_statuses(url: str, message: dict[str, Any]) -> None:
        if httpx.URL(url).host not in LOOPBACK:
            return  # a local sink calls nothing beyond this machine
        for status in ("sent", "delivered"):
            now = email.utils.format_datetime(datetime.now(UTC))
            message.update(status=status, date_updated=now)
            if status == "sent":
                message["date_sent"] = now
            params = {
                "MessageSid": message["sid"],
                "SmsSid": message["sid"],
                "AccountSid": account_sid,
                "From": message["from"],
                "To": message["to"],
                "MessageStatus": status,
                "SmsStatus": status,
                "ApiVersion": "2010-04-01",
            }
            signature = validator.compute_signature(url, params)
            with contextlib.suppress(httpx.HTTPError):
                await app.state.http.post(url, data=params, headers={"X-Twilio-Signature": signature})

    @app.post(API + "/Messages.json", status_code=201)
    async def create(request: Request) -> Any:
        sid = request.path_params["account_sid"]
        if not authorised(request, sid):
            return _error(401, 20003, "Authenticate")
        if app.state.fail_next > 0:
            app.state.fail_next -= 1
            return _error(app.state.fail_status, 20500, "Internal Server Error")
        form = await request.form()
        to, sender, body = (str(form.get(k, "")) for k in ("To", "From", "Body"))
        status_callback = str(form.get("StatusCallback", ""))
        if not E164.match(to):
            return _error(400, 21211, "Invalid 'To' Phone Number")
        if to in REFUSED:
            return _error(400, *REFUSED[to])
        if not sender:
            return _error(400, 21603, "A 'From' phone number is required")
        if not body:
            return _error(400, 21602, "Message body is required")
        if len(body) > 1600:
            return _error(400, 21617, "The concatenated message body exceeds the 1600 character limit")
        now = email.utils.format_datetime(datetime.now(UTC))
        msid = "SM" + secrets.token_hex(16)
        message = {
            "sid": msid,
            "account_sid": account_sid,
            "to": to,
            "from": sender,
            "body": body,
            "status": "queued",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "num_segments": str(_segments(body)),
            "num_media": "0",
            "date_created": now,
            "date_updated": now,
            "date_sent": None,
            "price": None,
            "price_unit": "USD",
            "error_code": None,
            "error_message": None,
            "messaging_service_sid": None,
            "uri": uri(msid),
            "subresource_uris": {"media": uri(msid).replace(".json", "/Media.json")},
        }
        messages.append(message)
        store.parent.mkdir(parents=True, exist_ok=True)
        with store.open("a") as fh:
            fh.write(json.dumps(message) + "\n")
        if status_callback:
            tasks = BackgroundTasks()
            tasks.add_task(callback, status_callback, message)
            return JSONResponse(message, status_code=201, background=tasks)
        return message

    @app.get(API + "/Messages.json")
    async def index(request: Request) -> Any:
        if not authorised(request, request.path_params["account_sid"]):
            return _error(401, 20003, "Authenticate")
        to, sender = request.query_params.get("To"), request.query_params.get("From")
        try:
            size = max(1, min(int(request.query_params.get("PageSize", 50)), 1000))
        except ValueError:
            size = 50
        found = [
            m for m in reversed(messages) if (not to or m["to"] == to) and (not sender or m["from"] == sender)
        ]
        page = found[:size]
        return {
            "messages": page,
            "page": 0,
            "page_size": size,
            "start": 0,
            "end": max(len(page) - 1, 0),
            "uri": uri(),
            "first_page_uri": f"{uri()}?PageSize={size}&Page=0",
            "next_page_uri": None,
            "previous_page_uri": None,
        }

    @app.get(API + "/Messages/{message_sid}.json")
    async def fetch(request: Request, message_sid: str) -> Any:
        if not authorised(request, request.path_params["account_sid"]):
            return _error(401, 20003, "Authenticate")
        for message in messages:
            if message["sid"] == message_sid:
                return message
        return _error(404, 20404, f"The requested resource {uri(message_sid)} was not found")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/_sink/fail")
    async def fail(spec: FailSpec) -> dict[str, int]:
        app.state.fail_next, app.state.fail_status = spec.count, spec.status
        return {"fail_next": spec.count, "fail_status": spec.status}

    return app


async def _serve(args: argparse.Namespace) -> None:
    import uvicorn

    data = Path(args.data_dir)
    with DevMailbox(data / "mail", args.smtp_port) as mail, socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", args.sms_port))  # bound here: port 0 works, and the line names the port
        app = create_sms_sink(data / "sms.jsonl", account_sid=args.account_sid, auth_token=args.auth_token)
        # No access log: its request lines would carry phone numbers (`?To=`).
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
        serving = asyncio.ensure_future(server.serve(sockets=[sock]))
        while not server.started and not serving.done():  # noqa: ASYNC110 - uvicorn has no event
            await asyncio.sleep(0.02)
        if serving.done():
            serving.result()
        print(
            f"sinks ready: smtp 127.0.0.1:{mail.port} (Maildir {mail.path}) · "
            f"sms http://127.0.0.1:{sock.getsockname()[1]} ({data / 'sms.jsonl'})",
            flush=True,
        )
        await serving


def main() -> None:
    from petportal_notify.settings import DEV_SMTP_PORT, DEV_TWILIO_ACCOUNT_SID, DEV_TWILIO_AUTH_TOKEN

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--smtp-port", type=int, default=DEV_SMTP_PORT)
    parser.add_argument("--sms-port", type=int, default=8026)
    parser.add_argument("--account-sid", default=DEV_TWILIO_ACCOUNT_SID)
    parser.add_argument("--auth-token", default=DEV_TWILIO_AUTH_TOKEN)
    asyncio.run(_serve(parser.parse_args()))


if __name__ == "__main__":
    main()

"""The delivery channels: email over SMTP (aiosmtplib) and SMS through Twilio's Messages REST API.

Each turns its provider's answers into `ProviderError`s with a code that holds no personal data,
sorted into: worth another attempt (connection refused, 4xx SMTP replies, Twilio 429 and 5xx), final
(the recipient refused), and outcome unknown (the request may have been accepted: never retried).
"""

from __future__ import annotations

import asyncio
import email.utils
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.message import EmailMessage

import aiosmtplib
import httpx

from ..domain.delivery import Outgoing, ProviderError


class SmtpEmail:
    """Email through an SMTP server, over a few reused connections (one per concurrent send)."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        mail_from: str,
        username: str | None = None,
        password: str | None = None,
        start_tls: bool | None = None,
        use_tls: bool = False,
        timeout: float = 15,
        connections: int = 4,
    ) -> None:
        self.mail_from = mail_from
        self._options = {
            "hostname": host,
            "port": port,
            "username": username,
            "password": password,
            "start_tls": start_tls,
            "use_tls": use_tls,
            "timeout": timeout,
        }
        self._idle: asyncio.LifoQueue[aiosmtplib.SMTP] = asyncio.LifoQueue()
        self._slots = asyncio.Semaphore(connections)
        self._domain = mail_from.rpartition("@")[2] or "localhost"

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[aiosmtplib.SMTP]:
        async with self._slots:
            smtp = self._idle.get_nowait() if not self._idle.empty() else None
            if smtp is None or not smtp.is_connected:
                smtp = aiosmtplib.SMTP(**self._options)  # type: ignore[arg-type]
                await smtp.connect()
            try:
                yield smtp
            except BaseException:
                smtp.close()
                raise
            self._idle.put_nowait(smtp)

    def build(self, message: Outgoing) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = email.utils.formataddr((message.sender_name or "", self.mail_from))
        mail["To"] = message.to
        mail["Subject"] = message.subject or ""
        mail["Date"] = email.utils.formatdate(localtime=False)
        mail["Message-ID"] = email.utils.make_msgid(f"d{message.delivery_id}", domain=self._domain)
        mail["Auto-Submitted"] = "auto-generated"
        mail.set_content(message.body)
        return mail

    async def send(self, message: Outgoing) -> str:
        mail = self.build(message)
        try:
            async with self._connection() as smtp:
                await smtp.send_message(mail)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = sorted({refusal.code for refusal in exc.recipients})
            raise ProviderError(f"smtp_{codes[0] if codes else 550}", retryable=False) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise ProviderError(f"smtp_{exc.code}", retryable=400 <= exc.code < 500) from None
        except aiosmtplib.SMTPReadTimeoutError:
            # The server may have taken the message and not answered yet.
            raise ProviderError("smtp_timeout", retryable=False, outcome_unknown=True) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise ProviderError(f"smtp_{type(exc).__name__}", retryable=True) from None
        return str(mail["Message-ID"])

    async def close(self) -> None:
        while not self._idle.empty():
            smtp = self._idle.get_nowait()
            if smtp.is_connected:
                try:
                    await smtp.quit()
                except (aiosmtplib.SMTPException, OSError):
                    smtp.close()


class TwilioSms:
    """SMS through Twilio's REST API (`POST /2010-04-01/Accounts/{sid}/Messages.json`), or anything
    that speaks it (the local sink `make run` starts)."""

    def __init__(
        self,
        *,
        api_base: str,
        account_sid: str,
        auth_token: str,
        status_callback: str | None,
        timeout: float = 10,
        connections: int = 20,
    ) -> None:
        self._url = f"{api_base.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        self._status_callback = status_callback
        self._http = httpx.AsyncClient(
            auth=(account_sid, auth_token),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5)),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )

    async def send(self, message: Outgoing) -> str:
        if not message.sender:
            raise ProviderError("no_clinic_number", retryable=False)
        form = {"To": message.to, "From": message.sender, "Body": message.body}
        if self._status_callback:
            form["StatusCallback"] = self._status_callback
        try:
            response = await self._http.post(self._url, data=form)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout):
            raise ProviderError("twilio_unreachable", retryable=True) from None
        except httpx.HTTPError as exc:
            # Sent, and then no answer: Twilio may have queued it.
            raise ProviderError(
                f"twilio_{type(exc).__name__}", retryable=False, outcome_unknown=True
            ) from None
        if response.status_code in (200, 201):
            sid = response.json().get("sid")
            if isinstance(sid, str) and sid:
                return sid
            raise ProviderError("twilio_no_sid", retryable=False, outcome_unknown=True)
        code = _twilio_code(response)
        retryable = (
            response.status_code == 429 or response.status_code >= 500 or response.status_code in (401, 403)
        )
        raise ProviderError(f"twilio_{code or response.status_code}", retryable=retryable)

    async def close(self) -> None:
        await self._http.aclose()


def _twilio_code(response: httpx.Response) -> int | None:
    try:
        code = response.json().get("code")
    except ValueError:
        return None
    return code if isinstance(code, int) else None

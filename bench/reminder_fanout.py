"""reminder_fanout: 10,000 due reminders (5,000 clients, by email and by text) sent by notify's
dispatcher through the real local sinks (an SMTP server, a server speaking Twilio's Messages API, in a
process of their own), as sends/s, against the same 10,000 messages handed to the same two channel
adapters directly (no database, no consent check, no templates, no outcome records): the raw sinks'
throughput in the same run."""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, text

import petportal_notify
from petportal_devkit.devinfra import free_port
from petportal_notify.adapters.channels import SmtpEmail, TwilioSms
from petportal_notify.adapters.deliveries import contacts, deliveries
from petportal_notify.adapters.orm import ClinicRow, ConsentRow, PatientRow
from petportal_notify.bootstrap import bootstrap
from petportal_notify.domain.delivery import Outgoing
from petportal_notify.settings import DEV_TWILIO_ACCOUNT_SID, DEV_TWILIO_AUTH_TOKEN, NotifySettings
from petportal_runtime.db import table_of
from petportal_runtime.migrations import upgrade

from .infra import LOOPBACK, Infra
from .procs import ChildFailed, tail
from .report import BenchResult, Row
from .stats import ratio

NAME = "reminder_fanout"
TITLE = "due reminders sent/s through notify's dispatcher to the real SMTP and SMS sinks vs the raw sinks"
CLINIC_ID = "bench-clinic-notify"


@dataclass(frozen=True)
class Params:
    reminders: int = 10_000  # half by email, half by text
    concurrency: int = 20  # SEND_CONCURRENCY
    batch: int = 200  # DISPATCH_BATCH
    ready_timeout_s: float = 60.0

    @classmethod
    def quick(cls) -> Params:
        return cls(reminders=2_000)


async def _seed(settings: NotifySettings, clients: int) -> None:
    notify = bootstrap(settings, dispatch=False, providers={})
    due = date.today() + timedelta(days=3)
    now = datetime.now(UTC) - timedelta(minutes=1)
    async with notify.runtime.transaction() as session:
        await session.execute(
            insert(table_of(ClinicRow)).values(
                clinic_id=CLINIC_ID, name="Bench Vets", sms_number="+14155550100", timezone="UTC"
            )
        )
        ids = [f"C{i:06d}" for i in range(clients)]
        await session.execute(
            insert(contacts),
            [
                {
                    "clinic_id": CLINIC_ID,
                    "client_id": c,
                    "phone": f"+1415{2000000 + i:07d}",
                    "email": f"{c}@example.com",
                }
                for i, c in enumerate(ids)
            ],
        )
        await session.execute(
            insert(table_of(ConsentRow)),
            [
                {
                    "clinic_id": CLINIC_ID,
                    "client_id": c,
                    "sms_opted_in": True,
                    "email_opted_in": True,
                    "source": "default",
                }
                for c in ids
            ],
        )
        await session.execute(
            insert(table_of(PatientRow)),
            [{"clinic_id": CLINIC_ID, "patient_id": f"P{c}", "name": "Biscuit"} for c in ids],
        )
        await session.execute(
            insert(deliveries),
            [
                {
                    "key": f"reminder:service:{CLINIC_ID}:R{c}:{due}:3d:{channel}",
                    "clinic_id": CLINIC_ID,
                    "client_id": c,
                    "channel": channel,
                    "template": "service_reminder",
                    "params": {"service": "Rabies booster", "due_on": due.isoformat()},
                    "status": "queued",
                    "not_before": now,
                    "subject_kind": "service",
                    "subject_id": f"R{c}",
                    "patient_id": f"P{c}",
                }
                for c in ids
                for channel in ("email", "sms")
            ],
        )
    await notify.runtime.stop()


def _providers(smtp_port: int, sms_url: str, concurrency: int) -> dict[str, SmtpEmail | TwilioSms]:
    return {
        "email": SmtpEmail(host=LOOPBACK, port=smtp_port, mail_from="no-reply@bench.example", connections=4),
        "sms": TwilioSms(
            api_base=sms_url,
            account_sid=DEV_TWILIO_ACCOUNT_SID,
            auth_token=DEV_TWILIO_AUTH_TOKEN,
            status_callback=None,
            connections=concurrency,
        ),
    }


async def _dispatcher(infra: Infra, params: Params, smtp_port: int, sms_url: str) -> dict[str, float]:
    server = infra.ensure_postgres()
    await server.drop_database("bench_notify")
    await server.create_database("bench_notify")
    url = server.url("bench_notify")
    await asyncio.to_thread(upgrade, Path(petportal_notify.__file__).parent / "migrations", url)
    settings = NotifySettings(
        environment="development",
        database_url=url,
        send_concurrency=params.concurrency,
        dispatch_batch=params.batch,
    )
    await _seed(settings, params.reminders // 2)
    providers = _providers(smtp_port, sms_url, params.concurrency)
    notify = bootstrap(settings, dispatch=False, providers=providers)  # type: ignore[arg-type]
    try:
        started = time.perf_counter()
        handled = 0
        while claimed := await notify.dispatcher.dispatch_once():
            handled += claimed
        elapsed = time.perf_counter() - started
        async with notify.runtime.transaction() as session:
            sent = (
                await session.execute(text("SELECT count(*) FROM deliveries WHERE status = 'sent'"))
            ).scalar_one()
    finally:
        for provider in providers.values():
            await provider.close()
        await notify.runtime.stop()
    if sent != params.reminders:
        raise ChildFailed(f"sent {sent} of {params.reminders} reminders")
    return {"seconds": round(elapsed, 3), "sends_per_s": round(sent / elapsed, 1)}


async def _raw(params: Params, smtp_port: int, sms_url: str) -> dict[str, float]:
    providers = _providers(smtp_port, sms_url, params.concurrency)
    messages = [
        Outgoing(
            i,
            "email" if i % 2 else "sms",
            f"C{i:06d}@example.com" if i % 2 else f"+1415{3000000 + i:07d}",
            None if i % 2 else "+14155550100",
            "Biscuit's Rabies booster is due" if i % 2 else None,
            "Bench Vets: Biscuit's Rabies booster is due on Fri 1 Jan 2027. Book or view: "
            "http://127.0.0.1:8080/c/x Reply STOP to opt out.",
        )
        for i in range(params.reminders)
    ]
    limit = asyncio.Semaphore(params.concurrency)

    async def send(message: Outgoing) -> None:
        async with limit:
            await providers[message.channel].send(message)

    try:
        started = time.perf_counter()
        await asyncio.gather(*(send(m) for m in messages))
        elapsed = time.perf_counter() - started
    finally:
        for provider in providers.values():
            await provider.close()
    return {"seconds": round(elapsed, 3), "sends_per_s": round(len(messages) / elapsed, 1)}


async def run(infra: Infra, params: Params) -> BenchResult:
    result = BenchResult(NAME, TITLE, asdict(params))
    smtp_port, sms_port = free_port(), free_port()
    sinks = infra.child(
        "sinks",
        "petportal_devkit.sinks",
        [
            "--data-dir",
            str(infra.workdir / "sinks"),
            "--smtp-port",
            str(smtp_port),
            "--sms-port",
            str(sms_port),
        ],
        {},
    )
    sinks.start()
    sms_url = f"http://{LOOPBACK}:{sms_port}"
    try:
        await sinks.wait_http_ok(f"{sms_url}/healthz", timeout=params.ready_timeout_s)
    except Exception as exc:
        raise ChildFailed(f"sinks not ready: {exc}\n{tail(sinks.log_file)}") from exc
    raw = await _raw(params, smtp_port, sms_url)
    loop = await _dispatcher(infra, params, smtp_port, sms_url)
    result.results = {"dispatcher": loop, "raw_sinks": raw}
    result.ratios = {"dispatcher_vs_raw": ratio(loop["sends_per_s"], raw["sends_per_s"])}
    result.rows = [
        Row(
            "reminders sent/s (email + SMS)",
            loop["sends_per_s"],
            "sends/s",
            "the same sends straight to the sinks",
            raw["sends_per_s"],
            result.ratios["dispatcher_vs_raw"],
            "higher",
        )
    ]
    result.notes.append(
        "the dispatcher claims due deliveries under the consent lock, renders each template, calls the "
        "providers concurrently, then records every outcome and a ReminderSent in the outbox; the raw "
        "run hands pre-rendered messages to the same adapters"
    )
    return result

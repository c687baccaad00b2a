"""Deliveries' use cases: what to send (from events and requests), and the dispatcher that sends it.

Every delivery has an idempotency key, so an event applied again or a request retried adds nothing.
The dispatcher decides against consent in the transaction that claims the delivery (the opt-out
waits for it, or is seen by it), calls the provider outside any transaction, and records the outcome:
sent (a reminder raises `ReminderSent`), retried later, or given up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from petportal_runtime import telemetry
from petportal_runtime.logging import get_logger
from petportal_runtime.workers import run_in_passes
from petportal_schemas import (
    AppointmentBooked,
    AppointmentBookingRejected,
    AppointmentCancelled,
    AppointmentRequestAnswered,
    AppointmentUpserted,
    Envelope,
    MessageRead,
    MessageReceived,
    RefillRequestDecided,
    ReminderSent,
    ServiceReminderCompleted,
    ServiceReminderUpserted,
)

from ..domain.delivery import (
    CHANNELS,
    CODES,
    REMINDERS,
    Channel,
    Contact,
    Delivery,
    Finish,
    Outgoing,
    Provider,
    ProviderError,
    RetryPolicy,
    Status,
    Template,
    decide,
)
from ..domain.schedule import ReminderPolicy, Slot, appointment_slots, service_slots
from ..domain.templates import render
from .unit_of_work import Claimed, NotifyUnitOfWork

CONSUMER = "notify"
PRODUCER = "notify"
log = get_logger(__name__)

_meter = telemetry.meter("notify")
_deliveries = _meter.create_counter(
    "petportal_notify_deliveries",
    description="deliveries ended or retried, by channel and outcome (sent, failed, suppressed by "
    "consent, skipped, dead, unknown, retried)",
)
OUTCOMES = ("sent", "failed", "suppressed", "skipped", "dead", "unknown", "retried")


def count_from_zero() -> None:
    for channel in CHANNELS:
        for outcome in OUTCOMES:
            _deliveries.add(0, {"channel": channel, "outcome": outcome})


class UnknownRecipient(LookupError):
    def __init__(self) -> None:
        super().__init__("no such client at this clinic")


def now() -> datetime:
    return datetime.now(UTC)


# --- what to send -------------------------------------------------------------------------------


async def request(uow: NotifyUnitOfWork, delivery: Delivery) -> Delivery:
    """A delivery asked for by another service (identity's sign-in codes); the same one again for the
    same key. `UnknownRecipient` if the client is not a contact of the clinic."""
    async with uow:
        if await uow.repositories.deliveries.contact(delivery.clinic_id, delivery.client_id) is None:
            raise UnknownRecipient()
        return await uow.repositories.deliveries.add(delivery)


def _reachable(contact: Contact | None) -> list[Channel]:
    """The channels a client has an address on and has not turned off."""
    if contact is None:
        return []
    return [c for c in CHANNELS if contact.address(c) and contact.opted_in(c)]


async def new_message(
    uow: NotifyUnitOfWork,
    envelope: Envelope,
    event: MessageReceived,
    *,
    batch: timedelta,
    at: datetime | None = None,
) -> bool:
    """Staff wrote to the client: one notification per channel for a burst of messages, sent `batch`
    after the first unless the client reads them first."""
    if envelope.client_id is None:
        raise ValueError("MessageReceived without client_id")
    async with uow:
        if not await uow.claim(CONSUMER, envelope):
            return False
        store = uow.repositories.deliveries
        contact = await store.contact(envelope.clinic_id, envelope.client_id)
        for channel in _reachable(contact):
            await store.add_to_batch(
                Delivery(
                    key=f"new_messages:{envelope.event_id}:{channel}",
                    clinic_id=envelope.clinic_id,
                    client_id=envelope.client_id,
                    channel=channel,
                    template=Template.NEW_MESSAGES,
                    params={"count": 1, "conversation_id": str(event.conversation_id)},
                    not_before=(at or now()) + batch,
                )
            )
    return True


async def messages_read(uow: NotifyUnitOfWork, envelope: Envelope, event: MessageRead) -> bool:
    """The client read their messages in the portal: a notification still waiting is not needed."""
    if envelope.client_id is None:
        raise ValueError("MessageRead without client_id")
    async with uow:
        if not await uow.claim(CONSUMER, envelope):
            return False
        await uow.repositories.deliveries.cancel(
            envelope.clinic_id, client_id=envelope.client_id, template=Template.NEW_MESSAGES, reason="read"
        )
    return True


async def request_answered(
    uow: NotifyUnitOfWork,
    envelope: Envelope,
    event: AppointmentRequestAnswered,
    *,
    at: datetime | None = None,
) -> bool:
    """The clinic accepted, declined or proposed another time for the client's appointment request: one
    notification per reachable channel, now."""
    params: dict[str, object] = {"outcome": event.outcome}
    if event.appointment_at is not None:
        params["appointment_at"] = event.appointment_at.isoformat()
    return await _tell(
        uow,
        envelope,
        key=f"request_answered:{event.request_id}:{event.outcome}",
        template=Template.REQUEST_ANSWERED,
        subject=("appointment_request", str(event.request_id)),
        patient_id=event.patient_id,
        params=params,
        at=at,
    )


async def refill_decided(
    uow: NotifyUnitOfWork,
    envelope: Envelope,
    event: RefillRequestDecided,
    *,
    at: datetime | None = None,
) -> bool:
    """The clinic approved or denied the client's refill request: one notification per reachable
    channel, now."""
    return await _tell(
        uow,
        envelope,
        key=f"refill_decided:{event.request_id}:{event.outcome}",
        template=Template.REFILL_DECIDED,
        subject=("refill_request", str(event.request_id)),
        patient_id=event.patient_id,
        params={"outcome": event.outcome},
        at=at,
    )


async def booking_answered(
    uow: NotifyUnitOfWork,
    envelope: Envelope,
    event: AppointmentBooked | AppointmentBookingRejected,
    *,
    at: datetime | None = None,
) -> bool:
    """The clinic's system took the client's online booking, or refused it (the slot is free again and
    they should pick another time): one notification per reachable channel, now."""
    outcome = "confirmed" if isinstance(event, AppointmentBooked) else "rejected"
    return await _tell(
        uow,
        envelope,
        key=f"booking_answered:{event.booking_id}:{outcome}",
        template=Template.BOOKING_ANSWERED,
        subject=("booking", str(event.booking_id)),
        patient_id=event.patient_id,
        params={"outcome": outcome, "starts_at": event.starts_at.isoformat()},
        at=at,
    )


async def _tell(
    uow: NotifyUnitOfWork,
    envelope: Envelope,
    *,
    key: str,
    template: Template,
    subject: tuple[str, str],
    patient_id: str,
    params: Mapping[str, object],
    at: datetime | None,
) -> bool:
    """One delivery per channel the client is reachable on (none for a client notify does not know, an
    erased one included), keyed `<key>:<channel>`: the event applied again, or published again under
    another id, adds nothing. The pet's name is looked up when it is sent."""
    if envelope.client_id is None:
        raise ValueError(f"{envelope.event_type} without client_id")
    async with uow:
        if not await uow.claim(CONSUMER, envelope):
            return False
        store = uow.repositories.deliveries
        contact = await store.contact(envelope.clinic_id, envelope.client_id)
        for channel in _reachable(contact):
            await store.add(
                Delivery(
                    key=f"{key}:{channel}",
                    clinic_id=envelope.clinic_id,
                    client_id=envelope.client_id,
                    channel=channel,
                    template=template,
                    params=dict(params),
                    not_before=at or now(),
                    subject_kind=subject[0],
                    subject_id=subject[1],
                    patient_id=patient_id,
                )
            )
    return True


async def _schedule(
    uow: NotifyUnitOfWork,
    envelope: Envelope,
    *,
    kind: str,
    subject_id: str,
    patient_id: str | None,
    template: Template,
    slots: Sequence[Slot],
    version: str,
    params: Mapping[str, object],
) -> int:
    """Queue a reminder's slots on every reachable channel and cancel the queued ones it no longer has
    (a moved due date or appointment); slots already sent are kept, and never sent again."""
    assert envelope.client_id is not None
    store = uow.repositories.deliveries
    contact = await store.contact(envelope.clinic_id, envelope.client_id)
    channels = [c for c in CHANNELS if contact is not None and contact.address(c)]
    wanted = [
        Delivery(
            key=f"reminder:{kind}:{envelope.clinic_id}:{subject_id}:{version}:{slot.lead}:{channel}",
            clinic_id=envelope.clinic_id,
            client_id=envelope.client_id,
            channel=channel,
            template=template,
            params=dict(params),
            not_before=slot.at,
            subject_kind=kind,
            subject_id=subject_id,
            patient_id=patient_id,
        )
        for slot in slots
        for channel in channels
    ]
    await store.cancel(
        envelope.clinic_id, subject=(kind, subject_id), keep=[d.key for d in wanted], reason="rescheduled"
    )
    for delivery in wanted:
        await store.add(delivery)
    return len(wanted)


async def service_reminder(
    uow: NotifyUnitOfWork,
    envelope: Envelope,
    event: ServiceReminderUpserted,
    *,
    policy: ReminderPolicy,
    at: datetime | None = None,
) -> bool:
    async with uow:
        if not await uow.claim(CONSUMER, envelope):
            return False
        timezone = await _timezone(uow, envelope.clinic_id)
        await _schedule(
            uow,
            envelope,
            kind="service",
            subject_id=event.reminder_id,
            patient_id=event.patient_id,
            template=Template.SERVICE_REMINDER,
            slots=service_slots(event.due_on, timezone, at or now(), policy),
            version=event.due_on.isoformat(),
            params={"service": event.service, "due_on": event.due_on.isoformat()},
        )
    return True


async def service_reminder_closed(
    uow: NotifyUnitOfWork, envelope: Envelope, event: ServiceReminderCompleted
) -> bool:
    """Booked, done or deleted: its reminders still queued are not sent."""
    return await _cancel_reminders(uow, envelope, ("service", event.reminder_id), event.reason)


ACTIVE_APPOINTMENT = frozenset({"scheduled", "confirmed"})


async def appointment(
    uow: NotifyUnitOfWork,
    envelope: Envelope,
    event: AppointmentUpserted,
    *,
    policy: ReminderPolicy,
    at: datetime | None = None,
) -> bool:
    async with uow:
        if not await uow.claim(CONSUMER, envelope):
            return False
        if event.status not in ACTIVE_APPOINTMENT:
            await uow.repositories.deliveries.cancel(
                envelope.clinic_id, subject=("appointment", event.appointment_id), reason=event.status
            )
            return True
        timezone = event.timezone if event.timezone != "UTC" else await _timezone(uow, envelope.clinic_id)
        await _schedule(
            uow,
            envelope,
            kind="appointment",
            subject_id=event.appointment_id,
            patient_id=event.patient_id,
            template=Template.APPOINTMENT_REMINDER,
            slots=appointment_slots(event.starts_at, timezone, at or now(), policy),
            version=event.starts_at.astimezone(UTC).strftime("%Y%m%dT%H%M"),
            params={"starts_at": event.starts_at.isoformat()},
        )
    return True


async def appointment_cancelled(
    uow: NotifyUnitOfWork, envelope: Envelope, event: AppointmentCancelled
) -> bool:
    return await _cancel_reminders(uow, envelope, ("appointment", event.appointment_id), "cancelled")


async def _cancel_reminders(
    uow: NotifyUnitOfWork, envelope: Envelope, subject: tuple[str, str], reason: str
) -> bool:
    """The subject's reminders still queued are not sent (once per event)."""
    async with uow:
        if not await uow.claim(CONSUMER, envelope):
            return False
        await uow.repositories.deliveries.cancel(envelope.clinic_id, subject=subject, reason=reason)
    return True


async def _timezone(uow: NotifyUnitOfWork, clinic_id: str) -> str:
    clinic = await uow.repositories.notify.clinic(clinic_id)
    return clinic.timezone if clinic else "UTC"


async def provider_status(
    uow: NotifyUnitOfWork, provider_id: str, provider_status: str, error_code: str | None
) -> bool:
    """A delivery-status callback (Twilio's MessageStatus): delivered, undelivered or failed."""
    status = {
        "delivered": Status.DELIVERED,
        "undelivered": Status.UNDELIVERED,
        "failed": Status.FAILED,
    }.get(provider_status)
    if status is None:  # queued, sending, sent, accepted…: nothing new
        return False
    async with uow:
        reason = f"twilio_{error_code}" if error_code else None
        return await uow.repositories.deliveries.provider_status(provider_id, status, reason)


async def deliveries(
    uow: NotifyUnitOfWork, clinic_id: str, *, status: Status | None, client_id: str | None, limit: int
) -> list[Delivery]:
    async with uow:
        return await uow.repositories.deliveries.list(
            clinic_id, status=status, client_id=client_id, limit=limit
        )


# --- sending ------------------------------------------------------------------------------------


def _client_of(item: Claimed) -> tuple[str, str]:
    return item.delivery.clinic_id, item.delivery.client_id


# (clinic, client) pairs → a sign-in link for each it could make (identity's reminder links).
ReminderLinks = Callable[[Sequence[tuple[str, str]]], Awaitable[dict[tuple[str, str], str]]]


@dataclass
class Dispatcher:
    """Sends due deliveries: claim (and decide) in one transaction, send concurrently outside it,
    record the outcomes in another. Several replicas may run it: claims skip each other's rows."""

    unit_of_work: Callable[[], NotifyUnitOfWork]
    providers: Mapping[Channel, Provider]
    link: Callable[[str], str]  # the portal link for a clinic
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    batch: int = 200
    concurrency: int = 20
    send_timeout: float = 15
    interval: float = 1.0
    mail_sender_name: Callable[[str], str] = lambda clinic_name: clinic_name
    # A sign-in link for a client's reminder (identity's reminder links); None: the portal's page.
    reminder_links: ReminderLinks | None = None
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        async def one_round() -> bool:
            try:
                return await self.dispatch_once() >= self.batch  # a full round: more are due
            except Exception as exc:  # the database is down: try again next round
                log.warning("dispatch failed", error=type(exc).__name__)
                return False

        await run_in_passes(one_round, self._wake, stop, self.interval)

    async def dispatch_once(self, at: datetime | None = None) -> int:
        """One round; how many deliveries it claimed."""
        at = at or now()
        lease = timedelta(seconds=self.send_timeout * 4 + 120)
        uow = self.unit_of_work()
        async with uow:
            store = uow.repositories.deliveries
            for lost in await store.expire_leases(at):
                _deliveries.add(1, {"channel": lost.channel, "outcome": "unknown"})
            claimed = await store.claim_due(at, self.batch)
            to_send: list[Claimed] = []
            not_sent: list[Finish] = []
            for item in claimed:
                refused = self._refusal(item)
                if refused is None:
                    to_send.append(item)
                    continue
                status, reason = refused
                assert item.delivery.id is not None
                not_sent.append(Finish(item.delivery.id, status, reason=reason, clear_params=True))
                _deliveries.add(1, {"channel": item.delivery.channel, "outcome": status.value})
            await store.finish_all(not_sent)
            await store.mark_sending(
                [i.delivery.id for i in to_send if i.delivery.id is not None], at + lease
            )
        if not to_send:
            return len(claimed)
        links = await self._sign_in_links(to_send)
        outgoing = [(item.delivery, self._message(item, self._link_for(item, links))) for item in to_send]
        limit = asyncio.Semaphore(self.concurrency)

        async def attempt(message: Outgoing) -> str | ProviderError:
            async with limit:
                try:
                    # The providers time out on their own (and know whether it was sent); this is the
                    # backstop for one that hangs anyway.
                    return await asyncio.wait_for(
                        self.providers[message.channel].send(message), self.send_timeout * 2 + 5
                    )
                except ProviderError as exc:
                    return exc
                except TimeoutError:
                    return ProviderError("timeout", retryable=False, outcome_unknown=True)

        results = await asyncio.gather(*(attempt(m) for _, m in outgoing))
        await self._record(list(zip((d for d, _ in outgoing), results, strict=True)), at)
        return len(claimed)

    async def _sign_in_links(self, to_send: list[Claimed]) -> dict[tuple[str, str], str]:
        """Reminders link to a sign-in for their client: identity gives the links, in one request a
        round; the portal's page where it gives none (the reminder still goes)."""
        clients = {_client_of(item) for item in to_send if item.delivery.template in REMINDERS}
        if not clients or self.reminder_links is None:
            return {}
        return await self.reminder_links(sorted(clients))

    def _link_for(self, item: Claimed, links: dict[tuple[str, str], str]) -> str:
        """A reminder's sign-in link opens its pet's page once signed in (where the parent confirms or
        cancels the appointment, or sees what is due); any other message links to the portal."""
        link = links.get(_client_of(item))
        if link is None:
            return self.link(item.delivery.clinic_id)
        if item.delivery.patient_id:
            link += "&next=" + quote(f"/pets/{item.delivery.patient_id}", safe="/")
        return link

    def _refusal(self, item: Claimed) -> tuple[Status, str | None] | None:
        """Why a claimed delivery does not go (the state it ends in), or None: it goes."""
        status, reason = decide(item.delivery, item.contact)
        if status is not Status.SENDING:
            return status, reason
        if item.clinic is None:
            return Status.SKIPPED, "unknown_clinic"
        if item.delivery.channel == "sms" and not item.clinic.sms_number:
            return Status.SKIPPED, "no_clinic_number"
        return None

    def _message(self, item: Claimed, link: str) -> Outgoing:
        """The delivery rendered for its channel (one `_refusal` let through)."""
        delivery, clinic, contact = item.delivery, item.clinic, item.contact
        assert clinic is not None
        assert contact is not None
        assert delivery.id is not None
        params = dict(delivery.params)
        if item.pet_name:
            params["pet_name"] = item.pet_name
        text = render(delivery.template, delivery.channel, clinic, params, link)
        address = contact.address(delivery.channel)
        assert address is not None
        return Outgoing(
            delivery_id=delivery.id,
            channel=delivery.channel,
            to=address,
            sender=clinic.sms_number if delivery.channel == "sms" else None,
            subject=text.subject,
            body=text.body,
            sender_name=self.mail_sender_name(clinic.name),
        )

    async def _record(self, results: list[tuple[Delivery, str | ProviderError]], at: datetime) -> None:
        uow = self.unit_of_work()
        async with uow:
            store = uow.repositories.deliveries
            sent: dict[int, Envelope] = {}  # by delivery id
            finishes: list[Finish] = []
            for delivery, result in results:
                assert delivery.id is not None
                attempts = delivery.attempts + 1
                secret = delivery.template in CODES
                if isinstance(result, str):
                    finishes.append(Finish(delivery.id, Status.SENT, provider_id=result, clear_params=secret))
                    outcome = "sent"
                    if delivery.template in REMINDERS and delivery.subject_id and delivery.client_id:
                        sent[delivery.id] = Envelope.wrap(
                            ReminderSent(
                                reminder_id=delivery.subject_id,
                                channel=delivery.channel,
                                kind="service" if delivery.subject_kind == "service" else "appointment",
                                patient_id=delivery.patient_id,
                            ),
                            clinic_id=delivery.clinic_id,
                            client_id=delivery.client_id,
                            producer=PRODUCER,
                        )
                else:
                    if result.outcome_unknown:
                        finish = Finish(delivery.id, Status.UNKNOWN, reason=result.code, clear_params=secret)
                    elif not result.retryable:
                        finish = Finish(delivery.id, Status.FAILED, reason=result.code, clear_params=secret)
                    elif self.retry.gives_up(attempts):
                        finish = Finish(delivery.id, Status.DEAD, reason=result.code, clear_params=secret)
                    else:
                        later = at + self.retry.delay(attempts)
                        finish = Finish(delivery.id, Status.QUEUED, reason=result.code, not_before=later)
                    finishes.append(finish)
                    outcome = "retried" if finish.status is Status.QUEUED else finish.status.value
                    log.warning(
                        "delivery not sent",
                        delivery_id=delivery.id,
                        channel=delivery.channel,
                        outcome=outcome,
                        code=result.code,
                        attempts=attempts,
                    )
                _deliveries.add(1, {"channel": delivery.channel, "outcome": outcome})
            await store.finish_all(finishes)
            if sent:
                # Not for a client erased while the reminder was on its way: nothing about them is
                # published after their erasure (identity would open their account again on it).
                kept = await store.existing(list(sent))
                await uow.publish_all([envelope for i, envelope in sent.items() if i in kept])

"""A client's erasure on the real database and broker: with every notify table holding data of three
clients, erasing two of them leaves no trace of their names, addresses, numbers, pets or texts in any
text column of any table (the outbox's events included), the third is untouched, ClientDataErased
reaches the erasure topic, and of the erased client who had texted STOP only a keyed hash of the
number is kept, so a contact recorded later with that number starts opted out."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from petportal_devkit.testing import eventually
from petportal_schemas import (
    ClientDataErased,
    ClientErasureRequested,
    ClientUpserted,
    Envelope,
    MessageReceived,
    PatientUpserted,
    ServiceReminderUpserted,
    SmsOptedOut,
    topics,
)

from .conftest import NotifyFactory, NotifyUnderTest, Sinks, consume, random_number

pytestmark = pytest.mark.integration

# Every column whose values are text of some kind (the outbox's events are bytes of JSON).
TEXT_TYPES = ("character varying", "character", "text", "jsonb", "json", "bytea")


@dataclass
class Client:
    client_id: str
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    phone: str = field(default_factory=random_number)

    @property
    def first_name(self) -> str:
        return f"First{self.tag}"

    @property
    def last_name(self) -> str:
        return f"Last{self.tag}"

    @property
    def email(self) -> str:
        return f"mail{self.tag}@example.com"

    @property
    def pet(self) -> str:
        return f"Pet{self.tag}"

    @property
    def text(self) -> str:
        return f"Is my pet ready? {self.tag}"

    def traces(self) -> list[str]:
        """What must not be found anywhere once the client is erased."""
        return [
            self.first_name,
            self.last_name,
            self.email,
            self.phone,
            self.phone.removeprefix("+"),
            self.pet,
            self.tag,
        ]


def wrap(n: NotifyUnderTest, event: Any, client: Client | str, producer: str = "sync") -> Envelope:
    client_id = client if isinstance(client, str) else client.client_id
    return Envelope.wrap(event, clinic_id=n.clinic_id, client_id=client_id, producer=producer)


def upserted(n: NotifyUnderTest, client: Client, client_id: str | None = None) -> Envelope:
    event = ClientUpserted(
        first_name=client.first_name, last_name=client.last_name, email=client.email, phone=client.phone
    )
    return wrap(n, event, client_id or client.client_id)


async def fill(n: NotifyUnderTest, client: Client) -> None:
    """The client in every table: contact and consent, a pet, reminders and a new-message notification
    (sent, so with provider ids), a text to the clinic (inbound_sms, and SmsReceived in the outbox)."""
    pet_id = f"p-{client.tag}"
    await n.publish(upserted(n, client))

    async def known() -> bool:
        return bool(
            await n.scalar(
                "SELECT count(*) FROM consents WHERE clinic_id = :c AND client_id = :k",
                c=n.clinic_id,
                k=client.client_id,
            )
        )

    # The staff message comes on another topic: only once the contact is known does it notify.
    await eventually(known)
    await n.publish(
        wrap(n, PatientUpserted(patient_id=pet_id, name=client.pet, species="dog"), client),
        wrap(
            n,
            ServiceReminderUpserted(
                reminder_id=f"r-{client.tag}",
                patient_id=pet_id,
                service="Rabies",
                due_on=date.today() + timedelta(days=5),
            ),
            client,
        ),
        wrap(
            n,
            MessageReceived(conversation_id=uuid.uuid4(), message_id=uuid.uuid4(), sent_at=datetime.now(UTC)),
            client,
            producer="messaging",
        ),
    )

    async def applied() -> bool:
        pets = await n.scalar(
            "SELECT count(*) FROM patients WHERE clinic_id = :c AND name = :p", c=n.clinic_id, p=client.pet
        )
        templates = await n.scalar(
            "SELECT count(DISTINCT template) FROM deliveries WHERE clinic_id = :c AND client_id = :k",
            c=n.clinic_id,
            k=client.client_id,
        )
        return pets == 1 and templates == 2

    await eventually(applied)
    response = await n.sms(client.text, from_number=client.phone)
    assert response.status_code == 200, response.text


async def columns(n: NotifyUnderTest) -> list[tuple[str, str, str]]:
    rows = await n.rows(
        "SELECT table_name, column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = 'public' AND data_type = ANY(:types) ORDER BY table_name, column_name",
        types=list(TEXT_TYPES),
    )
    return [(r.table_name, r.column_name, r.data_type) for r in rows]


async def where_found(n: NotifyUnderTest, needles: list[str]) -> dict[str, list[str]]:
    """{needle: ["table.column", ...]} for each needle found in a text column of a notify table."""
    found: dict[str, list[str]] = {}
    for table, column, data_type in await columns(n):
        value = f"encode({column}, 'escape')" if data_type == "bytea" else f"{column}::text"
        for needle in needles:
            hits = await n.scalar(
                f'SELECT count(*) FROM "{table}" WHERE strpos({value}, :needle) > 0',
                needle=needle,
            )
            if hits:
                found.setdefault(needle, []).append(f"{table}.{column}")
    return found


async def erase(n: NotifyUnderTest, *clients: Client) -> list[Envelope]:
    requests = [
        wrap(n, ClientErasureRequested(erasure_id=uuid.uuid4()), client, producer="identity")
        for client in clients
    ]
    await n.publish(*requests)

    async def confirmed() -> bool:
        return len(await n.outbox_events("ClientDataErased")) == len(requests)

    await eventually(confirmed)
    return requests


async def test_an_erased_client_leaves_nothing_but_the_keyed_hash_of_a_stopped_number(
    running_notify: NotifyFactory, sinks: Sinks
) -> None:
    async with running_notify(notification_batch_seconds=0) as n:
        ada, bob, cleo = Client("ada"), Client("bob"), Client("cleo")
        for client in (ada, bob, cleo):
            await fill(n, client)
        # Everything due within ten days goes: provider ids, and ReminderSent in the outbox.
        await n.notify.dispatcher.dispatch_once(datetime.now(UTC) + timedelta(days=10))
        assert await n.scalar("SELECT count(*) FROM deliveries WHERE provider_id IS NOT NULL") >= 6
        # Ada texts STOP (SmsOptedOut in the outbox); Cleo stays opted in.
        assert (await n.sms("STOP", from_number=ada.phone)).status_code == 200
        assert await n.opted_out("ada")
        every_table = {t for t, _, _ in await columns(n)}
        for client in (ada, bob, cleo):
            found = await where_found(n, client.traces())
            # Before: each client is found in every table that holds client data.
            assert {t.split(".")[0] for hits in found.values() for t in hits} >= {
                "contacts",
                "patients",
                "deliveries",
                "inbound_sms",
                "outbox",
            }, found
        bob_before = await where_found(n, bob.traces())
        bob_rows = {
            table: await n.scalar(
                f"SELECT count(*) FROM {table} WHERE clinic_id = :c AND client_id = :k",
                c=n.clinic_id,
                k="bob",
            )
            for table in ("contacts", "consents", "patients", "deliveries")
        }

        requests = await erase(n, ada, cleo)

        # Nothing of Ada or Cleo is left, in any text column of any table.
        assert await where_found(n, ada.traces() + cleo.traces()) == {}
        for table in ("contacts", "consents", "patients", "deliveries"):
            assert not await n.scalar(f"SELECT count(*) FROM {table} WHERE client_id IN ('ada', 'cleo')"), (
                table
            )
        # Bob is intact, and so is the clinic.
        assert await where_found(n, bob.traces()) == bob_before
        for table, count in bob_rows.items():
            assert count == await n.scalar(
                f"SELECT count(*) FROM {table} WHERE clinic_id = :c AND client_id = :k",
                c=n.clinic_id,
                k="bob",
            ), table
        assert await n.scalar("SELECT count(*) FROM clinics WHERE clinic_id = :c", c=n.clinic_id) == 1
        assert not await n.opted_out("bob")
        assert {"sms_stops", "erased_clients"} <= every_table

        # Of Ada, who had texted STOP, only the keyed hash of her number; nothing of Cleo.
        digests = n.notify.phones
        stops = await n.rows("SELECT clinic_id, phone_digest FROM sms_stops")
        assert [(r.clinic_id, r.phone_digest) for r in stops] == [(n.clinic_id, digests.digest(ada.phone))]
        erased = await n.rows("SELECT client_id FROM erased_clients WHERE clinic_id = :c", c=n.clinic_id)
        assert sorted(r.client_id for r in erased) == ["ada", "cleo"]

        # The confirmations reach the erasure topic, one per request, from notify.
        confirmed = await consume(n.kafka, topics.ERASURE, n.clinic_id, "ClientDataErased", 2, 20)
        by_client = {env.client_id: event for env, event in confirmed}
        for request in requests:
            event = by_client[request.client_id]
            asked = request.event()
            assert isinstance(event, ClientDataErased)
            assert isinstance(asked, ClientErasureRequested)
            assert (event.erasure_id, event.service) == (asked.erasure_id, "notify")

        # The clinic records the same people again: Ada's number starts opted out (and that is
        # published), Cleo's opted in.
        await n.publish(upserted(n, ada, "ada-again"), upserted(n, ada), upserted(n, cleo, "cleo-again"))

        async def recorded() -> bool:
            return bool(
                await n.scalar(
                    "SELECT count(*) = 3 FROM consents WHERE clinic_id = :c"
                    " AND client_id IN ('ada', 'ada-again', 'cleo-again')",
                    c=n.clinic_id,
                )
            )

        await eventually(recorded)
        assert await n.opted_out("ada-again")
        assert await n.opted_out("ada")
        assert not await n.opted_out("cleo-again")
        opted_out = {
            e.client_id: e.event()
            for e in await n.outbox_events("SmsOptedOut")
            if e.client_id in ("ada", "ada-again")
        }
        assert sorted(opted_out) == ["ada", "ada-again"]
        for event in opted_out.values():
            assert isinstance(event, SmsOptedOut)
            assert (event.source, event.keyword) == ("sms_keyword", None)

        # START from the number opts its clients back in and ends the stop: the next new contact
        # with the number starts opted in.
        assert (await n.sms("START", from_number=ada.phone)).status_code == 200
        assert await n.rows("SELECT phone_digest FROM sms_stops") == []
        assert not await n.opted_out("ada-again")
        await n.publish(upserted(n, ada, "ada-third"))

        async def third() -> bool:
            return bool(
                await n.scalar(
                    "SELECT count(*) FROM consents WHERE clinic_id = :c AND client_id = 'ada-third'",
                    c=n.clinic_id,
                )
            )

        await eventually(third)
        assert not await n.opted_out("ada-third")

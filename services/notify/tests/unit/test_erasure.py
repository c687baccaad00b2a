"""A client's erasure on the in-memory unit of work: what notify deletes and keeps, the confirmation,
the tombstone's effect on the client's older events, and the stop of an opted-out number, kept as a
keyed hash: a contact recorded later with it starts opted out, until the number texts START."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from petportal_devkit.fakes import FakeUnitOfWork
from petportal_notify.domain.clinics import Clinic
from petportal_notify.domain.consent import Consent
from petportal_notify.domain.delivery import Delivery, Outgoing, Template
from petportal_notify.domain.stops import PhoneDigests, SmsStop, first_consent, stop_to_keep
from petportal_notify.service_layer import deliveries, services
from petportal_schemas import (
    ClientDataErased,
    ClientErasureRequested,
    ClientUpserted,
    Envelope,
    PatientUpserted,
    SmsOptedOut,
    topics,
)

pytestmark = pytest.mark.unit

CLINIC_NUMBER = "+14155550100"
ADA_PHONE = "+14155550111"  # k1, erased
BOB_PHONE = "+14155550122"  # k2, kept
KEY = b"unit-test-phone-hash-key"
PHONES = PhoneDigests(KEY)
T0 = datetime(2027, 3, 1, 12, tzinfo=UTC)


def erasure(client_id: str = "k1", at: datetime = T0, clinic_id: str = "clinic-1") -> Envelope:
    event = ClientErasureRequested(erasure_id=uuid.uuid4())
    return Envelope.wrap(event, clinic_id=clinic_id, client_id=client_id, producer="identity", occurred_at=at)


def upserted(
    client_id: str, phone: str | None, *, at: datetime | None = None, clinic_id: str = "clinic-1"
) -> tuple[Envelope, ClientUpserted]:
    event = ClientUpserted(
        first_name="Ada", last_name="Lovelace", email=f"{client_id}@example.com", phone=phone
    )
    envelope = Envelope.wrap(event, clinic_id=clinic_id, client_id=client_id, producer="sync", occurred_at=at)
    return envelope, event


async def erase(uow: FakeUnitOfWork[Any], envelope: Envelope) -> bool:
    event = envelope.event()
    assert isinstance(event, ClientErasureRequested)
    return await services.erase_client(uow, envelope, event, phones=PHONES)


async def sms(uow: FakeUnitOfWork[Any], body: str, sender: str) -> services.InboundResult:
    return await services.receive_sms(
        uow, to_number=CLINIC_NUMBER, from_number=sender, body=body, phones=PHONES
    )


def delivery(delivery_id: int, client_id: str, key: str, patient_id: str | None = None) -> Delivery:
    return Delivery(
        id=delivery_id,
        key=key,
        clinic_id="clinic-1",
        client_id=client_id,
        channel="sms",
        template=Template.SERVICE_REMINDER,
        params={"service": "Rabies", "due_on": "2027-03-04"},
        not_before=T0,
        subject_kind="service",
        subject_id=f"r-{key}",
        patient_id=patient_id,
    )


@pytest.fixture
def clinic(uow: FakeUnitOfWork[Any], repositories: Any) -> Any:
    """clinic-1 with k1 (Ada: a pet, a reminder, a text) and k2 (Bob: the same), both opted in."""
    store = repositories.notify
    store.clinics["clinic-1"] = Clinic("clinic-1", "Happy Paws", CLINIC_NUMBER)
    for n, client_id, phone, pet in ((1, "k1", ADA_PHONE, "p1"), (2, "k2", BOB_PHONE, "p2")):
        store.phones[("clinic-1", client_id)] = phone
        store.emails[("clinic-1", client_id)] = f"{client_id}@example.com"
        store.consents[("clinic-1", client_id)] = Consent(clinic_id="clinic-1", client_id=client_id)
        store.pets[("clinic-1", pet)] = f"pet of {client_id}"
        store.pet_owners[("clinic-1", pet)] = client_id
        store.deliveries[f"d-{client_id}"] = delivery(n, client_id, f"d-{client_id}", pet)
    store.pets[("clinic-1", "p-old")] = "recorded before pets had owners"  # found by k1's delivery
    store.deliveries["d-k1-old"] = delivery(3, "k1", "d-k1-old", "p-old")
    return store


# --- the phone digests and the domain rules -----------------------------------------------------


def test_a_digest_is_the_hmac_sha256_of_the_e164_number_under_the_key() -> None:
    digest = PHONES.digest(ADA_PHONE)
    assert digest == hmac.new(KEY, ADA_PHONE.encode(), hashlib.sha256).hexdigest()
    assert len(digest) == 64
    assert ADA_PHONE.removeprefix("+") not in digest
    assert PhoneDigests(b"another key").digest(ADA_PHONE) != digest
    assert PHONES.digest(BOB_PHONE) != digest
    assert "unit-test" not in repr(PHONES)  # the key stays out of logs
    with pytest.raises(ValueError, match="empty"):
        PhoneDigests(b"")


def test_an_erasure_keeps_the_stop_of_an_opted_out_number_only() -> None:
    opted_out = Consent(clinic_id="clinic-1", client_id="k1")
    opted_out.set_sms(False, "sms_keyword", at=T0)
    assert stop_to_keep(opted_out, ADA_PHONE, PHONES) == SmsStop("clinic-1", PHONES.digest(ADA_PHONE), T0)
    assert stop_to_keep(opted_out, None, PHONES) is None  # no number to stop
    assert stop_to_keep(Consent(clinic_id="clinic-1", client_id="k1"), ADA_PHONE, PHONES) is None
    assert stop_to_keep(None, ADA_PHONE, PHONES) is None


def test_a_new_contact_starts_opted_out_only_when_the_number_is_stopped() -> None:
    stopped = first_consent("clinic-1", "k9", number_stopped=True)
    assert (stopped.sms_opted_in, stopped.email_opted_in, stopped.source) == (False, True, "sms_keyword")
    fresh = first_consent("clinic-1", "k9", number_stopped=False)
    assert (fresh.sms_opted_in, fresh.source) == (True, "default")


# --- the erasure --------------------------------------------------------------------------------


async def test_the_erasure_deletes_the_clients_data_confirms_once_and_keeps_the_others(
    uow: FakeUnitOfWork[Any], clinic: Any
) -> None:
    await sms(uow, "Is Rex ready?", ADA_PHONE)
    await sms(uow, "Thanks!", BOB_PHONE)
    uow.published.clear()
    request = erasure()

    assert await erase(uow, request)

    assert clinic.phones == {("clinic-1", "k2"): BOB_PHONE}
    assert clinic.emails == {("clinic-1", "k2"): "k2@example.com"}
    assert list(clinic.consents) == [("clinic-1", "k2")]
    assert clinic.pets == {("clinic-1", "p2"): "pet of k2"}
    assert list(clinic.deliveries) == ["d-k2"]
    assert [(t.from_number, t.body) for t in clinic.inbound] == [(BOB_PHONE, "Thanks!")]
    assert list(clinic.clinics) == ["clinic-1"]  # clinic-wide rows stay
    assert clinic.stops == {}  # Ada had not opted out
    [confirmation] = uow.published
    event, asked = confirmation.event(), request.event()
    assert isinstance(event, ClientDataErased)
    assert isinstance(asked, ClientErasureRequested)
    assert (event.erasure_id, event.service) == (asked.erasure_id, "notify")
    assert (confirmation.topic, confirmation.key, confirmation.producer) == (
        topics.ERASURE,
        "clinic-1:k1",
        "notify",
    )
    assert uow.erased == {("clinic-1", "k1"): T0}

    # Sent again (identity asks until every service confirmed): nothing more is done or published.
    assert not await erase(uow, request)
    assert uow.published == [confirmation]


async def test_the_clients_older_events_are_refused_after_the_erasure_and_newer_ones_applied(
    uow: FakeUnitOfWork[Any], clinic: Any
) -> None:
    await erase(uow, erasure(at=T0))

    assert not await services.record_contact(
        uow, *upserted("k1", ADA_PHONE, at=T0 - timedelta(hours=1)), phones=PHONES
    )
    old_pet = PatientUpserted(patient_id="p1", name="Rex", species="dog")
    assert not await services.record_patient(
        uow,
        Envelope.wrap(old_pet, clinic_id="clinic-1", client_id="k1", producer="sync", occurred_at=T0),
        old_pet,
    )
    assert ("clinic-1", "k1") not in clinic.phones
    assert ("clinic-1", "p1") not in clinic.pets

    assert await services.record_contact(
        uow, *upserted("k1", ADA_PHONE, at=T0 + timedelta(seconds=1)), phones=PHONES
    )
    assert clinic.phones[("clinic-1", "k1")] == ADA_PHONE
    assert clinic.consents[("clinic-1", "k1")].sms_opted_in  # not opted out before: nothing kept


async def test_an_opted_out_client_leaves_only_a_keyed_hash_of_the_number(
    uow: FakeUnitOfWork[Any], clinic: Any
) -> None:
    await sms(uow, "STOP", ADA_PHONE)
    opted_out_at = clinic.consents[("clinic-1", "k1")].updated_at

    await erase(uow, erasure())

    assert clinic.stops == {
        ("clinic-1", PHONES.digest(ADA_PHONE)): SmsStop("clinic-1", PHONES.digest(ADA_PHONE), opted_out_at)
    }
    assert ADA_PHONE not in repr(clinic.stops)
    assert clinic.inbound == []  # the STOP itself was a text from the number


async def test_a_client_who_opted_out_in_the_portal_is_kept_stopped_too_and_one_without_phone_is_not(
    uow: FakeUnitOfWork[Any], clinic: Any
) -> None:
    await services.update_preferences(uow, "clinic-1", "k1", sms_opted_in=False, email_opted_in=True)
    clinic.phones[("clinic-1", "k2")] = None
    await services.update_preferences(uow, "clinic-1", "k2", sms_opted_in=False, email_opted_in=True)

    await erase(uow, erasure("k1"))
    await erase(uow, erasure("k2"))

    assert list(clinic.stops) == [("clinic-1", PHONES.digest(ADA_PHONE))]


# --- a stopped number afterwards ----------------------------------------------------------------


async def test_a_new_contact_with_a_stopped_number_starts_opted_out_and_it_is_published(
    uow: FakeUnitOfWork[Any], clinic: Any
) -> None:
    await sms(uow, "STOP", ADA_PHONE)
    await erase(uow, erasure(at=T0))
    uow.published.clear()

    # The same person, a new client record at the PIMS (and the same client again, later).
    assert await services.record_contact(uow, *upserted("k7", ADA_PHONE), phones=PHONES)
    assert await services.record_contact(
        uow, *upserted("k1", ADA_PHONE, at=T0 + timedelta(seconds=1)), phones=PHONES
    )

    for client_id in ("k7", "k1"):
        consent = clinic.consents[("clinic-1", client_id)]
        assert (consent.sms_opted_in, consent.email_opted_in, consent.source) == (False, True, "sms_keyword")
    assert sorted(e.client_id or "" for e in uow.published) == ["k1", "k7"]
    for envelope in uow.published:
        event = envelope.event()
        assert isinstance(event, SmsOptedOut)
        assert (event.source, event.keyword) == ("sms_keyword", None)
    # The stop stays until the number itself opts back in.
    assert ("clinic-1", PHONES.digest(ADA_PHONE)) in clinic.stops


async def test_a_stop_applies_to_its_clinic_and_number_only_and_not_to_known_clients(
    uow: FakeUnitOfWork[Any], clinic: Any
) -> None:
    await sms(uow, "STOP", ADA_PHONE)
    await erase(uow, erasure())
    uow.published.clear()

    await services.record_contact(uow, *upserted("k8", BOB_PHONE), phones=PHONES)  # another number
    await services.record_contact(uow, *upserted("k9", ADA_PHONE, clinic_id="clinic-2"), phones=PHONES)
    # A known client's update keeps their consent as it is (only a new consent starts opted out).
    await services.record_contact(uow, *upserted("k2", ADA_PHONE), phones=PHONES)

    assert clinic.consents[("clinic-1", "k8")].sms_opted_in
    assert clinic.consents[("clinic-2", "k9")].sms_opted_in
    assert clinic.consents[("clinic-1", "k2")].sms_opted_in
    assert uow.published == []


async def test_start_from_a_stopped_number_forgets_the_stop(uow: FakeUnitOfWork[Any], clinic: Any) -> None:
    await sms(uow, "STOP", ADA_PHONE)
    await erase(uow, erasure())
    await sms(uow, "STOP", ADA_PHONE)  # again, from a number no client has now: still kept
    assert ("clinic-1", PHONES.digest(ADA_PHONE)) in clinic.stops

    result = await sms(uow, "Unstop", ADA_PHONE)

    assert result.changed_clients == 0  # nobody has the number
    assert clinic.stops == {}
    await services.record_contact(uow, *upserted("k7", ADA_PHONE), phones=PHONES)
    assert clinic.consents[("clinic-1", "k7")].sms_opted_in


# --- a reminder on its way while the client is erased -------------------------------------------


async def test_a_reminder_sent_while_its_client_is_erased_raises_no_reminder_sent(
    uow: FakeUnitOfWork[Any], clinic: Any
) -> None:
    for key in ("d-k2", "d-k1-old"):
        del clinic.deliveries[key]

    class ErasingProvider:
        """Sends, and meanwhile the client's erasure commits."""

        async def send(self, message: Outgoing) -> str:
            await erase(uow, erasure("k1", at=datetime.now(UTC)))
            return "SM1"

        async def close(self) -> None:
            pass

    provider = ErasingProvider()
    dispatcher = deliveries.Dispatcher(
        lambda: uow, {"sms": provider, "email": provider}, link=lambda clinic_id: "https://p/"
    )
    assert await dispatcher.dispatch_once(at=T0) == 1

    assert clinic.deliveries == {}
    assert uow.published_types() == ["ClientDataErased"]

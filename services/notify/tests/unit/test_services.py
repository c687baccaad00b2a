"""notify's use cases on the in-memory unit of work."""

from __future__ import annotations

from typing import Any

import pytest

from petportal_devkit.fakes import FakeUnitOfWork
from petportal_notify.domain.clinics import Clinic, SmsNumberTaken
from petportal_notify.domain.consent import Consent
from petportal_notify.domain.stops import PhoneDigests
from petportal_notify.service_layer import services
from petportal_schemas import ClientUpserted, ClinicRegistered, Envelope, SmsOptedIn, SmsOptedOut, SmsReceived

pytestmark = pytest.mark.unit

CLINIC_NUMBER = "+14155550100"
SHARED_PHONE = "+14155550101"  # k1 and k2 (one household)
OWN_PHONE = "+14155550102"  # k3
PHONES = PhoneDigests(b"unit-test-phone-hash-key")


def registered(clinic_id: str = "clinic-1", number: str | None = CLINIC_NUMBER) -> tuple[Envelope, Any]:
    event = ClinicRegistered(name="Happy Paws", pims="ezyvet", sms_number=number)
    return Envelope.wrap(event, clinic_id=clinic_id, client_id=None, producer="sync"), event


def upserted(client_id: str, phone: str | None) -> tuple[Envelope, Any]:
    event = ClientUpserted(first_name="Ada", last_name="Lovelace", phone=phone)
    return Envelope.wrap(event, clinic_id="clinic-1", client_id=client_id, producer="sync"), event


@pytest.fixture
def clinic(repositories: Any) -> Any:
    """clinic-1 and its contacts k1, k2 (one phone), k3 and k4 (no phone), opted in."""
    store = repositories.notify
    store.clinics["clinic-1"] = Clinic("clinic-1", "Happy Paws", CLINIC_NUMBER)
    for client_id, phone in (("k1", SHARED_PHONE), ("k2", SHARED_PHONE), ("k3", OWN_PHONE), ("k4", None)):
        store.phones[("clinic-1", client_id)] = phone
        store.consents[("clinic-1", client_id)] = Consent(clinic_id="clinic-1", client_id=client_id)
    return store


async def sms(uow: FakeUnitOfWork[Any], body: str, *, sender: str = SHARED_PHONE) -> services.InboundResult:
    return await services.receive_sms(
        uow, to_number=CLINIC_NUMBER, from_number=sender, body=body, phones=PHONES
    )


# --- events consumed ----------------------------------------------------------------------------


async def test_a_registered_clinic_is_known_by_its_number_once_even_when_redelivered(
    uow: FakeUnitOfWork[Any], repositories: Any
) -> None:
    envelope, event = registered()
    assert await services.register_clinic(uow, envelope, event)
    assert not await services.register_clinic(uow, envelope, event)
    assert repositories.notify.clinics == {"clinic-1": Clinic("clinic-1", "Happy Paws", CLINIC_NUMBER)}
    assert uow.claimed == {("notify", envelope.event_id)}


async def test_a_clinic_number_held_by_another_clinic_is_refused_and_not_claimed(
    uow: FakeUnitOfWork[Any], repositories: Any
) -> None:
    await services.register_clinic(uow, *registered("clinic-1"))
    taken = registered("clinic-2")
    with pytest.raises(SmsNumberTaken, match="already belongs to another clinic"):
        await services.register_clinic(uow, *taken)
    assert ("notify", taken[0].event_id) not in uow.claimed
    assert uow.rollbacks == 1


async def test_a_contact_keeps_only_the_phone_and_starts_opted_in(
    uow: FakeUnitOfWork[Any], repositories: Any
) -> None:
    envelope, event = upserted("C-1", "+15005550101")
    assert await services.record_contact(uow, envelope, event, phones=PHONES)
    assert not await services.record_contact(uow, envelope, event, phones=PHONES)
    assert repositories.notify.phones == {("clinic-1", "C-1"): "+15005550101"}
    consent = repositories.notify.consents[("clinic-1", "C-1")]
    assert (consent.sms_opted_in, consent.email_opted_in, consent.source) == (True, True, "default")
    assert uow.claimed == {("notify", envelope.event_id)}


# --- inbound texts ------------------------------------------------------------------------------


async def test_stop_opts_out_every_client_with_the_senders_phone_and_publishes_once(
    uow: FakeUnitOfWork[Any], clinic: Any
) -> None:
    result = await sms(uow, "Stop")
    assert (result.changed_clients, "unsubscribed" in (result.reply or "")) == (2, True)
    assert [k for (_, k), c in clinic.consents.items() if not c.sms_opted_in] == ["k1", "k2"]
    assert sorted(e.client_id or "" for e in uow.published) == ["k1", "k2"]
    for envelope in uow.published:
        event = envelope.event()
        assert isinstance(event, SmsOptedOut)
        assert (event.source, event.keyword, envelope.producer) == ("sms_keyword", "STOP", "notify")

    again = await sms(uow, "STOPALL")
    assert again.changed_clients == 0
    assert "unsubscribed" in (again.reply or "")
    assert uow.published_types() == ["SmsOptedOut", "SmsOptedOut"]
    assert [(t.keyword, t.matched_clients) for t in clinic.inbound] == [("STOP", 2), ("STOPALL", 2)]


async def test_start_opts_a_client_back_in(uow: FakeUnitOfWork[Any], clinic: Any) -> None:
    await sms(uow, "STOP", sender=OWN_PHONE)
    result = await sms(uow, "unstop", sender=OWN_PHONE)
    assert result.changed_clients == 1
    assert clinic.consents[("clinic-1", "k3")].sms_opted_in
    assert uow.published_types() == ["SmsOptedOut", "SmsOptedIn"]
    event = uow.published[-1].event()
    assert isinstance(event, SmsOptedIn)
    assert event.keyword == "UNSTOP"


async def test_help_and_ordinary_texts_change_no_consent_and_are_logged(
    uow: FakeUnitOfWork[Any], clinic: Any
) -> None:
    help_reply = await sms(uow, "help")
    assert uow.published == []
    ordinary = await sms(uow, "please stop by", sender=OWN_PHONE)
    assert "Reply STOP to unsubscribe" in (help_reply.reply or "")
    assert (ordinary.reply, ordinary.changed_clients) == (None, 0)
    assert [(t.keyword, t.body) for t in clinic.inbound] == [("HELP", "help"), (None, "please stop by")]
    # The ordinary text goes to the sender's conversation (messaging appends it).
    [received] = uow.published
    event = received.event()
    assert isinstance(event, SmsReceived)
    assert (received.client_id, event.body) == ("k3", "please stop by")


async def test_a_text_from_a_shared_number_goes_to_each_client_and_a_strangers_to_no_one(
    uow: FakeUnitOfWork[Any], clinic: Any
) -> None:
    await sms(uow, "Is Rex ready?", sender=SHARED_PHONE)
    assert sorted(e.client_id or "" for e in uow.published) == ["k1", "k2"]
    uow.published.clear()
    stranger = await sms(uow, "Is Rex ready?", sender="+14155550199")
    assert stranger.reply is None
    assert uow.published == []
    assert clinic.inbound[-1].matched_clients == 0  # kept for staff, unmatched


async def test_a_stranger_gets_the_same_reply_and_nothing_changes(
    uow: FakeUnitOfWork[Any], clinic: Any
) -> None:
    stranger = await sms(uow, "STOP", sender="+14155550199")
    member = await sms(uow, "STOP", sender=OWN_PHONE)
    assert stranger.reply == member.reply
    assert stranger.changed_clients == 0
    assert [e.client_id for e in uow.published] == ["k3"]


@pytest.mark.parametrize("to_number", ["+14155550999", "not a number"])
async def test_a_text_to_an_unknown_clinic_number_is_refused(
    uow: FakeUnitOfWork[Any], clinic: Any, to_number: str
) -> None:
    with pytest.raises(services.UnknownClinicNumber, match="unknown clinic number"):
        await services.receive_sms(
            uow, to_number=to_number, from_number=OWN_PHONE, body="STOP", phones=PHONES
        )
    assert (uow.published, clinic.inbound) == ([], [])


# --- preferences and staff ----------------------------------------------------------------------


async def test_preferences_are_the_defaults_until_recorded(uow: FakeUnitOfWork[Any]) -> None:
    consent = await services.preferences(uow, "clinic-1", "k9")
    assert (consent.sms_opted_in, consent.email_opted_in) == (True, True)


async def test_a_portal_opt_out_is_published_and_an_email_change_is_not(
    uow: FakeUnitOfWork[Any], clinic: Any
) -> None:
    consent = await services.update_preferences(
        uow, "clinic-1", "k3", sms_opted_in=False, email_opted_in=False
    )
    assert (consent.sms_opted_in, consent.email_opted_in, consent.source) == (False, False, "portal")
    stored = await services.preferences(uow, "clinic-1", "k3")
    assert (stored.sms_opted_in, stored.email_opted_in) == (False, False)
    await services.update_preferences(uow, "clinic-1", "k3", sms_opted_in=False, email_opted_in=True)
    assert uow.published_types() == ["SmsOptedOut"]
    event = uow.published[0].event()
    assert isinstance(event, SmsOptedOut)
    assert (event.source, event.keyword) == ("portal", None)


async def test_staff_see_the_opt_out_indicator_of_a_known_client_only(
    uow: FakeUnitOfWork[Any], clinic: Any
) -> None:
    await sms(uow, "STOP", sender=OWN_PHONE)
    assert (await services.sms_status(uow, "clinic-1", "k3")).sms_opt_out_indicator
    assert not (await services.sms_status(uow, "clinic-1", "k1")).sms_opt_out_indicator
    with pytest.raises(services.UnknownClient, match="no client k9 at this clinic"):
        await services.sms_status(uow, "clinic-1", "k9")


# --- sending ------------------------------------------------------------------------------------

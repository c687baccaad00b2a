"""Get Help Now's options, from the clinic's settings and the parent's programs (the same one read as
the To-Do list): Care Plan live chat only for a member at a clinic with live chat on; booking as the
clinic set it, unknown until it says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from petportal_schemas import (
    ClientEnrolledInProgram,
    ClinicSettingsChanged,
    Envelope,
    Event,
    ProgramOffered,
)
from petportal_todo.domain import HelpOptions
from petportal_todo.service_layer.projection import apply_batch, parent_todo

from .fakes import FakeReadModel

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)


def env(event: Event, at: datetime = T0, client_id: str | None = None) -> tuple[Envelope, Event]:
    return Envelope.wrap(
        event, clinic_id="clinic-1", client_id=client_id, producer="sync", occurred_at=at
    ), event


CARE_PLAN = ProgramOffered(program_code="care-plan", name="Care Plan", call_to_action="Add a Care Member")


async def options(model: FakeReadModel, client_id: str = "client-1") -> HelpOptions:
    return (await parent_todo(model, "clinic-1", client_id))[1]


async def test_a_clinic_that_never_sent_its_settings_offers_no_chat_and_an_unknown_booking_mode() -> None:
    assert await options(FakeReadModel()) == HelpOptions(live_chat=False, booking_mode=None)


async def test_live_chat_is_for_a_care_plan_member_at_a_clinic_with_chat_on() -> None:
    model = FakeReadModel()
    await apply_batch(
        model,
        [
            env(CARE_PLAN),
            env(ClinicSettingsChanged(booking_mode="request", live_chat=True)),
            env(ClientEnrolledInProgram(program_code="care-plan"), client_id="member"),
        ],
    )
    assert await options(model, "member") == HelpOptions(live_chat=True, booking_mode="request")
    assert await options(model, "not-a-member") == HelpOptions(live_chat=False, booking_mode="request")


async def test_the_latest_settings_win_within_a_batch_and_across_batches() -> None:
    model = FakeReadModel()
    later = T0 + timedelta(minutes=1)
    await apply_batch(
        model,
        [
            env(ClientEnrolledInProgram(program_code="care-plan"), client_id="member"),
            env(ClinicSettingsChanged(booking_mode="direct", live_chat=True)),
            env(ClinicSettingsChanged(booking_mode="none", live_chat=False), at=later),
        ],
    )
    assert await options(model, "member") == HelpOptions(live_chat=False, booking_mode="none")
    await apply_batch(model, [env(ClinicSettingsChanged(booking_mode="request", live_chat=True), at=later)])
    assert await options(model, "member") == HelpOptions(live_chat=True, booking_mode="request")
    # Settings and programs are kept apart: a program offered later does not reset the settings.
    await apply_batch(model, [env(CARE_PLAN, at=later + timedelta(minutes=1))])
    assert await options(model, "member") == HelpOptions(live_chat=True, booking_mode="request")

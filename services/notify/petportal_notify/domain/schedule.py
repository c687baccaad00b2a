"""When reminders go out: lead times before a service's due date or an appointment, in the clinic's
timezone and inside the hours a clinic may text or email (no 3 a.m. reminders).

Rules (docs/notifications.md):
- a service reminder goes at `service_send_at` local time, `service_days` days before the due date;
- an appointment reminder goes `appointment_hours` hours before the start; one that would fall outside
  the allowed hours is moved earlier, to the end of the last allowed window before it;
- a lead time already past when the reminder becomes known is dropped, unless it is the last one and
  the service or appointment is still ahead: then it goes now (the next allowed moment), once;
- two lead times landing on the same moment make one reminder.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@dataclass(frozen=True)
class ReminderPolicy:
    service_days: tuple[int, ...] = (14, 3)
    appointment_hours: tuple[int, ...] = (48, 2)
    service_send_at: time = time(10, 0)
    allowed_from: time = time(9, 0)
    allowed_until: time = time(20, 0)


@dataclass(frozen=True)
class Slot:
    lead: str  # "14d", "2h": part of the idempotency key
    at: datetime  # UTC


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _allowed(local: datetime, policy: ReminderPolicy) -> bool:
    return policy.allowed_from <= local.time() <= policy.allowed_until


def latest_allowed_before(moment: datetime, tz: ZoneInfo, policy: ReminderPolicy) -> datetime:
    """`moment` if it is inside the allowed hours, else the end of the last allowed window before it."""
    local = moment.astimezone(tz)
    if _allowed(local, policy):
        return moment
    day = local.date() if local.time() > policy.allowed_until else local.date() - timedelta(days=1)
    return datetime.combine(day, policy.allowed_until, tz).astimezone(UTC)


def earliest_allowed_from(moment: datetime, tz: ZoneInfo, policy: ReminderPolicy) -> datetime:
    """`moment` if it is inside the allowed hours, else the start of the next allowed window."""
    local = moment.astimezone(tz)
    if _allowed(local, policy):
        return moment
    day = local.date() if local.time() < policy.allowed_from else local.date() + timedelta(days=1)
    return datetime.combine(day, policy.allowed_from, tz).astimezone(UTC)


def _finish(
    slots: list[Slot], ahead_until: datetime, now: datetime, tz: ZoneInfo, policy: ReminderPolicy
) -> list[Slot]:
    """Drop past lead times (catching up the last one if the event is still ahead), merge equal ones."""
    slots.sort(key=lambda s: s.at)
    future = [s for s in slots if s.at > now]
    past = [s for s in slots if s.at <= now]
    if not future and past:
        catch_up = earliest_allowed_from(now, tz, policy)
        if catch_up < ahead_until:
            future = [Slot(past[-1].lead, catch_up)]
    merged: list[Slot] = []
    for slot in future:
        if not merged or merged[-1].at != slot.at:
            merged.append(slot)
    return merged


def service_slots(due_on: date, timezone: str, now: datetime, policy: ReminderPolicy) -> list[Slot]:
    tz = zone(timezone)
    slots = [
        Slot(
            f"{days}d",
            datetime.combine(due_on - timedelta(days=days), policy.service_send_at, tz).astimezone(UTC),
        )
        for days in policy.service_days
    ]
    # Still worth a reminder until the end of the due day.
    ahead_until = datetime.combine(due_on + timedelta(days=1), time(0), tz).astimezone(UTC)
    return _finish(slots, ahead_until, now, tz, policy)


def appointment_slots(
    starts_at: datetime, timezone: str, now: datetime, policy: ReminderPolicy
) -> list[Slot]:
    tz = zone(timezone)
    slots = [
        Slot(f"{hours}h", latest_allowed_before(starts_at - timedelta(hours=hours), tz, policy))
        for hours in policy.appointment_hours
    ]
    return _finish(slots, starts_at, now, tz, policy)

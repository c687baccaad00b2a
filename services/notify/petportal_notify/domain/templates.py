"""What each message says, per channel, filled in with the clinic's name, help text and portal link.

Texts stay short (one or two SMS segments) and every recurring text says how to stop (CTIA);
emails say where to turn them off. Values are substituted, never evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from string import Template as _T
from typing import Any

from .delivery import CODES, Channel, ClinicProfile, Template
from .schedule import zone

STOP_LINE = "Reply STOP to opt out."


@dataclass(frozen=True)
class Rendered:
    subject: str | None  # email only
    body: str


_SMS: dict[Template, str] = {
    Template.SIGN_IN_CODE: "$clinic_name: your sign-in code is $code. It expires in $minutes minutes. "
    "Don't share it. $link",
    Template.ERASURE_CODE: "$clinic_name: your code to erase your pet portal data is $code. It expires in "
    "$minutes minutes. If you did not ask for this, ignore it.",
    Template.NEW_MESSAGES: "$clinic_name: you have $messages. Read and reply: $portal_link $stop",
    Template.SERVICE_REMINDER: "$clinic_name: $pet's $service is due $due. Book or view: $portal_link $stop",
    Template.APPOINTMENT_REMINDER: "$clinic_name: $pet has an appointment $when. Details: $portal_link $stop",
    Template.REQUEST_ANSWERED: "$clinic_name $answer. Details: $portal_link $stop",
    Template.REFILL_DECIDED: "$clinic_name $answer. Details: $portal_link $stop",
    Template.BOOKING_ANSWERED: "$clinic_name: $answer. Details: $portal_link $stop",
}

_SUBJECT: dict[Template, str] = {
    Template.SIGN_IN_CODE: "Your $clinic_name sign-in code: $code",
    Template.ERASURE_CODE: "Your code to erase your $clinic_name pet portal data: $code",
    Template.NEW_MESSAGES: "$clinic_name: you have $messages",
    Template.SERVICE_REMINDER: "$pet's $service is due $due",
    Template.APPOINTMENT_REMINDER: "Appointment reminder: $pet, $when",
    Template.REQUEST_ANSWERED: "Your appointment request$for_pet: $outcome",
    Template.REFILL_DECIDED: "Your refill request$for_pet: $outcome",
    Template.BOOKING_ANSWERED: "Your booking$for_pet: $outcome",
}

_EMAIL: dict[Template, str] = {
    Template.SIGN_IN_CODE: "Your sign-in code for $clinic_name's pet portal is:\n\n    $code\n\n"
    "It expires in $minutes minutes. Or sign in with this link:\n$link\n\n"
    "If you did not ask to sign in, ignore this email; nobody can sign in without the code.",
    Template.ERASURE_CODE: "You asked to erase your data from $clinic_name's pet portal. Your code is:\n\n"
    "    $code\n\n"
    "It expires in $minutes minutes. Once you enter it, your messages, photos and settings in the "
    "portal are erased for good (your clinic keeps its own records).\n\n"
    "If you did not ask for this, ignore this email: nothing is erased without the code.",
    Template.NEW_MESSAGES: "You have $messages from $clinic_name.\n\n"
    "Read and reply in the portal:\n$portal_link",
    Template.SERVICE_REMINDER: "$pet's $service is due $due.\n\nBook or see $pet's records in the portal:\n"
    "$portal_link",
    Template.APPOINTMENT_REMINDER: "This is a reminder that $pet has an appointment at $clinic_name "
    "$when.\n\n"
    "See the details in the portal:\n$portal_link",
    Template.REQUEST_ANSWERED: "$clinic_name $answer.\n\n"
    "See the clinic's answer in the portal:\n$portal_link",
    Template.REFILL_DECIDED: "$clinic_name $answer.\n\nSee the clinic's answer in the portal:\n$portal_link",
    Template.BOOKING_ANSWERED: "$clinic_name: $answer.\n\nSee your bookings in the portal:\n$portal_link",
}


def _day(value: date) -> str:
    return f"on {value:%a} {value.day} {value:%b %Y}"


def _moment(value: datetime, timezone: str) -> str:
    local = value.astimezone(zone(timezone))
    return f"on {local:%a} {local.day} {local:%b} at {local:%H:%M}"


def _for_pet(params: dict[str, Any]) -> str:
    """' for Rex' when notify knows the pet's name; nothing otherwise."""
    name = params.get("pet_name")
    return f" for {name}" if name else ""


def _request_answer(params: dict[str, Any], timezone: str) -> str:
    """What the clinic did with an appointment request ("accepted your appointment request for Rex on
    Thu 10 Dec at 15:30"); the time in the clinic's timezone."""
    outcome = str(params.get("outcome", ""))
    request = f"your appointment request{_for_pet(params)}"
    at = params.get("appointment_at")
    moment = _moment(datetime.fromisoformat(str(at)), timezone) if at else ""
    if outcome == "accepted":
        return f"accepted {request} {moment}" if moment else f"accepted {request}"
    if outcome == "proposed":
        another = f"proposed another time for {request}"
        return f"{another}: {moment.removeprefix('on ')}" if moment else another
    if outcome == "declined":
        return f"declined {request}"
    return f"answered {request}"


# The answer in a word or three, for an email's subject.
_OUTCOMES = {
    Template.REQUEST_ANSWERED: {
        "accepted": "accepted",
        "declined": "declined",
        "proposed": "another time proposed",
    },
    Template.REFILL_DECIDED: {"approved": "approved", "denied": "denied"},
    Template.BOOKING_ANSWERED: {"confirmed": "confirmed", "rejected": "not booked"},
}


def _booking_answer(params: dict[str, Any], timezone: str) -> str:
    """What became of an online booking ("Rex is booked on Thu 10 Dec at 15:30"); the time in the
    clinic's timezone. A refused one says the time was not booked and to pick another."""
    at = params.get("starts_at")
    moment = _moment(datetime.fromisoformat(str(at)), timezone) if at else ""
    pet = str(params.get("pet_name") or "your pet")
    if params.get("outcome") == "confirmed":
        return f"{pet} is booked {moment}".rstrip()
    return f"we could not book {pet} {moment}; please pick another time".replace("  ", " ")


def _refill_decision(params: dict[str, Any]) -> str:
    """What the clinic decided on a refill request ("approved your refill request for Rex")."""
    outcome = str(params.get("outcome", ""))
    verb = outcome if outcome in ("approved", "denied") else "answered"
    return f"{verb} your refill request{_for_pet(params)}"


def values(
    template: Template, clinic: ClinicProfile, params: dict[str, Any], portal_link: str
) -> dict[str, str]:
    """Everything a template may name, as text."""
    count = int(params.get("count", 1))
    out = {
        "clinic_name": clinic.name,
        "portal_link": portal_link,
        "stop": STOP_LINE,
        "pet": str(params.get("pet_name") or "Your pet"),
        "messages": "1 new message" if count == 1 else f"{count} new messages",
        "code": str(params.get("code", "")),
        "minutes": str(params.get("minutes", 10)),
        "link": str(params.get("link", portal_link)),
        "service": str(params.get("service", "care")),
        "due": "",
        "when": "",
        "answer": "",
        "for_pet": _for_pet(params),
        "outcome": "",
    }
    if template is Template.SERVICE_REMINDER and params.get("due_on"):
        out["due"] = _day(date.fromisoformat(str(params["due_on"])))
    if template is Template.APPOINTMENT_REMINDER and params.get("starts_at"):
        out["when"] = _moment(datetime.fromisoformat(str(params["starts_at"])), clinic.timezone)
    if template in _OUTCOMES:
        out["outcome"] = _OUTCOMES[template].get(str(params.get("outcome")), "answered")
    if template is Template.REQUEST_ANSWERED:
        out["answer"] = _request_answer(params, clinic.timezone)
    if template is Template.REFILL_DECIDED:
        out["answer"] = _refill_decision(params)
    if template is Template.BOOKING_ANSWERED:
        out["answer"] = _booking_answer(params, clinic.timezone)
    return out


def render(
    template: Template, channel: Channel, clinic: ClinicProfile, params: dict[str, Any], portal_link: str
) -> Rendered:
    fill = values(template, clinic, params, portal_link)
    if channel == "sms":
        return Rendered(None, " ".join(_T(_SMS[template]).safe_substitute(fill).split()))
    footer = [f"\n\n-- \n{clinic.name}"]
    if clinic.help_text:
        footer.append(clinic.help_text)
    if clinic.phone:
        footer.append(clinic.phone)
    if template not in CODES:
        footer.append(f"To stop these emails, turn email notifications off in the portal: {portal_link}")
    body = _T(_EMAIL[template]).safe_substitute(fill) + "\n".join(footer) + "\n"
    return Rendered(_T(_SUBJECT[template]).safe_substitute(fill), body)

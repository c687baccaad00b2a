"""Which service answers a public path, and which token the gateway demands first (no I/O)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Upstream = Literal["identity", "pets", "messaging", "todo", "sync", "notify", "gateway"]
# "none": nothing checked here. /pims and /webhooks are still authenticated, by the upstream
# (clinic API key in sync, Twilio's signature in notify), which holds the secrets.
Auth = Literal["none", "parent", "staff"]


@dataclass(frozen=True)
class Route:
    upstream: Upstream
    auth: Auth


def _under(prefix: str) -> str:
    """The prefix itself or anything below it, on a segment boundary (/api/v1/pets, /api/v1/pets/x)."""
    return rf"{re.escape(prefix)}(?:/.*)?"


_CLIENT = r"/clinic/v1/clients/[^/]+"

# First match wins. docs/service-apis.md is the source of this table.
ROUTES: tuple[tuple[re.Pattern[str], Route], ...] = tuple(
    (re.compile(pattern, re.DOTALL), route)
    for pattern, route in (
        (_under("/api/v1/auth"), Route("identity", "none")),
        (_under("/api/v1/account"), Route("identity", "parent")),
        # An erasure's progress: its unguessable id is the key (the parent's sessions ended with it).
        (_under("/api/v1/erasures"), Route("identity", "none")),
        # The gateway's own GET routes; with a trailing slash they are redirected.
        (r"/api/v1/home/?", Route("gateway", "parent")),
        (r"/healthz/?", Route("gateway", "none")),
        (r"/readyz/?", Route("gateway", "none")),
        (_under("/api/v1/todo"), Route("todo", "parent")),
        (_under("/api/v1/pets"), Route("pets", "parent")),
        # The pets and upcoming appointments in one read (the home screen's part; the app may use it).
        (r"/api/v1/pets-overview/?", Route("pets", "parent")),
        # A parent's answer to an appointment goes to the PIMS through sync's outbound queue.
        (r"/api/v1/appointments/[^/]+/answer/?", Route("sync", "parent")),
        (_under("/api/v1/appointments"), Route("pets", "parent")),
        (_under("/api/v1/booking"), Route("sync", "parent")),
        (_under("/api/v1/appointment-requests"), Route("pets", "parent")),
        (_under("/api/v1/refill-requests"), Route("pets", "parent")),
        (_under("/api/v1/forms"), Route("pets", "parent")),
        (_under("/api/v1/conversation"), Route("messaging", "parent")),
        (_under("/api/v1/feedback"), Route("messaging", "parent")),
        (_under("/api/v1/notifications"), Route("notify", "parent")),
        (_under("/clinic/v1/auth"), Route("identity", "none")),
        (_under("/clinic/v1/sign-in-link"), Route("identity", "staff")),
        (_under("/clinic/v1/erasures"), Route("identity", "staff")),
        (rf"{_CLIENT}/(?:messages|conversation)(?:/.*)?", Route("messaging", "staff")),
        (_under("/clinic/v1/conversations"), Route("messaging", "staff")),
        (_under("/clinic/v1/feedback"), Route("messaging", "staff")),
        (rf"{_CLIENT}/sms-status/?", Route("notify", "staff")),
        (_under("/clinic/v1/inbound-texts"), Route("notify", "staff")),
        (_under("/clinic/v1/deliveries"), Route("notify", "staff")),
        (_under("/clinic/v1/appointment-requests"), Route("pets", "staff")),
        (_under("/clinic/v1/refill-requests"), Route("pets", "staff")),
        (_under("/clinic/v1/forms"), Route("pets", "staff")),
        (_under("/clinic/v1/form-submissions"), Route("pets", "staff")),
        (_under("/clinic/v1/outbound"), Route("sync", "staff")),
        (_under("/pims/v1"), Route("sync", "none")),
        (_under("/webhooks/sms"), Route("notify", "none")),
    )
)


def resolve(path: str) -> Route | None:
    """The route for a decoded request path, or None (404).

    Paths with dot segments are refused: an HTTP client or upstream could normalise
    `/api/v1/auth/../account` into a path other than the one this decision was made on.
    """
    if any(segment in (".", "..") for segment in path.split("/")):
        return None
    for pattern, route in ROUTES:
        if pattern.fullmatch(path):
            return route
    return None

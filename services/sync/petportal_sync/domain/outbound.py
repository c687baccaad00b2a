"""The outbound queue: what the portal asks of a clinic's PIMS (bookings, a parent's answer to an
appointment, refill requests, completed forms), pulled by the clinic's connector.

Delivery is at least once: an item stays `pending`, and is pulled again by a connector that starts
over from an earlier cursor, until the connector acknowledges it (`ack`: the PIMS took it) or refuses
it (`nack`, with a reason). Both are idempotent by item id: the same answer again changes nothing and
answers the same; the other answer after one was given is a conflict. A refusal because the PIMS
could not match the client or pet flags the item for staff, who retry it (after fixing the match in
the PIMS) or dismiss it: the portal never lets the PIMS create a client or pet silently.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, get_args

from petportal_schemas.booking import NackReason

NACK_REASONS: frozenset[str] = frozenset(get_args(NackReason))
FLAGGING_REASONS: frozenset[str] = frozenset({"client_not_matched", "patient_not_matched"})
MAX_REASON_TEXT = 500


class OutboundKind(StrEnum):
    BOOKING = "booking"
    APPOINTMENT_ANSWER = "appointment_answer"
    APPOINTMENT_REQUEST = "appointment_request"
    REFILL_REQUEST = "refill_request"
    FORM_SUBMISSION = "form_submission"


class OutboundStatus(StrEnum):
    PENDING = "pending"
    ACKED = "acked"
    NACKED = "nacked"
    FLAGGED = "flagged"


class OutboundNotFound(LookupError):
    """No such item of the clinic's."""


class OutboundConflict(ValueError):
    """The item was already answered the other way, or is not in the state the action needs."""


@dataclass
class OutboundItem:
    clinic_id: str
    client_id: str
    kind: OutboundKind
    payload: dict[str, Any]
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    status: OutboundStatus = OutboundStatus.PENDING
    seq: int = 0  # the cursor: assigned by the store, new again on a retry
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    answered_at: datetime | None = None
    reason: str | None = None
    reason_text: str | None = None
    pims_reference: str | None = None

    def ack(self, pims_reference: str | None, at: datetime) -> bool:
        """The PIMS took it; True the first time only."""
        if self.status is OutboundStatus.ACKED:
            return False
        if self.status is not OutboundStatus.PENDING:
            raise OutboundConflict(f"the item was already refused ({self.reason})")
        self.status, self.pims_reference, self.answered_at = OutboundStatus.ACKED, pims_reference, at
        return True

    def nack(self, reason: str, text: str | None, at: datetime) -> bool:
        """The PIMS refused it; True the first time only. Flagged for staff when it could not match."""
        if self.status in (OutboundStatus.NACKED, OutboundStatus.FLAGGED):
            return False
        if self.status is OutboundStatus.ACKED:
            raise OutboundConflict("the item was already acknowledged")
        self.status = OutboundStatus.FLAGGED if reason in FLAGGING_REASONS else OutboundStatus.NACKED
        self.reason, self.reason_text, self.answered_at = reason, text, at
        return True

    def retry(self) -> None:
        """Staff fixed the match in the PIMS: the item goes back to the queue (with a new cursor)."""
        if self.status is not OutboundStatus.FLAGGED:
            raise OutboundConflict("only an item flagged for staff can be retried")
        self.status, self.reason, self.reason_text, self.answered_at = (
            OutboundStatus.PENDING,
            None,
            None,
            None,
        )

    def dismiss(self, at: datetime) -> None:
        """Staff give up on a flagged item: it counts as refused."""
        if self.status is not OutboundStatus.FLAGGED:
            raise OutboundConflict("only an item flagged for staff can be dismissed")
        self.status, self.answered_at = OutboundStatus.NACKED, at

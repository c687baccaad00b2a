"""Events of `notify` beyond consent, version 1."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from . import topics
from .envelope import Event, register


@register
class SmsReceived(Event):
    """The client texted the clinic's number (not a keyword): the text belongs in their conversation.

    Carries the text, so it is personal data on the notify topic (docs/architecture.md: retention and
    erasure). A number shared by several clients of the clinic yields one event per client."""

    EVENT_TYPE = "SmsReceived"
    VERSION = 1
    TOPIC = topics.NOTIFY

    text_id: uuid.UUID
    body: str = Field(min_length=1, max_length=1600)
    received_at: datetime

"""Clinic forms assigned to parents and their submissions, version 1.

Published by `pets` on the pets topic, keyed `clinic_id:client_id`. `todo` shows a pending form on the
parent's To-Do list until it is submitted; `sync` turns a submission into an item of the outbound
queue, and the PIMS connector fetches the answers (and the PDF) from the clinic API
(`GET /clinic/v1/form-submissions/{submission_id}`). No answers and no free text travel here: the
form's title is the clinic's own words (never personal data), kept short so the To-Do list can show it.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from . import topics
from .envelope import Event, register
from .events import PimsId

MAX_FORM_TITLE = 120


@register
class FormAssigned(Event):
    """The clinic assigned one version of a form to the parent (about one of their pets or
    appointments, if it says so): it is theirs to fill in."""

    EVENT_TYPE = "FormAssigned"
    VERSION = 1
    TOPIC = topics.PETS

    assignment_id: uuid.UUID
    form_id: uuid.UUID
    version: int = Field(ge=1, description="the form's version the parent is to fill in")
    title: str = Field(min_length=1, max_length=MAX_FORM_TITLE)
    patient_id: PimsId | None = None
    appointment_id: PimsId | None = None
    assigned_at: datetime


@register
class FormSubmitted(Event):
    """The parent submitted the assigned form; the answers (valid against `version`) stay in pets."""

    EVENT_TYPE = "FormSubmitted"
    VERSION = 1
    TOPIC = topics.PETS

    assignment_id: uuid.UUID
    submission_id: uuid.UUID
    form_id: uuid.UUID
    version: int = Field(ge=1, description="the form's version the answers were given to")
    patient_id: PimsId | None = None
    appointment_id: PimsId | None = None
    submitted_at: datetime

"""Clinic forms over HTTP: the clinic publishes forms, assigns them and reads the submissions (JSON
and PDF); the parent lists their forms, reads one to fill in and submits it once.

A refused request is answered `{"detail": <message>, "field": <the field at fault>}`: 404 for a form,
assignment, submission, client, pet or appointment that is not the caller's (alike for someone else's
and none), 409 when the state forbids it (already completed; no PDF before completion). A form
definition or answers that break the rules are validation errors like any other (422, one error per
field at fault, e.g. `loc` ["body", "answers", "pet_weight"]); nothing is stored then.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from petportal_runtime.auth import CurrentParent, CurrentStaff
from petportal_runtime.edge import validation_error_response
from petportal_runtime.errors import ErrorStatuses
from petportal_runtime.text import Text
from petportal_schemas.envelope import ID_PATTERN

from ..adapters.form_pdf import render_form
from ..domain.forms import (
    FIELD_NAME_PATTERN,
    MAX_DESCRIPTION,
    MAX_FIELDS,
    MAX_LABEL,
    MAX_OPTION,
    MAX_OPTIONS,
    MAX_TEXT,
    MAX_TITLE,
    AssignmentStatus,
    FieldType,
    FormAssignment,
    FormConflict,
    FormDefinition,
    FormField,
    FormNotFound,
    FormSubmission,
    InvalidForm,
)
from ..service_layer import forms as services
from ..service_layer.forms import CompletedForm
from .dependencies import UnitOfWork

FormId = Annotated[uuid.UUID, Path(description="a form (the same for all its versions)")]
AssignmentId = Annotated[uuid.UUID, Path(description="a form assigned to a client")]
SubmissionId = Annotated[uuid.UUID, Path(description="a completed form")]
Option = Annotated[Text, Field(min_length=1, max_length=MAX_OPTION)]


class FormFieldBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=FIELD_NAME_PATTERN, description="the answer's key: lower case, digits, _")
    label: Text = Field(min_length=1, max_length=MAX_LABEL, description="what the parent reads")
    type: FieldType = Field(
        description="text, choice (one of `options`), date (YYYY-MM-DD), or signature (the typed full "
        "name and a consent box that must be ticked; the time is recorded)"
    )
    required: bool = False
    options: list[Option] | None = Field(default=None, max_length=MAX_OPTIONS, description="choice only")
    max_length: int | None = Field(default=None, ge=1, le=MAX_TEXT, description="text only (default 1000)")

    def field(self) -> FormField:
        return FormField(
            name=self.name,
            label=self.label.strip(),
            type=self.type,
            required=self.required,
            options=tuple(o.strip() for o in self.options) if self.options is not None else None,
            max_length=self.max_length,
        )


class FormBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Text = Field(min_length=1, max_length=MAX_TITLE, pattern=r"\S")
    description: Text | None = Field(default=None, max_length=MAX_DESCRIPTION)
    fields: list[FormFieldBody] = Field(min_length=1, max_length=MAX_FIELDS)


class FormFieldPublic(BaseModel):
    name: str
    label: str
    type: FieldType
    required: bool
    options: list[str] | None
    max_length: int | None

    @classmethod
    def of(cls, f: FormField) -> FormFieldPublic:
        return cls(
            name=f.name,
            label=f.label,
            type=f.type,
            required=f.required,
            options=list(f.options) if f.options is not None else None,
            max_length=f.max_length,
        )


class FormPublic(BaseModel):
    form_id: uuid.UUID
    version: int
    title: str
    description: str | None
    fields: list[FormFieldPublic] = Field(description="in the order to show them")
    json_schema: dict[str, Any] = Field(
        description="the JSON Schema (draft 2020-12) the answers are validated against, built from the fields"
    )
    published_at: datetime

    @classmethod
    def of(cls, d: FormDefinition) -> FormPublic:
        return cls(
            form_id=d.form_id,
            version=d.version,
            title=d.title,
            description=d.description,
            fields=[FormFieldPublic.of(f) for f in d.fields],
            json_schema=d.schema,
            published_at=d.published_at,
        )


class FormList(BaseModel):
    forms: list[FormPublic] = Field(description="the latest version of each form, by title")


class AssignmentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_id: str = Field(pattern=ID_PATTERN, description="the client who fills it in")
    patient_id: str | None = Field(default=None, pattern=ID_PATTERN, description="one of the client's pets")
    appointment_id: str | None = Field(
        default=None,
        pattern=ID_PATTERN,
        description="one of the client's appointments (its pet is the form's when patient_id is left out)",
    )


class AssignmentPublic(BaseModel):
    assignment_id: uuid.UUID
    clinic_id: str
    client_id: str
    form_id: uuid.UUID
    version: int = Field(description="the form's version to fill in, pinned when it was assigned")
    title: str
    patient_id: str | None
    appointment_id: str | None
    status: AssignmentStatus
    assigned_at: datetime
    submission_id: uuid.UUID | None
    completed_at: datetime | None

    @classmethod
    def of(cls, a: FormAssignment) -> AssignmentPublic:
        return cls(
            assignment_id=a.id,
            clinic_id=a.clinic_id,
            client_id=a.client_id,
            form_id=a.form_id,
            version=a.version,
            title=a.title,
            patient_id=a.patient_id,
            appointment_id=a.appointment_id,
            status=a.status,
            assigned_at=a.assigned_at,
            submission_id=a.submission_id,
            completed_at=a.completed_at,
        )


class ParentFormList(BaseModel):
    forms: list[AssignmentPublic] = Field(description="pending and completed, newest first")


class ParentForm(BaseModel):
    assignment: AssignmentPublic
    form: FormPublic = Field(description="the version assigned: the one to fill in")
    answers: dict[str, Any] | None = Field(description="your answers once submitted")


class SubmissionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answers: dict[str, Any] = Field(
        description="by field name: text and choice a string, date YYYY-MM-DD, signature "
        '{"full_name": "...", "consent": true}; an optional field may be left out'
    )


class SubmissionPublic(BaseModel):
    submission_id: uuid.UUID
    assignment_id: uuid.UUID
    clinic_id: str
    client_id: str
    form_id: uuid.UUID
    version: int = Field(description="the form's version the answers were given to")
    patient_id: str | None
    appointment_id: str | None
    answers: dict[str, Any] = Field(description="each signature with `signed_at`, the server's time")
    submitted_at: datetime

    @classmethod
    def of(cls, s: FormSubmission) -> SubmissionPublic:
        return cls(
            submission_id=s.id,
            assignment_id=s.assignment_id,
            clinic_id=s.clinic_id,
            client_id=s.client_id,
            form_id=s.form_id,
            version=s.version,
            patient_id=s.patient_id,
            appointment_id=s.appointment_id,
            answers=s.answers,
            submitted_at=s.submitted_at,
        )


class SubmissionDetail(BaseModel):
    submission: SubmissionPublic
    form: FormPublic = Field(description="the version answered")


class SubmissionList(BaseModel):
    submissions: list[AssignmentPublic] = Field(
        description="the clinic's assigned forms, newest first: pending ones have no submission_id yet"
    )


class FormProblem(BaseModel):
    detail: str
    field: str = Field(description="the request's field at fault")


def _answer(description: str) -> dict[str, Any]:
    return {"description": description, "model": FormProblem}


PDF_ANSWER: dict[int | str, dict[str, Any]] = {200: {"content": {"application/pdf": {}}}}

parent = APIRouter(prefix="/api/v1/forms", tags=["pets"])
clinic = APIRouter(prefix="/clinic/v1/forms", tags=["clinic"])
submissions = APIRouter(prefix="/clinic/v1/form-submissions", tags=["clinic"])


def _pdf(completed: CompletedForm, name: uuid.UUID) -> Response:
    return Response(
        render_form(completed),
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="form-{name}.pdf"',
            "Cache-Control": "private, no-store",
        },
    )


# --- the parent -----------------------------------------------------------------------------------


@parent.get("")
async def my_forms(me: CurrentParent, uow: UnitOfWork) -> ParentFormList:
    """Your clinics' forms for you to fill in, and those you have completed, newest first."""
    found = await services.parent_forms(uow, me.memberships)
    return ParentFormList(forms=[AssignmentPublic.of(a) for a in found])


@parent.get("/{assignment_id}", responses={404: _answer("no such form of yours")})
async def my_form(assignment_id: AssignmentId, me: CurrentParent, uow: UnitOfWork) -> ParentForm:
    """One of your forms: its fields (and JSON Schema) to fill in, and your answers once submitted."""
    found = await services.parent_form(uow, me.memberships, assignment_id)
    return ParentForm(
        assignment=AssignmentPublic.of(found.assignment),
        form=FormPublic.of(found.definition),
        answers=found.submission.answers if found.submission else None,
    )


@parent.post(
    "/{assignment_id}/submission",
    status_code=201,
    responses={404: _answer("no such form of yours"), 409: _answer("already completed")},
)
async def submit_form(
    assignment_id: AssignmentId, body: SubmissionBody, me: CurrentParent, uow: UnitOfWork
) -> SubmissionPublic:
    """Submit your answers, once. Answers that break the form are refused (422, one error per field,
    `loc` ["body", "answers", <field>]) and nothing is stored."""
    submission = await services.submit_form(
        uow, me.memberships, assignment_id, body.answers, datetime.now(UTC)
    )
    return SubmissionPublic.of(submission)


@parent.get(
    "/{assignment_id}/pdf",
    response_class=Response,
    responses={**PDF_ANSWER, 404: _answer("no such form of yours"), 409: _answer("not completed yet")},
)
async def my_form_pdf(assignment_id: AssignmentId, me: CurrentParent, uow: UnitOfWork) -> Response:
    """Your completed form as a PDF."""
    return _pdf(await services.parent_completed_form(uow, me.memberships, assignment_id), assignment_id)


# --- the clinic -----------------------------------------------------------------------------------


@clinic.post("", status_code=201)
async def publish_form(body: FormBody, staff: CurrentStaff, uow: UnitOfWork) -> FormPublic:
    """Publish a new form (version 1): its fields, from which its JSON Schema is built."""
    definition = await services.publish_form(
        uow,
        staff.clinic_id,
        title=body.title,
        description=body.description,
        fields=[f.field() for f in body.fields],
        at=datetime.now(UTC),
    )
    return FormPublic.of(definition)


@clinic.get("")
async def clinic_forms(staff: CurrentStaff, uow: UnitOfWork) -> FormList:
    """The clinic's forms, the latest version of each, by title."""
    return FormList(forms=[FormPublic.of(d) for d in await services.clinic_forms(uow, staff.clinic_id)])


@clinic.get("/{form_id}", responses={404: _answer("no such form (or version) at the clinic")})
async def clinic_form(
    form_id: FormId,
    staff: CurrentStaff,
    uow: UnitOfWork,
    version: Annotated[int | None, Query(ge=1, le=1_000_000, description="the latest when left out")] = None,
) -> FormPublic:
    """One of the clinic's forms, its latest version or the one asked for."""
    return FormPublic.of(await services.clinic_form(uow, staff.clinic_id, form_id, version))


@clinic.post(
    "/{form_id}/versions",
    status_code=201,
    responses={
        200: {"description": "the same as the current version: nothing published", "model": FormPublic},
        404: _answer("no such form at the clinic"),
        409: _answer("another version was published at the same time"),
    },
)
async def revise_form(
    form_id: FormId, body: FormBody, response: Response, staff: CurrentStaff, uow: UnitOfWork
) -> FormPublic:
    """Publish a changed form as its next version (201); the same contents again change nothing (200).
    Forms already assigned keep the version they were assigned."""
    definition, created = await services.revise_form(
        uow,
        staff.clinic_id,
        form_id,
        title=body.title,
        description=body.description,
        fields=[f.field() for f in body.fields],
        at=datetime.now(UTC),
    )
    if not created:
        response.status_code = 200
    return FormPublic.of(definition)


@clinic.post(
    "/{form_id}/assignments",
    status_code=201,
    responses={404: _answer("no such form, client, pet or appointment at the clinic (field says which)")},
)
async def assign_form(
    form_id: FormId, body: AssignmentBody, staff: CurrentStaff, uow: UnitOfWork
) -> AssignmentPublic:
    """Assign the form's current version to a client, maybe about one of their pets and appointments:
    it shows on their To-Do list until they submit it. An appointment of another pet than the one
    named is a validation error on `appointment_id`."""
    assignment = await services.assign_form(
        uow,
        staff.clinic_id,
        form_id,
        client_id=body.client_id,
        patient_id=body.patient_id,
        appointment_id=body.appointment_id,
        at=datetime.now(UTC),
    )
    return AssignmentPublic.of(assignment)


@submissions.get("")
async def clinic_submissions(
    staff: CurrentStaff, uow: UnitOfWork, status: Annotated[AssignmentStatus | None, Query()] = None
) -> SubmissionList:
    """The clinic's assigned forms, newest first (?status=completed: the submissions; pending: those
    still to be filled in)."""
    found = await services.clinic_assignments(uow, staff.clinic_id, status)
    return SubmissionList(submissions=[AssignmentPublic.of(a) for a in found])


@submissions.get("/{submission_id}", responses={404: _answer("no such submission at the clinic")})
async def clinic_submission(
    submission_id: SubmissionId, staff: CurrentStaff, uow: UnitOfWork
) -> SubmissionDetail:
    """A completed form: the answers (each signature with its time) and the version they answered."""
    completed = await services.clinic_submission(uow, staff.clinic_id, submission_id)
    return SubmissionDetail(
        submission=SubmissionPublic.of(completed.submission), form=FormPublic.of(completed.definition)
    )


@submissions.get(
    "/{submission_id}/pdf",
    response_class=Response,
    responses={**PDF_ANSWER, 404: _answer("no such submission at the clinic")},
)
async def clinic_submission_pdf(
    submission_id: SubmissionId, staff: CurrentStaff, uow: UnitOfWork
) -> Response:
    """A completed form as a PDF, for the clinic's records."""
    return _pdf(await services.clinic_submission(uow, staff.clinic_id, submission_id), submission_id)


# Refusals answer {"detail", "field"}.
ERRORS: ErrorStatuses = {FormNotFound: 404, FormConflict: 409}


async def _invalid(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InvalidForm)
    return validation_error_response(
        [{"type": p.type, "loc": ("body", *p.loc), "msg": p.msg} for p in exc.problems]
    )


def install_error_handlers(app: FastAPI) -> None:
    """Answers that break the form's schema: one validation error per field at fault."""
    app.add_exception_handler(InvalidForm, _invalid)

"""Use cases of clinic forms: the clinic publishes (and revises) forms and assigns them to clients; the
parent lists theirs and submits one once, answers checked against the version assigned. Each
assignment and each submission is published on the pets topic with the change (FormAssigned,
FormSubmitted: ids, version and the form's title, never the answers)."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from petportal_runtime.auth import ClientRef
from petportal_schemas import FormAssigned, FormSubmitted

from ..domain import Clinic, Pet
from ..domain.forms import (
    AssignmentStatus,
    FieldProblem,
    FormAssignment,
    FormConflict,
    FormDefinition,
    FormField,
    FormNotFound,
    FormSubmission,
    InvalidForm,
)
from .services import stage_event
from .unit_of_work import PetsUnitOfWork

LIST_LIMIT = 200


@dataclass(frozen=True)
class AssignedForm:
    """An assignment with the version it pins, and its submission once completed."""

    assignment: FormAssignment
    definition: FormDefinition
    submission: FormSubmission | None = None


@dataclass(frozen=True)
class CompletedForm:
    """What a completed form's PDF shows: the answers, the version they answered, the clinic, the pet."""

    assignment: FormAssignment
    definition: FormDefinition
    submission: FormSubmission
    clinic: Clinic
    pet: Pet | None


# --- the clinic -----------------------------------------------------------------------------------


async def publish_form(
    uow: PetsUnitOfWork,
    clinic_id: str,
    *,
    title: str,
    description: str | None,
    fields: Sequence[FormField],
    at: datetime,
) -> FormDefinition:
    """Version 1 of a new form; `InvalidForm` for fields that break the rules."""
    definition = FormDefinition.publish(clinic_id, title, description, fields, at)
    async with uow:
        await uow.repositories.forms.add_version(definition)
    return definition


async def revise_form(
    uow: PetsUnitOfWork,
    clinic_id: str,
    form_id: uuid.UUID,
    *,
    title: str,
    description: str | None,
    fields: Sequence[FormField],
    at: datetime,
) -> tuple[FormDefinition, bool]:
    """The form's next version with these contents, and True; its current version and False when
    they are the current version's. Assignments already made keep the version they pinned."""
    async with uow:
        current = await uow.repositories.forms.definition(clinic_id, form_id)
        if current is None:
            raise FormNotFound("form_id", "no such form")
        following = current.revised(title, description, fields, at)
        if following is None:
            return current, False
        if not await uow.repositories.forms.add_version(following):
            raise FormConflict("form_id", "another version of this form was published at the same time")
    return following, True


async def clinic_forms(uow: PetsUnitOfWork, clinic_id: str) -> list[FormDefinition]:
    async with uow:
        return await uow.repositories.forms.definitions(clinic_id, limit=LIST_LIMIT)


async def clinic_form(
    uow: PetsUnitOfWork, clinic_id: str, form_id: uuid.UUID, version: int | None
) -> FormDefinition:
    async with uow:
        found = await uow.repositories.forms.definition(clinic_id, form_id, version)
    if found is None:
        raise FormNotFound("form_id" if version is None else "version", "no such form or version")
    return found


async def assign_form(
    uow: PetsUnitOfWork,
    clinic_id: str,
    form_id: uuid.UUID,
    *,
    client_id: str,
    patient_id: str | None,
    appointment_id: str | None,
    at: datetime,
) -> FormAssignment:
    """The form's current version for the client to fill in, about one of their pets and one of their
    appointments if given (an appointment's pet is the assignment's pet when none is named);
    published (FormAssigned) with it. `FormNotFound` naming the field for a form, client, pet or
    appointment that pets does not know at the clinic (or that is not the client's); `InvalidForm`
    for an appointment of another pet than the one named."""
    async with uow:
        forms = uow.repositories.forms
        definition = await forms.definition(clinic_id, form_id)
        if definition is None:
            raise FormNotFound("form_id", "no such form")
        if not await forms.knows_client(clinic_id, client_id):
            raise FormNotFound("client_id", f"no pet of client {client_id} at this clinic")
        client = ClientRef(clinic_id=clinic_id, client_id=client_id)
        if patient_id is not None and not await uow.repositories.pets.find([client], patient_id):
            raise FormNotFound("patient_id", f"client {client_id} has no pet {patient_id}")
        if appointment_id is not None:
            appointment = await forms.appointment(clinic_id, client_id, appointment_id)
            if appointment is None:
                raise FormNotFound(
                    "appointment_id", f"client {client_id} has no appointment {appointment_id}"
                )
            if patient_id is None:
                patient_id = appointment.patient_id
            elif appointment.patient_id not in (None, patient_id):
                raise InvalidForm(
                    [FieldProblem(("appointment_id",), "value_error", "this appointment is for another pet")]
                )
        assignment = FormAssignment(
            clinic_id,
            client_id,
            definition.form_id,
            definition.version,
            definition.title,
            patient_id=patient_id,
            appointment_id=appointment_id,
            assigned_at=at,
        )
        await forms.add_assignment(assignment)
        await stage_event(
            uow,
            clinic_id,
            client_id,
            FormAssigned(
                assignment_id=assignment.id,
                form_id=assignment.form_id,
                version=assignment.version,
                title=assignment.title,
                patient_id=assignment.patient_id,
                appointment_id=assignment.appointment_id,
                assigned_at=at,
            ),
            at,
        )
    return assignment


async def clinic_assignments(
    uow: PetsUnitOfWork, clinic_id: str, status: AssignmentStatus | None
) -> list[FormAssignment]:
    async with uow:
        return await uow.repositories.forms.assignments_for_clinic(clinic_id, status, limit=LIST_LIMIT)


async def clinic_submission(uow: PetsUnitOfWork, clinic_id: str, submission_id: uuid.UUID) -> CompletedForm:
    """One of the clinic's submissions, with the version it answered; `FormNotFound` otherwise."""
    async with uow:
        forms = uow.repositories.forms
        submission = await forms.submission(clinic_id, submission_id)
        if submission is None:
            raise FormNotFound("submission_id", "no such form submission")
        return await _completed(uow, submission)


async def _completed(uow: PetsUnitOfWork, submission: FormSubmission) -> CompletedForm:
    forms = uow.repositories.forms
    assignment = await forms.assignment(submission.clinic_id, submission.assignment_id)
    definition = await forms.definition(submission.clinic_id, submission.form_id, submission.version)
    if assignment is None or definition is None:  # written together, erased together
        raise FormNotFound("submission_id", "no such form submission")
    clinic = (await uow.repositories.clinics.get_many([submission.clinic_id]))[submission.clinic_id]
    pet = None
    if submission.patient_id is not None:
        client = ClientRef(clinic_id=submission.clinic_id, client_id=submission.client_id)
        found = await uow.repositories.pets.find([client], submission.patient_id)
        pet = found[0] if found else None
    return CompletedForm(assignment, definition, submission, clinic, pet)


# --- the parent -----------------------------------------------------------------------------------


async def parent_forms(uow: PetsUnitOfWork, memberships: Collection[ClientRef]) -> list[FormAssignment]:
    """The parent's forms at all their clinics, pending and completed, newest first."""
    async with uow:
        return await uow.repositories.forms.assignments_for_clients(memberships, limit=LIST_LIMIT)


async def _parent_assignment(
    uow: PetsUnitOfWork, memberships: Collection[ClientRef], assignment_id: uuid.UUID, *, lock: bool = False
) -> FormAssignment:
    """One of the parent's assignments; `FormNotFound` alike for another parent's and for none."""
    for clinic_id in sorted({m.clinic_id for m in memberships}):
        found = await uow.repositories.forms.assignment(clinic_id, assignment_id, lock=lock)
        if found is not None and ClientRef(clinic_id=clinic_id, client_id=found.client_id) in memberships:
            return found
    raise FormNotFound("assignment_id", "no such form of yours")


async def parent_form(
    uow: PetsUnitOfWork, memberships: Collection[ClientRef], assignment_id: uuid.UUID
) -> AssignedForm:
    """One of the parent's forms with the version to fill in (and their answers once submitted)."""
    async with uow:
        assignment = await _parent_assignment(uow, memberships, assignment_id)
        forms = uow.repositories.forms
        definition = await forms.definition(assignment.clinic_id, assignment.form_id, assignment.version)
        if definition is None:
            raise FormNotFound("assignment_id", "no such form of yours")
        submission = None
        if assignment.submission_id is not None:
            submission = await forms.submission(assignment.clinic_id, assignment.submission_id)
    return AssignedForm(assignment, definition, submission)


async def parent_completed_form(
    uow: PetsUnitOfWork, memberships: Collection[ClientRef], assignment_id: uuid.UUID
) -> CompletedForm:
    """One of the parent's completed forms for its PDF; `FormConflict` while it is pending."""
    async with uow:
        assignment = await _parent_assignment(uow, memberships, assignment_id)
        submission = None
        if assignment.submission_id is not None:
            submission = await uow.repositories.forms.submission(
                assignment.clinic_id, assignment.submission_id
            )
        if submission is None:
            raise FormConflict("assignment_id", "this form has not been completed yet")
        return await _completed(uow, submission)


async def submit_form(
    uow: PetsUnitOfWork,
    memberships: Collection[ClientRef],
    assignment_id: uuid.UUID,
    answers: Mapping[str, Any],
    at: datetime,
) -> FormSubmission:
    """The parent's answers to one of their pending forms, valid against the version assigned, stored
    with it and published (FormSubmitted), once. `FormNotFound` alike for another parent's and none,
    `FormConflict` when already completed, `InvalidForm` naming each field at fault (nothing stored)."""
    async with uow:
        assignment = await _parent_assignment(uow, memberships, assignment_id, lock=True)
        forms = uow.repositories.forms
        definition = await forms.definition(assignment.clinic_id, assignment.form_id, assignment.version)
        if definition is None:
            raise FormNotFound("assignment_id", "no such form of yours")
        submission = assignment.complete(definition, assignment.client_id, answers, at)
        if not await forms.add_submission(submission):
            raise FormConflict("assignment_id", "this form has already been completed")
        await forms.save_assignment(assignment)
        await stage_event(
            uow,
            assignment.clinic_id,
            assignment.client_id,
            FormSubmitted(
                assignment_id=assignment.id,
                submission_id=submission.id,
                form_id=submission.form_id,
                version=submission.version,
                patient_id=submission.patient_id,
                appointment_id=submission.appointment_id,
                submitted_at=at,
            ),
            at,
        )
    return submission

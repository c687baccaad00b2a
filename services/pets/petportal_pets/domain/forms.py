"""Clinic forms: the clinic publishes a form (a list of fields, from which a JSON Schema, draft
2020-12, is built and kept with it), assigns it to a client (about one of their pets or appointments,
if it says so), and the parent fills it in once. Answers are validated against the exact version
assigned and stored with it.

A form's `form_id` never changes; publishing changed fields, title or description makes version n+1.
An assignment pins the version current when it was made: the parent fills in what the clinic
assigned, the form cannot change between showing it and submitting it, and a submission answers
exactly that version (the clinic assigns again to ask for a newer one).

A signature field is a typed full name and a consent box that must be ticked; the stored answer adds
`signed_at` (the server's time of the submission), so the signer and the time are recorded.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from jsonschema.exceptions import ValidationError
from jsonschema.validators import Draft202012Validator

from petportal_runtime.errors import Refusal

MAX_FIELDS = 50
MAX_TITLE = 120  # petportal_schemas.forms.MAX_FORM_TITLE: the title travels in FormAssigned
MAX_DESCRIPTION = 2000
MAX_LABEL = 200
MAX_OPTIONS = 50
MAX_OPTION = 100
MAX_TEXT = 5000
DEFAULT_TEXT = 1000
MAX_SIGNER_NAME = 200
FIELD_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


class FieldType(StrEnum):
    TEXT = "text"
    CHOICE = "choice"
    DATE = "date"
    SIGNATURE = "signature"


class AssignmentStatus(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"


class FormError(Refusal):
    """A form, assignment or submission the rules refuse; `field` names the part of the request at
    fault. The message is shown to the caller."""


class FormNotFound(FormError):
    """No such form, assignment, submission, client, pet or appointment of the caller's (alike for
    someone else's and none)."""


class FormConflict(FormError):
    """The assignment is already completed (or not yet, for its PDF); a version was published at the
    same time."""


@dataclass(frozen=True)
class FieldProblem:
    """One field's error, as the API's validation errors show it: `loc` below the request body."""

    loc: tuple[str | int, ...]
    type: str
    msg: str


class InvalidForm(Exception):
    """A definition or answers that break the rules: every field's problem, nothing stored."""

    def __init__(self, problems: Sequence[FieldProblem]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, p.loc))}: {p.msg}" for p in problems))
        self.problems = tuple(problems)


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    type: FieldType
    required: bool = False
    options: tuple[str, ...] | None = None  # choice only
    max_length: int | None = None  # text only (DEFAULT_TEXT when not said)

    def as_json(self) -> dict[str, Any]:
        value: dict[str, Any] = {
            "name": self.name,
            "label": self.label,
            "type": self.type.value,
            "required": self.required,
        }
        if self.options is not None:
            value["options"] = list(self.options)
        if self.max_length is not None:
            value["max_length"] = self.max_length
        return value

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> FormField:
        options = value.get("options")
        return cls(
            name=value["name"],
            label=value["label"],
            type=FieldType(value["type"]),
            required=bool(value.get("required", False)),
            options=tuple(options) if options is not None else None,
            max_length=value.get("max_length"),
        )


def check_fields(fields: Sequence[FormField]) -> tuple[FormField, ...]:
    """The fields, or `InvalidForm` naming each bad one (`loc` "fields", index, attribute): names
    unique, options only for (and required by) a choice, a max_length only for text."""
    problems: list[FieldProblem] = []
    if not fields:
        problems.append(FieldProblem(("fields",), "value_error", "a form has at least one field"))
    if len(fields) > MAX_FIELDS:
        problems.append(FieldProblem(("fields",), "value_error", f"a form has at most {MAX_FIELDS} fields"))
    names: set[str] = set()
    for index, f in enumerate(fields):
        at = ("fields", index)
        if f.name in names:
            problems.append(FieldProblem((*at, "name"), "value_error", f"two fields are named {f.name!r}"))
        names.add(f.name)
        if f.type is FieldType.CHOICE:
            if not f.options:
                problems.append(FieldProblem((*at, "options"), "value_error", "a choice needs options"))
            elif len(set(f.options)) != len(f.options):
                problems.append(FieldProblem((*at, "options"), "value_error", "the options repeat"))
        elif f.options is not None:
            problems.append(FieldProblem((*at, "options"), "value_error", "only a choice has options"))
        if f.max_length is not None and f.type is not FieldType.TEXT:
            problems.append(FieldProblem((*at, "max_length"), "value_error", "only text has a max_length"))
    if problems:
        raise InvalidForm(problems)
    return tuple(fields)


def _property(f: FormField) -> dict[str, Any]:
    base: dict[str, Any] = {"title": f.label}
    match f.type:
        case FieldType.TEXT:
            text: dict[str, Any] = {"type": "string", "maxLength": f.max_length or DEFAULT_TEXT}
            if f.required:
                text |= {"minLength": 1, "pattern": r"\S"}  # not blank
            return base | text
        case FieldType.CHOICE:
            return base | {"type": "string", "enum": list(f.options or ())}
        case FieldType.DATE:
            return base | {"type": "string", "format": "date"}
        case FieldType.SIGNATURE:
            return base | {
                "type": "object",
                "description": "your full name, typed, and your consent",
                "properties": {
                    "full_name": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": MAX_SIGNER_NAME,
                        "pattern": r"\S",
                    },
                    "consent": {"const": True},
                },
                "required": ["full_name", "consent"],
                "additionalProperties": False,
            }


def build_schema(title: str, description: str | None, fields: Sequence[FormField]) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a form's answers: an object with one property per field,
    the required ones required, nothing else allowed."""
    schema: dict[str, Any] = {
        "$schema": SCHEMA_DIALECT,
        "title": title,
        "type": "object",
        "properties": {f.name: _property(f) for f in fields},
        "required": [f.name for f in fields if f.required],
        "additionalProperties": False,
    }
    if description:
        schema["description"] = description
    return schema


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class FormDefinition:
    """One version of a clinic's form."""

    clinic_id: str
    title: str
    description: str | None
    fields: tuple[FormField, ...]
    form_id: uuid.UUID = field(default_factory=uuid.uuid4)
    version: int = 1
    published_at: datetime = field(default_factory=now)
    schema: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.schema:
            self.schema = build_schema(self.title, self.description, self.fields)

    @classmethod
    def publish(
        cls, clinic_id: str, title: str, description: str | None, fields: Sequence[FormField], at: datetime
    ) -> FormDefinition:
        """Version 1 of a new form; `InvalidForm` for fields that break the rules."""
        return cls(
            clinic_id,
            title.strip(),
            (description or "").strip() or None,
            check_fields(fields),
            published_at=at,
        )

    def revised(
        self, title: str, description: str | None, fields: Sequence[FormField], at: datetime
    ) -> FormDefinition | None:
        """The next version with these contents; None when they are this version's (nothing changes)."""
        following = FormDefinition.publish(self.clinic_id, title, description, fields, at)
        if (following.title, following.description, following.fields) == (
            self.title,
            self.description,
            self.fields,
        ):
            return None
        following.form_id, following.version = self.form_id, self.version + 1
        return following

    def field_named(self, name: str) -> FormField | None:
        return next((f for f in self.fields if f.name == name), None)

    def check_answers(self, answers: Mapping[str, Any], at: datetime) -> dict[str, Any]:
        """The answers as stored, valid against this version's schema: each signature with the time it
        was given (`signed_at`, the server's), signer names and text as typed (signer names trimmed).
        `InvalidForm` with one problem per field at fault (`loc` "answers", field, ...), else."""
        problems = answer_problems(self.schema, answers)
        if problems:
            raise InvalidForm(problems)
        stored: dict[str, Any] = {}
        for name, value in answers.items():
            f = self.field_named(name)
            if f is not None and f.type is FieldType.SIGNATURE:
                stored[name] = {
                    "full_name": str(value["full_name"]).strip(),
                    "consent": True,
                    "signed_at": at.astimezone(UTC).isoformat(),
                }
            else:
                stored[name] = value
        return stored


# Schema keyword → (error type, message) as the API says it (the value itself is never repeated).
_MESSAGES = {
    "enum": ("enum", "choose one of the options"),
    "format": ("date_parsing", "a date as YYYY-MM-DD"),
    "const": ("consent_required", "tick the box to give your consent"),
    "maxLength": ("string_too_long", "at most {limit} characters"),
    "minLength": ("missing", "this field is required"),
    "pattern": ("missing", "this field is required"),
}


def _message(error: ValidationError) -> tuple[str, str]:
    """(type, message) of one schema error, in the words of the API (never the value itself)."""
    kind = str(error.validator)
    if kind == "type":
        expected = str(error.validator_value)
        return f"{expected}_type", f"should be a{'n' if expected == 'object' else ''} {expected}"
    if kind in _MESSAGES:
        error_type, message = _MESSAGES[kind]
        return error_type, message.format(limit=error.validator_value)
    return "value_error", "this answer is not valid"


def answer_problems(schema: Mapping[str, Any], answers: Mapping[str, Any]) -> list[FieldProblem]:
    """Every field at fault in `answers` against a form's schema, one problem per field path, sorted
    by path: a missing required answer at its own name, an answer to no field at its name."""
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    found: dict[tuple[str | int, ...], FieldProblem] = {}

    def add(path: Iterable[str | int], kind: str, message: str) -> None:
        loc = ("answers", *path)
        found.setdefault(loc, FieldProblem(loc, kind, message))

    for error in validator.iter_errors(dict(answers)):
        path = list(error.absolute_path)
        if error.validator == "required" and isinstance(error.instance, Mapping):
            for name in error.validator_value:
                if name not in error.instance:
                    add([*path, name], "missing", "this field is required")
        elif error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
            known = (error.schema.get("properties") or {}).keys()
            for name in error.instance:
                if name not in known:
                    add([*path, name], "extra_forbidden", "this form has no such field")
        else:
            add(path, *_message(error))
    return [found[loc] for loc in sorted(found, key=lambda loc: tuple(map(str, loc)))]


@dataclass
class FormAssignment:
    """A form (one version) for a client to fill in, maybe about one pet and one appointment."""

    clinic_id: str
    client_id: str
    form_id: uuid.UUID
    version: int
    title: str  # the version's, kept for the lists
    patient_id: str | None = None
    appointment_id: str | None = None
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    status: AssignmentStatus = AssignmentStatus.PENDING
    assigned_at: datetime = field(default_factory=now)
    submission_id: uuid.UUID | None = None
    completed_at: datetime | None = None

    def complete(
        self, definition: FormDefinition, client_id: str, answers: Mapping[str, Any], at: datetime
    ) -> FormSubmission:
        """The parent's answers to the assigned version, once: `FormConflict` when already completed,
        `InvalidForm` (nothing changes) for answers that break the form."""
        if self.status is not AssignmentStatus.PENDING:
            raise FormConflict("assignment_id", "this form has already been completed")
        if (definition.form_id, definition.version) != (self.form_id, self.version):
            raise ValueError("answers to another version than the assigned one")
        stored = definition.check_answers(answers, at)
        submission = FormSubmission(
            clinic_id=self.clinic_id,
            client_id=client_id,
            assignment_id=self.id,
            form_id=self.form_id,
            version=self.version,
            patient_id=self.patient_id,
            appointment_id=self.appointment_id,
            answers=stored,
            submitted_at=at,
        )
        self.status, self.submission_id, self.completed_at = AssignmentStatus.COMPLETED, submission.id, at
        return submission


@dataclass
class FormSubmission:
    """A completed form: the answers and the exact version they answered."""

    clinic_id: str
    client_id: str
    assignment_id: uuid.UUID
    form_id: uuid.UUID
    version: int
    answers: dict[str, Any]
    submitted_at: datetime
    patient_id: str | None = None
    appointment_id: str | None = None
    id: uuid.UUID = field(default_factory=uuid.uuid4)

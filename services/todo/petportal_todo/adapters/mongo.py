"""The read model in MongoDB (PyMongo's async API).

Collections:
- `parents`: `_id` "clinic_id:client_id", clinic_id, client_id, unread_message_ids (a set),
  sms_opted_out_us / sms_opted_in_us (latest of each, epoch microseconds), enrolled_programs,
  reminders {patient: {reminder: due date as YYYY-MM-DD}} (open service reminders),
  answers {patient: {request id: {kind, outcome, answered_us}}} (the clinic's answers to the parent's
  requests), seen_requests {request id: seen_us} (the requests whose answer the parent has seen: an
  answer is on the list while its request id is not a key here), forms {assignment id: {title,
  assigned_us}} (the clinic's forms assigned to the parent), completed_forms {assignment id:
  submitted_us} (a form is on the list while its assignment id is not a key here), appointments
  {appointment id: {patient_id, starts_us, timezone, type, reason}} (the appointments the PIMS holds
  as scheduled), pet_appointments {patient: {appointment id: true}} (an appointment of a pet is shown
  only while it is listed under that pet: a pet's removal is one $unset), answered_appointments
  {appointment id: answered_us} (an appointment is on the list while its id is not a key here, and
  while it starts within the next week), updated_at.
- `clinics`: `_id` clinic_id, offered_programs {code: {name, call_to_action}}, booking_mode,
  live_chat, appointment_visibility {visible_types, hidden_types, hidden_reasons}, updated_at.
- `inbox`: `_id` event id (unique by construction), event_type, occurred_at, applied_at.
- `erased`: `_id` "clinic_id:client_id" of an erased parent, erased_us (the latest erasure's time,
  epoch microseconds). Tombstones, kept by `drop` (and so by `rebuild`): events about the parent
  from before the erasure stay ignored, replays included. Only the ids: nothing personal.

A batch is written in one multi-document transaction: one bulk_write per collection, then the inbox
inserts, commit together or not at all. Every update is idempotent (sets, $max, last writer wins per
clinic), and the inbox is written last: on a store that does not keep a transaction atomic (nx-27017
can commit a killed client's half-done transaction), the worst a crash leaves is effects without
their inbox records, and redelivering those events changes nothing. An erasure deletes the parent's
document before its tombstone is written, so that a half-committed erasure is applied again when
redelivered (a tombstone written without the deletion would make the redelivered request ignored).

Kept to what nx-27017 (the local server) does like MongoDB: instants are stored as integers
(epoch microseconds, for $max) or ISO-8601 strings (for people), because nx-27017 turns a BSON date
written by $set/$max into an existing document into a string; and every parent update carries
$addToSet on enrolled_programs (an empty $each at worst) so the array exists from the first write,
because nx-27017 ignores $addToSet on an existing document that lacks the field. The fields added
since (reminders, answers, seen_requests, forms, completed_forms, appointments, pet_appointments,
answered_appointments) are maps written with $set/$unset of one path per member, which also work on
documents written before them. No $max on a nested path: on an upsert that inserts, nx-27017 stores
"a.b" as one field named "a.b", not as field b of a subdocument a. No arrays of subdocuments either:
nx-27017 stores a subdocument $push-ed into an existing document as a JSON string.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Sequence
from contextlib import AsyncExitStack
from datetime import UTC, date, datetime, timedelta
from types import TracebackType
from typing import Any, Self

import pymongo
from pymongo import AsyncMongoClient, DeleteOne, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import CollectionInvalid, ConnectionFailure, ExecutionTimeout, PyMongoError

from petportal_runtime.unavailable import Dependency
from petportal_runtime.uow import meanwhile
from petportal_schemas.records import AppointmentVisibility

from ..domain import (
    AppliedEvent,
    ClinicChange,
    ClinicView,
    ParentChange,
    ParentView,
    PendingForm,
    Program,
    ProjectionChanges,
    RequestAnswer,
    ScheduledAppointment,
    parent_id,
)

Document = dict[str, Any]

PARENTS = "parents"
CLINICS = "clinics"
INBOX = "inbox"
ERASED = "erased"
# What `drop` removes: the projection. Not the tombstones (ERASED).
COLLECTIONS = (PARENTS, CLINICS, INBOX)

# A batch write is a transaction of up to a thousand updates: it gets longer than the bound of an API
# read, which a slow store could otherwise make it miss every time (and the consumer never progress).
BATCH_WRITE_TIMEOUT_SECONDS = 60.0


def _timed_out(exc: BaseException) -> bool:
    return isinstance(exc, PyMongoError) and exc.timeout


MONGODB = Dependency("mongodb", (ConnectionFailure, ExecutionTimeout), ("pymongo",), _timed_out)


def make_client(url: str, *, timeout: float = 2.0) -> AsyncMongoClient[Document]:
    """Every operation is bounded by `timeout` seconds (PyMongo's client-side operation timeout,
    server selection and connecting included) unless a `pymongo.timeout()` block says otherwise."""
    timeout_ms = int(timeout * 1000)
    return AsyncMongoClient(
        url,
        tz_aware=True,
        timeoutMS=timeout_ms,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=timeout_ms,
        appname="petportal-todo",
    )


class MongoReadModel:
    def __init__(self, client: AsyncMongoClient[Document], database: str) -> None:
        self.client = client
        self.db = client[database]
        self._parents = self.db[PARENTS]  # made once: a collection object per read costs a little
        self.erasures_written = 0

    async def ping(self) -> None:
        await self.client.admin.command("ping")

    async def ensure_indexes(self) -> None:
        """The parents' index and the collections `views` reads (at start-up and after `drop`):
        nx-27017 fails a $unionWith of a collection that does not exist yet."""
        await self.db[PARENTS].create_index("clinic_id", name="ix_parents_clinic_id")
        if CLINICS not in await self.db.list_collection_names():
            with contextlib.suppress(CollectionInvalid):  # made meanwhile by another replica
                await self.db.create_collection(CLINICS)

    async def drop(self) -> None:
        """The projection's collections, inbox included; the tombstones stay."""
        for name in COLLECTIONS:
            await self.db.drop_collection(name)

    async def close(self) -> None:
        await self.client.close()

    def unit_of_work(self) -> MongoUnitOfWork:
        return MongoUnitOfWork(self)

    async def views(self, clinic_id: str, client_id: str) -> tuple[ParentView | None, ClinicView | None]:
        """The parent's and the clinic's documents in one round trip: a point read of the parent
        with the clinic's point read unioned in ($unionWith, MongoDB 4.4+). Half the client and
        server CPU of two find_one, and one round trip of latency."""
        pid = parent_id(clinic_id, client_id)
        cursor = await self._parents.aggregate(
            [
                {"$match": {"_id": pid}},
                {"$unionWith": {"coll": CLINICS, "pipeline": [{"$match": {"_id": clinic_id}}]}},
            ]
        )
        parent: ParentView | None = None
        clinic: ClinicView | None = None
        # A parent's _id has a ":" and a clinic's cannot (ids match [A-Za-z0-9._-]).
        async for doc in cursor:
            if doc["_id"] == pid:
                parent = parent_view(doc)
            else:
                clinic = clinic_view(doc)
        return parent, clinic


class MongoUnitOfWork:
    """One session; `write` is one multi-document transaction.

    The inbox inserts are the claim: their unique `_id` makes a batch holding an event applied before
    (a redelivery, or a zombie consumer during a rebalance) fail and roll back as a whole, and
    `apply_batch` then reads the inbox and writes the rest. Reads are plain reads before the
    transaction, whose first command is a write, which nx-27017 needs: it starts a transaction only
    on a write carrying `startTransaction` (a leading find would leave the writes outside any
    transaction).
    """

    def __init__(self, model: MongoReadModel) -> None:
        self._model = model
        self._stack = AsyncExitStack()
        self._session: AsyncClientSession | None = None

    async def __aenter__(self) -> Self:
        self._session = await self._stack.enter_async_context(self._model.client.start_session())
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._session = None
        await self._stack.__aexit__(exc_type, exc, tb)

    @property
    def session(self) -> AsyncClientSession:
        if self._session is None:
            raise RuntimeError("unit of work used outside its block")
        return self._session

    async def already_applied(self, event_ids: Sequence[str]) -> set[str]:
        cursor = self._model.db[INBOX].find({"_id": {"$in": list(set(event_ids))}}, {"_id": 1})
        return {doc["_id"] async for doc in cursor}

    async def tombstones(self, parent_ids: Collection[str]) -> dict[str, datetime]:
        """A plain read before the transaction."""
        cursor = self._model.db[ERASED].find({"_id": {"$in": list(set(parent_ids))}})
        return {doc["_id"]: EPOCH + timedelta(microseconds=int(doc["erased_us"])) async for doc in cursor}

    async def write(self, changes: ProjectionChanges, applied_at: datetime) -> None:
        if not changes.events:
            return
        with pymongo.timeout(BATCH_WRITE_TIMEOUT_SECONDS):
            await self._write(changes, applied_at)

    async def _write(self, changes: ProjectionChanges, applied_at: datetime) -> None:
        db, session = self._model.db, self.session
        now = iso(applied_at)
        # Commits when the block ends, aborts when it raises. The first command must be a write
        # (nx-27017 starts the transaction on it); the inbox comes last (see the module docstring).
        async with await session.start_transaction():
            inbox: list[Document] | None = None
            if changes.parents:
                ops = [op for c in changes.parents.values() for op in _parent_updates(c, now)]
                # The inbox documents are built while the server applies the updates.
                written, inbox = await meanwhile(
                    db[PARENTS].bulk_write(ops, session=session), lambda: inbox_documents(changes.events, now)
                )
                # A document created by an update that only pulled read messages has no
                # unread_message_ids array yet (see `_parent_updates`).
                if created := [
                    key
                    for key in (written.upserted_ids or {}).values()
                    if (c := changes.parents.get(key)) is not None and c.read and not c.received
                ]:
                    await db[PARENTS].update_many(
                        {"_id": {"$in": created}, "unread_message_ids": {"$exists": False}},
                        {"$set": {"unread_message_ids": []}},
                        session=session,
                    )
            if changes.clinics:
                await db[CLINICS].bulk_write(
                    [clinic_update(c, applied_at) for c in changes.clinics.values()], session=session
                )
            if erasures := [
                tombstone(key, c.erased_at) for key, c in changes.parents.items() if c.erased_at is not None
            ]:
                # After the deletions (see the module docstring), before the inbox.
                await db[ERASED].bulk_write(erasures, session=session)
            if inbox is None:
                inbox = inbox_documents(changes.events, now)
            await db[INBOX].insert_many(inbox, session=session)


def inbox_documents(events: Sequence[AppliedEvent], applied_at: str) -> list[Document]:
    documents: list[Document] = []
    for e in events:
        document = {
            "_id": str(e.event_id),
            "event_type": e.event_type,
            "occurred_at": iso(e.occurred_at),
            "applied_at": applied_at,
        }
        if e.ignored_reason:
            document["ignored"] = e.ignored_reason
        documents.append(document)
    return documents


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def from_micros(value: int | None) -> datetime | None:
    if value is None:
        return None
    return EPOCH + timedelta(microseconds=int(value))


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def parent_updates(change: ParentChange, applied_at: datetime) -> list[UpdateOne | DeleteOne]:
    return _parent_updates(change, iso(applied_at))


def _parent_updates(change: ParentChange, updated_at: str) -> list[UpdateOne | DeleteOne]:
    # Every part is built only when the change has some of it: most changes are a message or two.
    ops: list[UpdateOne | DeleteOne] = []
    if change.erased_at:
        # An erasure first deletes the document; what followed it in the batch makes a fresh one.
        ops.append(DeleteOne({"_id": change.parent_id}))
        if change.deletes_document:
            return ops
    pid = change.parent_id
    updates: Document = {
        "clinic_id": change.clinic_id,
        "client_id": change.client_id,
        "updated_at": updated_at,
    }
    # Both arrays exist from the first write: nx-27017 ignores $addToSet on a missing field.
    add_to_set: Document = {
        "enrolled_programs": {"$each": sorted(change.enrolled) if change.enrolled else []}
    }
    update: Document = {"$set": updates, "$addToSet": add_to_set}
    if change.read and not change.received:
        # Messages read and none received: the pull is part of this operation. (One update may not
        # both add to and pull from an array; `_write` makes the array of a document this creates.)
        update["$pull"] = {"unread_message_ids": {"$in": sorted(change.read)}}
    else:
        add_to_set["unread_message_ids"] = {"$each": sorted(change.received) if change.received else []}
    if change.sms_opted_out_at is not None or change.sms_opted_in_at is not None:
        update["$max"] = {
            field: micros(value)
            for field, value in (
                ("sms_opted_out_us", change.sms_opted_out_at),
                ("sms_opted_in_us", change.sms_opted_in_at),
            )
            if value is not None
        }
    # Reminders, answers and the pets' appointment entries: pets (or the client) gone first, in an
    # operation of their own (it clears a prefix of the paths set below), then the ended reminders
    # unset and the open ones set. A gone pet's appointments written before stay, never shown again
    # (their entries are gone) unless the PIMS schedules them again for a pet.
    if change.client_gone:
        gone = {"reminders": "", "answers": "", "forms": "", "appointments": "", "pet_appointments": ""}
        ops.append(UpdateOne({"_id": pid}, {"$unset": gone}))
    elif change.patients_gone:
        gone = {
            f"{kind}.{_key(p)}": ""
            for p in sorted(change.patients_gone)
            for kind in ("reminders", "answers", "pet_appointments")
        }
        ops.append(UpdateOne({"_id": pid}, {"$unset": gone}))
    if change.reminders_due:
        updates |= {
            f"reminders.{_key(patient)}.{_key(reminder)}": due.isoformat()
            for (patient, reminder), due in change.reminders_due.items()
        }
    # An answer and its request's seen mark are separate paths, so either order gives the same
    # document, and writing either again changes nothing (one answer per request; any seen_us means
    # seen). $set, not $max: see the module docstring.
    if change.answers:
        updates |= {
            f"answers.{_key(a.patient_id)}.{a.request_id}": {
                "kind": a.kind,
                "outcome": a.outcome,
                "answered_us": micros(a.answered_at),
            }
            for a in change.answers.values()
        }
    if change.seen:
        updates |= {f"seen_requests.{request_id}": micros(at) for request_id, at in change.seen.items()}
    # Forms likewise: an assignment and its completion are separate paths (assignment ids are UUIDs).
    if change.forms:
        updates |= {
            f"forms.{f.assignment_id}": {"title": f.title, "assigned_us": micros(f.assigned_at)}
            for f in change.forms.values()
        }
    if change.forms_completed:
        updates |= {
            f"completed_forms.{assignment_id}": micros(at)
            for assignment_id, at in change.forms_completed.items()
        }
    # Appointments: the scheduled ones set with their pet's entry, the others unset with the entry of
    # the event's pet (never a path set here: the fold keeps the entries apart, and an appointment
    # set again is not unset), and the answered marks set or, once the appointment is over, unset.
    if change.appointments:
        updates |= {
            f"appointments.{_key(a.appointment_id)}": {
                "patient_id": a.patient_id,
                "starts_us": micros(a.starts_at),
                "timezone": a.timezone,
                "type": a.appointment_type,
                "reason": a.reason,
            }
            for a in change.appointments.values()
        }
        updates |= {
            f"pet_appointments.{_key(a.patient_id)}.{_key(a.appointment_id)}": True
            for a in change.appointments.values()
            if a.patient_id is not None
        }
    if change.appointments_answered:
        updates |= {
            f"answered_appointments.{_key(appointment_id)}": micros(at)
            for appointment_id, at in change.appointments_answered.items()
        }
    unset: Document = {}
    if change.reminders_ended:
        unset |= {f"reminders.{_key(p)}.{_key(r)}": "" for p, r in sorted(change.reminders_ended)}
    if change.appointments_ended:
        unset |= {
            f"appointments.{_key(a)}": ""
            for _, a in change.appointments_ended
            if a not in change.appointments
        }
        unset |= {
            f"pet_appointments.{_key(p)}.{_key(a)}": "" for p, a in change.appointments_ended if p is not None
        }
    if change.answered_forgotten:
        unset |= {f"answered_appointments.{_key(a)}": "" for a in sorted(change.answered_forgotten)}
    if unset:
        update["$unset"] = unset
    ops.append(UpdateOne({"_id": pid}, update, upsert=True))
    if change.read and change.received:
        # A second operation: one update may not both add to and pull from the same array.
        ops.append(UpdateOne({"_id": pid}, {"$pull": {"unread_message_ids": {"$in": sorted(change.read)}}}))
    return ops


def tombstone(parent: str, erased_at: datetime) -> UpdateOne:
    """The parent's tombstone, moved forward to this erasure (never back: $max)."""
    return UpdateOne({"_id": parent}, {"$max": {"erased_us": micros(erased_at)}}, upsert=True)


def _key(pims_id: str) -> str:
    """A PIMS id as a field name: ids match [A-Za-z0-9._-], and a "." would split the path."""
    return pims_id.replace(".", "%2E")


def _unkey(name: str) -> str:
    return name.replace("%2E", ".")


def clinic_update(change: ClinicChange, applied_at: datetime) -> UpdateOne:
    # Program codes match ^[a-z0-9][a-z0-9_-]*$, so they are safe as field names.
    update: Document = {
        "$set": {
            "clinic_id": change.clinic_id,
            "updated_at": iso(applied_at),
            **{
                f"offered_programs.{code}": {"name": p.name, "call_to_action": p.call_to_action}
                for code, p in change.offered.items()
            },
            **({"booking_mode": change.booking_mode} if change.booking_mode is not None else {}),
            **({"live_chat": change.live_chat} if change.live_chat is not None else {}),
            **(
                {"appointment_visibility": change.appointment_visibility.model_dump(mode="json")}
                if change.appointment_visibility is not None
                else {}
            ),
        }
    }
    # `offered` and `withdrawn` are disjoint (project() keeps the last word per code).
    if change.withdrawn:
        update["$unset"] = {f"offered_programs.{code}": "" for code in sorted(change.withdrawn)}
    return UpdateOne({"_id": change.clinic_id}, update, upsert=True)


def parent_view(doc: Document) -> ParentView:
    return ParentView(
        clinic_id=doc["clinic_id"],
        client_id=doc["client_id"],
        unread_message_ids=frozenset(doc.get("unread_message_ids", ())),
        sms_opted_out_at=from_micros(doc.get("sms_opted_out_us")),
        sms_opted_in_at=from_micros(doc.get("sms_opted_in_us")),
        enrolled_programs=frozenset(doc.get("enrolled_programs", ())),
        due_reminders=frozenset(
            (_unkey(patient), _unkey(reminder), date.fromisoformat(due))
            for patient, reminders in (doc.get("reminders") or {}).items()
            for reminder, due in (reminders or {}).items()
        ),
        request_answers=frozenset(
            RequestAnswer(
                request_id,
                _unkey(patient),
                a["kind"],
                a["outcome"],
                EPOCH + timedelta(microseconds=int(a["answered_us"])),
            )
            for patient, answers in (doc.get("answers") or {}).items()
            for request_id, a in (answers or {}).items()
        ),
        seen_request_ids=frozenset(doc.get("seen_requests") or ()),
        assigned_forms=frozenset(
            PendingForm(assignment_id, f["title"], EPOCH + timedelta(microseconds=int(f["assigned_us"])))
            for assignment_id, f in (doc.get("forms") or {}).items()
        ),
        completed_form_ids=frozenset(doc.get("completed_forms") or ()),
        scheduled_appointments=frozenset(
            ScheduledAppointment(
                _unkey(appointment_id),
                a.get("patient_id"),
                EPOCH + timedelta(microseconds=int(a["starts_us"])),
                a.get("timezone") or "UTC",
                a.get("type"),
                a.get("reason"),
            )
            for appointment_id, a in (doc.get("appointments") or {}).items()
        ),
        pet_appointment_ids=frozenset(
            (_unkey(patient), _unkey(appointment_id))
            for patient, appointments in (doc.get("pet_appointments") or {}).items()
            for appointment_id in appointments or ()
        ),
        answered_appointment_ids=frozenset(_unkey(a) for a in doc.get("answered_appointments") or ()),
    )


def clinic_view(doc: Document) -> ClinicView:
    programs = doc.get("offered_programs") or {}
    return ClinicView(
        clinic_id=doc["_id"],
        offered_programs=tuple(
            Program(code, p["name"], p["call_to_action"]) for code, p in sorted(programs.items())
        ),
        booking_mode=doc.get("booking_mode"),
        live_chat=bool(doc.get("live_chat", False)),
        appointment_visibility=AppointmentVisibility.model_validate(doc.get("appointment_visibility") or {}),
    )

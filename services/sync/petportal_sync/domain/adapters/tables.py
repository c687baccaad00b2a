"""The field tables of the five supported PIMS. docs/pims/<pims>.md explains each one, with what was
assumed where the PIMS publishes no API (the on-premise systems export tables; their connectors send
one row at a time)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import (
    Adapter,
    Field,
    Native,
    Resource,
    epoch_version,
    iso_or_us_date,
    lowered,
    seconds_to_minutes,
    text_id,
    truthy,
    unix_date,
    unix_time,
    us_date,
)


def _inactive(flag: str) -> Any:
    return lambda fields: truthy(fields.get(flag, True)) is False


def _flag(flag: str) -> Any:
    return lambda fields: truthy(fields.get(flag, False)) is True


def _single_key(raw: Any) -> Native:
    """ezyVet lists resources as `{"items": [{"animal": {...}}, ...]}`: a record is one such item."""
    if isinstance(raw, Mapping) and len(raw) == 1:
        [(name, fields)] = raw.items()
        if isinstance(fields, Mapping):
            return Native(str(name), fields, f"{name}.")
    return Native(None, None, "")


def _table_row(raw: Any) -> Native:
    """On-premise exports: `{"table": "Patient", "row": {...}}`, one row of the named table."""
    if isinstance(raw, Mapping) and isinstance(raw.get("table"), str) and isinstance(raw.get("row"), Mapping):
        return Native(raw["table"], raw["row"], "row.")
    return Native(None, None, "")


def _resource_type(raw: Any) -> Native:
    """Covetrus Pulse: `{"resourceType": "patient", ...fields}`."""
    if isinstance(raw, Mapping) and isinstance(raw.get("resourceType"), str):
        return Native(raw["resourceType"], raw, "")
    return Native(None, None, "")


# ezyVet: its API's resources and field names (v1/v2). Times are Unix timestamps; lookups (species,
# breed, sex, colour, appointment type, vaccine, product) are sent resolved to their names by the
# connector, in the `*_name` fields beside ezyVet's ids; a contact's primary email and mobile number
# come from its contactdetail records, flattened into `email` and `mobile`.
EZYVET = Adapter(
    pims="ezyvet",
    type_field="<resource>",
    unwrap=_single_key,
    resources={
        "contact": Resource(
            "contact",
            (
                Field("client_id", "id", text_id),
                Field("first_name", "first_name"),
                Field("last_name", "last_name"),
                Field("email", "email"),
                Field("phone", "mobile"),
                Field("version", "modified_at", epoch_version),
            ),
            removed_kind="contact_removed",
            removed=_inactive("active"),
        ),
        "animal": Resource(
            "patient",
            (
                Field("patient_id", "id", text_id),
                Field("client_id", "contact_id", text_id),
                Field("name", "name"),
                Field("species", "species_name"),
                Field("breed", "breed_name"),
                Field("sex", "sex_name"),
                Field("date_of_birth", "date_of_birth", unix_date),
                Field("colour", "animalcolour_name"),
                Field("weight_kg", "weight"),
                Field("microchip", "microchip_number"),
                Field("deceased", "is_dead", truthy),
                Field("deceased_on", "deceased_date", unix_date),
                Field("version", "modified_at", epoch_version),
            ),
            removed_kind="patient_removed",
            removed=_inactive("active"),
        ),
        "appointment": Resource(
            "appointment",
            (
                Field("appointment_id", "id", text_id),
                Field("client_id", "contact_id", text_id),
                Field("patient_id", "animal_id", text_id),
                Field("starts_at", "start_at", unix_time),
                Field("duration_minutes", "duration", seconds_to_minutes),
                Field("appointment_type", "type_name"),
                Field("reason", "description"),
                Field("provider", "resource_name"),
                Field(
                    "status",
                    "status_name",
                    lowered(
                        {
                            "Booked": "scheduled",
                            "Confirmed": "confirmed",
                            "Arrived": "checked_in",
                            "Completed": "completed",
                            "No Show": "no_show",
                            "Cancelled": "cancelled",
                        }
                    ),
                ),
                Field("version", "modified_at", epoch_version),
            ),
        ),
        "vaccination": Resource(
            "vaccination",
            (
                Field("vaccination_id", "id", text_id),
                Field("client_id", "contact_id", text_id),
                Field("patient_id", "animal_id", text_id),
                Field("name", "vaccine_name"),
                Field("given_on", "date_given", unix_date),
                Field("expires_on", "date_due", unix_date),
                Field("lot", "batch_number"),
                Field("manufacturer", "manufacturer"),
                Field("rabies_tag", "rabies_tag_number"),
                Field("certificate_number", "certificate_number"),
                Field("deleted", "active", lambda v: not truthy(v) if isinstance(truthy(v), bool) else v),
                Field("version", "modified_at", epoch_version),
            ),
        ),
        "prescription": Resource(
            "medication",
            (
                Field("prescription_id", "id", text_id),
                Field("client_id", "contact_id", text_id),
                Field("patient_id", "animal_id", text_id),
                Field("name", "product_name"),
                Field("dose", "dosage"),
                Field("quantity", "quantity", text_id),
                Field("refills_remaining", "remaining_repeats"),
                Field("prescribed_on", "date_prescribed", unix_date),
                Field("expires_on", "expiry_date", unix_date),
                Field("active", "active", truthy),
                Field("version", "modified_at", epoch_version),
            ),
        ),
    },
)


def _on_premise(pims: str, names: Mapping[str, Mapping[str, str]], *, dates: Any = iso_or_us_date) -> Adapter:
    """The three on-premise systems export the same kinds of tables under their own names."""

    def table(kind: str) -> Mapping[str, str]:
        return names[kind]

    client, patient, appt, reminder, vaccine, rx = (
        table(k) for k in ("contact", "patient", "appointment", "reminder", "vaccination", "medication")
    )
    return Adapter(
        pims=pims,
        type_field="table",
        unwrap=_table_row,
        resources={
            client["@table"]: Resource(
                "contact",
                (
                    Field("client_id", client["client_id"], text_id),
                    Field("first_name", client["first_name"]),
                    Field("last_name", client["last_name"]),
                    Field("email", client["email"]),
                    Field("phone", client["phone"]),
                    Field("version", client["version"], epoch_version),
                ),
                removed_kind="contact_removed",
                removed=_flag(client["deleted"]),
            ),
            patient["@table"]: Resource(
                "patient",
                (
                    Field("patient_id", patient["patient_id"], text_id),
                    Field("client_id", patient["client_id"], text_id),
                    Field("name", patient["name"]),
                    Field("species", patient["species"]),
                    Field("breed", patient["breed"]),
                    Field("sex", patient["sex"], lowered(SEX_CODES)),
                    Field("date_of_birth", patient["date_of_birth"], dates),
                    Field("colour", patient["colour"]),
                    Field("weight_kg", patient["weight_kg"]),
                    Field("microchip", patient["microchip"], text_id),
                    Field("deceased", patient["deceased"], truthy),
                    Field("deceased_on", patient["deceased_on"], dates),
                    Field("version", patient["version"], epoch_version),
                ),
                removed_kind="patient_removed",
                removed=_flag(patient["deleted"]),
            ),
            appt["@table"]: Resource(
                "appointment",
                (
                    Field("appointment_id", appt["appointment_id"], text_id),
                    Field("client_id", appt["client_id"], text_id),
                    Field("patient_id", appt["patient_id"], text_id),
                    Field("starts_at", appt["starts_at"]),
                    Field("duration_minutes", appt["duration_minutes"]),
                    Field("appointment_type", appt["appointment_type"]),
                    Field("reason", appt["reason"]),
                    Field("provider", appt["provider"]),
                    Field("status", appt["status"], lowered(APPOINTMENT_STATUS)),
                    Field("version", appt["version"], epoch_version),
                ),
            ),
            reminder["@table"]: Resource(
                "reminder",
                (
                    Field("reminder_id", reminder["reminder_id"], text_id),
                    Field("client_id", reminder["client_id"], text_id),
                    Field("patient_id", reminder["patient_id"], text_id),
                    Field("service", reminder["service"]),
                    Field("service_code", reminder["service_code"], text_id),
                    Field("due_on", reminder["due_on"], dates),
                    Field("status", reminder["status"], lowered(REMINDER_STATUS)),
                    Field("version", reminder["version"], epoch_version),
                ),
            ),
            vaccine["@table"]: Resource(
                "vaccination",
                (
                    Field("vaccination_id", vaccine["vaccination_id"], text_id),
                    Field("client_id", vaccine["client_id"], text_id),
                    Field("patient_id", vaccine["patient_id"], text_id),
                    Field("name", vaccine["name"]),
                    Field("given_on", vaccine["given_on"], dates),
                    Field("expires_on", vaccine["expires_on"], dates),
                    Field("lot", vaccine["lot"], text_id),
                    Field("manufacturer", vaccine["manufacturer"]),
                    Field("rabies_tag", vaccine["rabies_tag"], text_id),
                    Field("certificate_number", vaccine["certificate_number"], text_id),
                    Field("deleted", vaccine["deleted"], truthy),
                    Field("version", vaccine["version"], epoch_version),
                ),
            ),
            rx["@table"]: Resource(
                "medication",
                (
                    Field("prescription_id", rx["prescription_id"], text_id),
                    Field("client_id", rx["client_id"], text_id),
                    Field("patient_id", rx["patient_id"], text_id),
                    Field("name", rx["name"]),
                    Field("dose", rx["dose"]),
                    Field("quantity", rx["quantity"], text_id),
                    Field("refills_remaining", rx["refills_remaining"]),
                    Field("prescribed_on", rx["prescribed_on"], dates),
                    Field("expires_on", rx["expires_on"], dates),
                    Field("version", rx["version"], epoch_version),
                ),
            ),
        },
    )


SEX_CODES = {
    "M": "male",
    "F": "female",
    "MN": "male neutered",
    "CM": "male neutered",
    "N": "male neutered",
    "FS": "female spayed",
    "S": "female spayed",
    "SF": "female spayed",
    "U": "unknown",
}
APPOINTMENT_STATUS = {
    "Scheduled": "scheduled",
    "Confirmed": "confirmed",
    "Checked In": "checked_in",
    "CheckedIn": "checked_in",
    "Completed": "completed",
    "Complete": "completed",
    "No Show": "no_show",
    "NoShow": "no_show",
    "Canceled": "cancelled",
    "Cancelled": "cancelled",
    "C": "cancelled",
}
REMINDER_STATUS = {
    "Active": "due",
    "Open": "due",
    "Due": "due",
    "Scheduled": "booked",
    "Booked": "booked",
    "Completed": "completed",
    "Complete": "completed",
    "Done": "completed",
    "Deleted": "deleted",
    "Inactive": "deleted",
}

CORNERSTONE = _on_premise(
    "cornerstone",
    {
        "contact": {
            "@table": "Client",
            "client_id": "ClientId",
            "first_name": "FirstName",
            "last_name": "LastName",
            "email": "Email",
            "phone": "CellPhone",
            "version": "ModifiedDate",
            "deleted": "Inactive",
        },
        "patient": {
            "@table": "Patient",
            "patient_id": "PatientId",
            "client_id": "ClientId",
            "name": "Name",
            "species": "Species",
            "breed": "Breed",
            "sex": "Sex",
            "date_of_birth": "Birthdate",
            "colour": "Color",
            "weight_kg": "WeightKg",
            "microchip": "Microchip",
            "deceased": "Deceased",
            "deceased_on": "DeceasedDate",
            "version": "ModifiedDate",
            "deleted": "Inactive",
        },
        "appointment": {
            "@table": "Appointment",
            "appointment_id": "AppointmentId",
            "client_id": "ClientId",
            "patient_id": "PatientId",
            "starts_at": "StartTime",
            "duration_minutes": "Duration",
            "appointment_type": "AppointmentType",
            "reason": "Reason",
            "provider": "StaffName",
            "status": "Status",
            "version": "ModifiedDate",
        },
        "reminder": {
            "@table": "Reminder",
            "reminder_id": "ReminderId",
            "client_id": "ClientId",
            "patient_id": "PatientId",
            "service": "Description",
            "service_code": "InvoiceItemId",
            "due_on": "DueDate",
            "status": "Status",
            "version": "ModifiedDate",
        },
        "vaccination": {
            "@table": "Vaccination",
            "vaccination_id": "VaccinationId",
            "client_id": "ClientId",
            "patient_id": "PatientId",
            "name": "Description",
            "given_on": "DateGiven",
            "expires_on": "ExpirationDate",
            "lot": "LotNumber",
            "manufacturer": "Manufacturer",
            "rabies_tag": "RabiesTag",
            "certificate_number": "CertificateNumber",
            "deleted": "Deleted",
            "version": "ModifiedDate",
        },
        "medication": {
            "@table": "Prescription",
            "prescription_id": "PrescriptionId",
            "client_id": "ClientId",
            "patient_id": "PatientId",
            "name": "Description",
            "dose": "Instructions",
            "quantity": "Quantity",
            "refills_remaining": "RefillsRemaining",
            "prescribed_on": "PrescriptionDate",
            "expires_on": "ExpirationDate",
            "version": "ModifiedDate",
        },
    },
)

AVIMARK = _on_premise(
    "avimark",
    {
        "contact": {
            "@table": "CLIENT",
            "client_id": "CLIENT_ID",
            "first_name": "FIRST",
            "last_name": "LAST",
            "email": "EMAIL",
            "phone": "CELL",
            "version": "CHANGED",
            "deleted": "DELETED",
        },
        "patient": {
            "@table": "ANIMAL",
            "patient_id": "ANIMAL_ID",
            "client_id": "CLIENT_ID",
            "name": "NAME",
            "species": "SPECIES",
            "breed": "BREED",
            "sex": "SEX",
            "date_of_birth": "BIRTHDAY",
            "colour": "COLOR",
            "weight_kg": "WEIGHT_KG",
            "microchip": "CHIP",
            "deceased": "DECEASED",
            "deceased_on": "DEATH_DATE",
            "version": "CHANGED",
            "deleted": "DELETED",
        },
        "appointment": {
            "@table": "APPOINT",
            "appointment_id": "APPT_ID",
            "client_id": "CLIENT_ID",
            "patient_id": "ANIMAL_ID",
            "starts_at": "START",
            "duration_minutes": "MINUTES",
            "appointment_type": "TYPE",
            "reason": "REASON",
            "provider": "DOCTOR",
            "status": "STATUS",
            "version": "CHANGED",
        },
        "reminder": {
            "@table": "REMINDER",
            "reminder_id": "REMIND_ID",
            "client_id": "CLIENT_ID",
            "patient_id": "ANIMAL_ID",
            "service": "DESCRIPTION",
            "service_code": "TREATMENT",
            "due_on": "DUE",
            "status": "STATUS",
            "version": "CHANGED",
        },
        "vaccination": {
            "@table": "VACCINE",
            "vaccination_id": "VACC_ID",
            "client_id": "CLIENT_ID",
            "patient_id": "ANIMAL_ID",
            "name": "DESCRIPTION",
            "given_on": "GIVEN",
            "expires_on": "EXPIRES",
            "lot": "LOT",
            "manufacturer": "MFR",
            "rabies_tag": "TAG",
            "certificate_number": "CERTIFICATE",
            "deleted": "DELETED",
            "version": "CHANGED",
        },
        "medication": {
            "@table": "PRESCRIP",
            "prescription_id": "RX_ID",
            "client_id": "CLIENT_ID",
            "patient_id": "ANIMAL_ID",
            "name": "DRUG",
            "dose": "SIG",
            "quantity": "QTY",
            "refills_remaining": "REFILLS_LEFT",
            "prescribed_on": "DATE",
            "expires_on": "EXPIRES",
            "version": "CHANGED",
        },
    },
    dates=us_date,
)

IMPROMED = _on_premise(
    "impromed",
    {
        "contact": {
            "@table": "Clients",
            "client_id": "ClientNumber",
            "first_name": "FirstName",
            "last_name": "LastName",
            "email": "EmailAddress",
            "phone": "MobilePhone",
            "version": "LastModified",
            "deleted": "IsDeleted",
        },
        "patient": {
            "@table": "Patients",
            "patient_id": "PatientNumber",
            "client_id": "ClientNumber",
            "name": "PatientName",
            "species": "SpeciesDescription",
            "breed": "BreedDescription",
            "sex": "SexCode",
            "date_of_birth": "BirthDate",
            "colour": "ColorDescription",
            "weight_kg": "CurrentWeightKg",
            "microchip": "MicrochipNumber",
            "deceased": "IsDeceased",
            "deceased_on": "DeceasedDate",
            "version": "LastModified",
            "deleted": "IsDeleted",
        },
        "appointment": {
            "@table": "Appointments",
            "appointment_id": "AppointmentNumber",
            "client_id": "ClientNumber",
            "patient_id": "PatientNumber",
            "starts_at": "StartDateTime",
            "duration_minutes": "DurationMinutes",
            "appointment_type": "AppointmentTypeDescription",
            "reason": "Comments",
            "provider": "DoctorName",
            "status": "StatusDescription",
            "version": "LastModified",
        },
        "reminder": {
            "@table": "Reminders",
            "reminder_id": "ReminderNumber",
            "client_id": "ClientNumber",
            "patient_id": "PatientNumber",
            "service": "ReminderDescription",
            "service_code": "ServiceCode",
            "due_on": "DueDate",
            "status": "StatusDescription",
            "version": "LastModified",
        },
        "vaccination": {
            "@table": "Vaccinations",
            "vaccination_id": "VaccinationNumber",
            "client_id": "ClientNumber",
            "patient_id": "PatientNumber",
            "name": "VaccineDescription",
            "given_on": "AdministeredDate",
            "expires_on": "ExpirationDate",
            "lot": "SerialLotNumber",
            "manufacturer": "ManufacturerName",
            "rabies_tag": "RabiesTagNumber",
            "certificate_number": "CertificateNumber",
            "deleted": "IsDeleted",
            "version": "LastModified",
        },
        "medication": {
            "@table": "Prescriptions",
            "prescription_id": "PrescriptionNumber",
            "client_id": "ClientNumber",
            "patient_id": "PatientNumber",
            "name": "DrugDescription",
            "dose": "Directions",
            "quantity": "QuantityDispensed",
            "refills_remaining": "RefillsRemaining",
            "prescribed_on": "PrescribedDate",
            "expires_on": "ExpirationDate",
            "version": "LastModified",
        },
    },
)

# Covetrus Pulse: a cloud PIMS; its connector sends JSON resources with camelCase fields and ISO 8601
# times (`updatedAt` is the version).
PULSE = Adapter(
    pims="pulse",
    type_field="resourceType",
    unwrap=_resource_type,
    resources={
        "client": Resource(
            "contact",
            (
                Field("client_id", "id", text_id),
                Field("first_name", "firstName"),
                Field("last_name", "lastName"),
                Field("email", "email"),
                Field("phone", "mobilePhone"),
                Field("version", "updatedAt"),
            ),
            removed_kind="contact_removed",
            removed=_flag("deleted"),
        ),
        "patient": Resource(
            "patient",
            (
                Field("patient_id", "id", text_id),
                Field("client_id", "clientId", text_id),
                Field("name", "name"),
                Field("species", "species"),
                Field("breed", "breed"),
                Field("sex", "sex"),
                Field("date_of_birth", "birthDate"),
                Field("colour", "color"),
                Field("weight_kg", "weight.kg"),
                Field("microchip", "microchip"),
                Field("deceased", "deceased", truthy),
                Field("deceased_on", "deceasedDate"),
                Field("version", "updatedAt"),
            ),
            removed_kind="patient_removed",
            removed=_flag("deleted"),
        ),
        "appointment": Resource(
            "appointment",
            (
                Field("appointment_id", "id", text_id),
                Field("client_id", "clientId", text_id),
                Field("patient_id", "patientId", text_id),
                Field("starts_at", "start"),
                Field("duration_minutes", "durationMinutes"),
                Field("appointment_type", "appointmentType"),
                Field("reason", "reason"),
                Field("provider", "providerName"),
                Field("status", "status", lowered(APPOINTMENT_STATUS)),
                Field("version", "updatedAt"),
            ),
        ),
        "reminder": Resource(
            "reminder",
            (
                Field("reminder_id", "id", text_id),
                Field("client_id", "clientId", text_id),
                Field("patient_id", "patientId", text_id),
                Field("service", "description"),
                Field("service_code", "serviceCode"),
                Field("due_on", "dueDate"),
                Field("status", "status", lowered(REMINDER_STATUS)),
                Field("version", "updatedAt"),
            ),
        ),
        "vaccination": Resource(
            "vaccination",
            (
                Field("vaccination_id", "id", text_id),
                Field("client_id", "clientId", text_id),
                Field("patient_id", "patientId", text_id),
                Field("name", "vaccine"),
                Field("given_on", "administeredDate"),
                Field("expires_on", "expirationDate"),
                Field("lot", "lotNumber"),
                Field("manufacturer", "manufacturer"),
                Field("rabies_tag", "rabiesTag"),
                Field("certificate_number", "certificateNumber"),
                Field("deleted", "deleted", truthy),
                Field("version", "updatedAt"),
            ),
        ),
        "prescription": Resource(
            "medication",
            (
                Field("prescription_id", "id", text_id),
                Field("client_id", "clientId", text_id),
                Field("patient_id", "patientId", text_id),
                Field("name", "medication"),
                Field("dose", "instructions"),
                Field("quantity", "quantity", text_id),
                Field("refills_remaining", "refillsRemaining"),
                Field("prescribed_on", "prescribedDate"),
                Field("expires_on", "expirationDate"),
                Field("active", "active", truthy),
                Field("version", "updatedAt"),
            ),
        ),
    },
)

ADAPTERS: Mapping[str, Adapter] = {a.pims: a for a in (EZYVET, CORNERSTONE, AVIMARK, IMPROMED, PULSE)}

"""The pets domain: plain values and functions, no I/O."""

from .model import Age, Pet, age_on
from .records import (
    Appointment,
    Clinic,
    PetRecord,
    Reminder,
    current_medications,
    current_vaccinations,
    due_reminders,
    upcoming_appointments,
)

__all__ = [
    "Age",
    "Appointment",
    "Clinic",
    "Pet",
    "PetRecord",
    "Reminder",
    "age_on",
    "current_medications",
    "current_vaccinations",
    "due_reminders",
    "upcoming_appointments",
]

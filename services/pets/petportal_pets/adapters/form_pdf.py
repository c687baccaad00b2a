"""A completed clinic form as a PDF (fpdf2, like the ID card): the form's title and version, the
clinic, the client, the pet and appointment it is about, each field's label and answer, and each
signature with the signer's typed name, their consent and the time it was given."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..domain.forms import FieldType
from ..service_layer.forms import CompletedForm


def _latin1(text: str) -> str:
    """The core PDF fonts are Latin-1: anything else shows as "?" rather than failing the form."""
    return text.encode("latin-1", "replace").decode("latin-1")


def _when(value: datetime | str) -> str:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _answer(kind: FieldType, value: Any) -> str:
    if value is None or value == "":
        return "-"
    if kind is FieldType.SIGNATURE and isinstance(value, dict):
        return f"Signed by {value.get('full_name', '')} on {_when(value['signed_at'])}, consent given"
    return str(value)


def render_form(completed: CompletedForm) -> bytes:
    definition, submission = completed.definition, completed.submission
    # Imported here: fpdf2 costs a quarter of a second and about 40 MB, and most pets processes
    # never render a PDF.
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_title(_latin1(definition.title))
    pdf.set_creator("Pet Portal")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    width = pdf.epw
    pdf.set_font("Helvetica", "B", 16)
    pdf.multi_cell(width, 8, _latin1(definition.title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    clinic = completed.clinic
    pdf.cell(width, 6, _latin1(clinic.name or clinic.clinic_id), new_x="LMARGIN", new_y="NEXT")
    if definition.description:
        pdf.set_font("Helvetica", "I", 9)
        pdf.multi_cell(width, 5, _latin1(definition.description), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    about = [
        ("Form", f"{definition.form_id} (version {definition.version})"),
        ("Client", submission.client_id),
        (
            "Pet",
            f"{completed.pet.name} ({submission.patient_id})" if completed.pet else submission.patient_id,
        ),
        ("Appointment", submission.appointment_id),
        ("Submitted", _when(submission.submitted_at)),
    ]
    for label, value in about:
        if value is None:
            continue
        pdf.set_font("Helvetica", "B", 9)
        pdf.cell(30, 5, label)
        pdf.set_font("Helvetica", "", 9)
        pdf.cell(width - 30, 5, _latin1(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    for f in definition.fields:
        pdf.set_font("Helvetica", "B", 10)
        pdf.multi_cell(width, 6, _latin1(f.label), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 10)
        answer = _answer(f.type, submission.answers.get(f.name))
        pdf.multi_cell(width, 5, _latin1(answer), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
    return bytes(pdf.output())

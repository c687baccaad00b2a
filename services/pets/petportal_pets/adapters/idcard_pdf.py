"""The pet's ID card as a one-page PDF (fpdf2): signalment, current vaccines, the clinic."""

from __future__ import annotations

from datetime import date

from ..service_layer.services import PetCard


def _latin1(text: str) -> str:
    """The core PDF fonts are Latin-1: anything else shows as "?" rather than failing the card."""
    return text.encode("latin-1", "replace").decode("latin-1")


def render_id_card(card: PetCard, today: date) -> bytes:
    pet, clinic = card.pet, card.clinic
    # Imported here: fpdf2 costs a quarter of a second and about 40 MB, and most pets processes
    # never render a PDF.
    from fpdf import FPDF

    pdf = FPDF(format=(148, 210), orientation="landscape")  # A5
    pdf.set_title(_latin1(f"ID card: {pet.name}"))
    pdf.set_creator("Pet Portal")
    pdf.set_auto_page_break(auto=True, margin=10)
    pdf.add_page()
    width = pdf.epw
    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(width, 10, _latin1(pet.name), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    pdf.cell(width, 6, _latin1(clinic.name or clinic.clinic_id), new_x="LMARGIN", new_y="NEXT")
    contact = " · ".join(
        x for x in (clinic.settings.phone, clinic.settings.email, clinic.settings.address) if x
    )
    if contact:
        pdf.cell(width, 5, _latin1(contact.replace("·", "-")), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    age = pet.age(today)
    rows = [
        ("Species", pet.species),
        ("Breed", pet.breed),
        ("Sex", pet.sex),
        ("Date of birth", pet.date_of_birth.isoformat() if pet.date_of_birth else None),
        ("Age", age.text if age else None),
        ("Colour", pet.colour),
        ("Weight", f"{pet.weight_kg:g} kg" if pet.weight_kg else None),
        ("Microchip", pet.microchip),
    ]
    for label, value in rows:
        pdf.set_font("Helvetica", "B", 10)
        pdf.cell(35, 6, label)
        pdf.set_font("Helvetica", "", 10)
        pdf.cell(width - 35, 6, _latin1(value or "-"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(width, 7, "Current vaccines", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    if not card.vaccinations:
        pdf.cell(width, 6, "None on record", new_x="LMARGIN", new_y="NEXT")
    for vaccine in card.vaccinations:
        details = [f"given {vaccine.given_on.isoformat()}"]
        if vaccine.expires_on:
            details.append(f"expires {vaccine.expires_on.isoformat()}")
        if vaccine.rabies_tag:
            details.append(f"tag {vaccine.rabies_tag}")
        if vaccine.certificate_number:
            details.append(f"certificate {vaccine.certificate_number}")
        if vaccine.lot:
            details.append(f"lot {vaccine.lot}")
        pdf.multi_cell(
            width, 5, _latin1(f"{vaccine.name}: {', '.join(details)}"), new_x="LMARGIN", new_y="NEXT"
        )
    pdf.ln(2)
    pdf.set_font("Helvetica", "I", 8)
    pdf.cell(
        width,
        5,
        _latin1(f"Issued {today.isoformat()} from the clinic's records."),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    return bytes(pdf.output())

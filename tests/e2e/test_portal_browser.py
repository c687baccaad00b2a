"""The web portal in a real Chromium (Debian's, driven by Playwright) against the running system: a
parent signs in with the code from the local mailbox, sees the badge go up when the clinic writes and
down once they read it, replies with a photo, uploads a photo of their pet, asks for an appointment
(the clinic accepts it in its console), downloads the ID card PDF, sends feedback, turns texts off
and sees the To-Do item; the clinic reads the reply and answers from its console. At a clinic that
takes online bookings, a parent books a free time (the connector confirms it), confirms an
appointment, and staff retry a booking the PIMS could not match. Staff publish a clinic form in the
console and assign it; the parent follows the To-Do item to it, is shown each missing answer next to its
field, signs and sends it, and staff download its PDF. axe-core finds no serious or critical violation
on any screen; the screens are saved to docs/screenshots/."""

from __future__ import annotations

import io
import re
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import Browser, FilePayload, Page, expect, sync_playwright

from .stack import PASSWORD, WEB_DIST, Portal, Stack, contact, wait_for

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "docs" / "screenshots"
AXE = REPO / "web" / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
# Loopback only: no background calls home (this machine's network refuses them, slowly).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "Debian's chromium is not installed: `make browser` installs it (make test runs it)"
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert (WEB_DIST / "index.html").is_file(), "the portal is not built: `make web` (make test runs it)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def jpeg_file(name: str) -> FilePayload:
    photo = Image.new("RGB", (640, 480), (200, 120, 40))
    jpeg = io.BytesIO()
    photo.save(jpeg, "JPEG")
    return {"name": name, "mimeType": "image/jpeg", "buffer": jpeg.getvalue()}


def accessible(page: Page, screen: str, save: bool = True) -> None:
    """axe-core on the screen as it is now: no serious or critical violation. The screen is saved to
    docs/screenshots/ unless `save` is false."""
    page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations']})"
    )
    bad = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, (screen, bad)
    if not save:
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{screen}.png"))


def sign_in(page: Page, stack: Stack, email: str) -> None:
    """Sign in on the portal's first screen with the code from the local mailbox."""
    page.get_by_label("Email or mobile number").fill(email)
    page.get_by_role("button", name="Send me a code").click()
    expect(page.get_by_label("6-digit code")).to_be_visible()

    def code() -> str | None:
        for mail in reversed(stack.mail()):
            if mail["To"] == email.lower() and "sign-in code" in mail["Subject"]:
                return re.search(r"\d{6}", mail["Subject"]).group(0)  # type: ignore[union-attr]
        return None

    page.get_by_label("6-digit code").fill(wait_for(code, what="the code in the mailbox"))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name=re.compile("To-Do"))).to_be_visible()


def staff_sign_in(page: Page, portal: Portal) -> None:
    page.goto("/console")
    page.get_by_label("Email").fill(portal.staff_email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Conversations")).to_be_visible()


def test_a_parent_uses_the_portal_in_a_browser(stack: Stack, browser: Browser) -> None:
    portal = Portal(stack, "e2e-web", sms_number="+15005550022")  # a clinic number is one clinic's
    phone = "+14155550122"
    pushed = portal.push(
        contact("C-W", phone),
        {"kind": "patient", "client_id": "C-W", "patient_id": "P-W", "name": "Waffles", "species": "dog",
         "breed": "Corgi", "date_of_birth": "2021-03-04", "microchip": "985000000000777"},
    )  # fmt: skip
    assert pushed["rejected"] == [], pushed
    portal.parent_token("C-W")  # identity has the contact
    staff = portal.staff_token()
    staff_headers = {"authorization": f"Bearer {staff}"}
    wait_for(
        lambda: (
            portal.http.get("/clinic/v1/clients/C-W/sms-status", headers=staff_headers).status_code == 200
        ),
        what="notify knows the contact",
    )

    # bypass_csp: axe is injected into the page for the accessibility checks (the portal's own CSP
    # allows only its own scripts).
    context = browser.new_context(
        viewport=PHONE, base_url=stack.gateway, bypass_csp=True, accept_downloads=True
    )
    page = context.new_page()
    try:
        page.goto("/")
        expect(page.get_by_role("heading", name="Pet Portal")).to_be_visible()
        accessible(page, "sign-in")
        sign_in(page, stack, "C-W@example.com")
        accessible(page, "home")

        # The clinic writes: the badge goes up (the portal polls), and reading brings it down.
        assert portal.send_message(staff, "C-W", "Waffles is due for a check-up.").status_code == 201
        badge = page.locator("nav .badge")
        expect(badge).to_have_text("1", timeout=30_000)
        expect(page.get_by_role("link", name=re.compile("unread message"))).to_be_visible(timeout=30_000)
        page.get_by_role("link", name="Conversations").click()
        expect(page.get_by_text("Waffles is due for a check-up.")).to_be_visible()
        accessible(page, "conversation")
        expect(badge).to_have_count(0, timeout=30_000)
        page.get_by_role("textbox", name="Message").fill("Can we come on Friday?")
        page.get_by_role("button", name="Send", exact=True).click()
        expect(page.get_by_text("Can we come on Friday?")).to_be_visible()
        page.get_by_role("textbox", name="Message").fill("Her paw")
        page.locator("input[type=file]").set_input_files(files=[jpeg_file("paw.jpg")])
        expect(page.get_by_role("img", name="Photo in the message")).to_be_visible()

        # The clinic answers from its console, in another browser session.
        console = browser.new_context(viewport=DESKTOP, base_url=stack.gateway, bypass_csp=True)
        try:
            clinic = console.new_page()
            clinic.goto("/console")
            clinic.get_by_label("Email").fill(portal.staff_email)
            clinic.get_by_label("Password").fill(PASSWORD)
            clinic.get_by_role("button", name="Sign in").click()
            expect(clinic.get_by_role("heading", name="Conversations")).to_be_visible()
            expect(clinic.get_by_label("2 unread")).to_be_visible(timeout=30_000)  # the reply and the photo
            accessible(clinic, "console-conversations")
            clinic.get_by_role("link", name="Client C-W").click()
            expect(clinic.get_by_text("Can we come on Friday?")).to_be_visible()
            expect(clinic.get_by_text("Receives texts")).to_be_visible()
            expect(clinic.get_by_role("img", name="Photo in the message")).to_be_visible()
            clinic.get_by_role("textbox", name="Reply").fill("Yes, Friday at 10:00 works.")
            clinic.get_by_role("button", name="Send", exact=True).click()
            expect(clinic.get_by_text("Yes, Friday at 10:00 works.")).to_be_visible()
            accessible(clinic, "console-conversation")
            clinic.get_by_role("link", name="Sign-in link and QR code").click()
            expect(clinic.get_by_role("img", name=re.compile("QR code for"))).to_be_visible()
            accessible(clinic, "console-qr")
        finally:
            console.close()
        expect(page.get_by_text("Yes, Friday at 10:00 works.")).to_be_visible(timeout=30_000)

        # The pet page and its ID card.
        page.get_by_role("link", name="Pets").click()
        page.get_by_role("link", name="Waffles").click()
        expect(page.get_by_role("heading", name="Waffles")).to_be_visible()
        expect(page.get_by_text("985000000000777")).to_be_visible()
        page.locator("input[type=file]").set_input_files(files=[jpeg_file("waffles.jpg")])
        expect(page.get_by_text("Photo saved.")).to_be_visible()
        expect(page.get_by_role("img", name="Photo of Waffles")).to_be_visible()
        page.get_by_label("What is it about?").fill("Itchy ears")
        tomorrow = (datetime.now(UTC) + timedelta(days=1)).replace(hour=10, minute=0)
        page.get_by_label("A day and time that suits you").fill(tomorrow.strftime("%Y-%m-%dT%H:%M"))
        page.get_by_role("button", name="Send request").click()
        expect(page.get_by_text("Waiting for the clinic")).to_be_visible()
        accessible(page, "pet")
        with page.expect_download() as download:
            page.get_by_role("button", name="Download ID card (PDF)").click()
        pdf = Path(download.value.path()).read_bytes()
        assert pdf.startswith(b"%PDF")

        # Texts off: the To-Do list asks to opt back in.
        page.get_by_role("link", name="Account").click()
        expect(page.get_by_text("Your clinic keeps these details")).to_be_visible()
        page.get_by_label("Text me about messages and reminders").uncheck()
        expect(page.get_by_text("Saved.")).to_be_visible()
        page.get_by_label("4").check()
        page.get_by_label("Anything you would like to tell us (optional)").fill("Booking was easy.")
        page.get_by_role("button", name="Send feedback").click()
        expect(page.get_by_text("Thank you! Your clinic will read it.")).to_be_visible()
        accessible(page, "account")
        page.get_by_role("link", name="Home").click()
        expect(page.get_by_text(re.compile("Opt into receiving texts"))).to_be_visible(timeout=30_000)

        # The clinic reads the feedback in its console.
        console = browser.new_context(viewport=DESKTOP, base_url=stack.gateway, bypass_csp=True)
        try:
            clinic = console.new_page()
            clinic.goto("/console/feedback")
            clinic.get_by_label("Email").fill(portal.staff_email)
            clinic.get_by_label("Password").fill(PASSWORD)
            clinic.get_by_role("button", name="Sign in").click()
            # The request round trip: the clinic accepts, the parent sees it booked.
            clinic.get_by_role("link", name="Appointment requests").click()
            expect(clinic.get_by_text("Itchy ears")).to_be_visible()
            accessible(clinic, "console-requests")
            clinic.get_by_role("button", name="Accept").click()
            expect(clinic.get_by_text("No requests waiting.")).to_be_visible()
            clinic.get_by_role("link", name="Feedback").click()
            expect(clinic.get_by_text("Booking was easy.")).to_be_visible()
            expect(clinic.get_by_label("4 out of 5")).to_be_visible()
        finally:
            console.close()

        page.get_by_role("link", name="Pets").click()
        page.get_by_role("link", name="Waffles").click()
        expect(page.get_by_text("Booked")).to_be_visible()

        # This clinic takes appointment requests, not online bookings: the booking screen says so and
        # leads to the pet's request form.
        page.goto("/book")
        expect(page.get_by_text(re.compile("does not take online bookings"))).to_be_visible()
        page.get_by_role("link", name="Request an appointment for Waffles").click()
        expect(page.get_by_role("heading", name="Waffles")).to_be_visible()

        # Signed out, the portal is the sign-in screen again.
        page.get_by_role("link", name="Account").click()
        page.get_by_role("button", name="Sign out", exact=True).click()
        expect(page.get_by_role("button", name="Send me a code")).to_be_visible()
    finally:
        context.close()


def _hours_ahead(hours: int) -> str:
    at = datetime.now(UTC) + timedelta(hours=hours)
    return at.replace(minute=0, second=0, microsecond=0).isoformat()


def test_a_parent_books_online_and_the_clinic_sorts_out_what_the_pims_could_not_match(
    stack: Stack, browser: Browser
) -> None:
    portal = Portal(
        stack, f"e2e-webbook-{uuid.uuid4().hex[:6]}", sms_number="+15005550031", timezone="America/Chicago"
    )
    email = f"bk.{uuid.uuid4().hex[:6]}@example.com"
    pushed = portal.push(
        {"kind": "clinic_settings", "booking_mode": "direct"},
        {**contact("C-BK", "+14155550131"), "email": email},
        {"kind": "patient", "client_id": "C-BK", "patient_id": "P-BK", "name": "Biscuit", "species": "dog"},
        {"kind": "slot", "slot_id": "S-W1", "starts_at": _hours_ahead(26), "appointment_type": "Exam",
         "provider": "Dr Lee"},
        {"kind": "slot", "slot_id": "S-W2", "starts_at": _hours_ahead(27), "appointment_type": "Exam"},
        {"kind": "slot", "slot_id": "S-W3", "starts_at": _hours_ahead(50), "appointment_type": "Vaccination"},
        {"kind": "appointment", "client_id": "C-BK", "appointment_id": "APT-W1", "patient_id": "P-BK",
         "starts_at": _hours_ahead(74), "appointment_type": "Dental"},
    )  # fmt: skip
    assert pushed["rejected"] == [], pushed
    parent = {"authorization": f"Bearer {portal.parent_token('C-BK')}"}
    pims = {"authorization": f"Bearer {portal.api_key}"}
    # The home screen learns the booking setting from todo, the appointment from pets (both by events).
    wait_for(
        lambda: portal.http.get("/api/v1/todo", headers=parent).json()["help"]["booking_mode"] == "direct",
        what="todo knows the clinic takes online bookings",
    )

    def appointments() -> list[str]:
        listed = portal.http.get("/api/v1/appointments", headers=parent).json()["appointments"]
        return [a["appointment_id"] for a in listed]

    wait_for(lambda: appointments() == ["APT-W1"], what="pets knows the appointment")

    context = browser.new_context(viewport=PHONE, base_url=stack.gateway, bypass_csp=True)
    page = context.new_page()
    try:
        page.goto("/")
        sign_in(page, stack, email)

        # Book a visit: the pet, a free time (held while the parent finishes), a note.
        page.get_by_role("link", name="Book a visit").click()
        expect(page.get_by_role("heading", name="Book a visit")).to_be_visible()
        expect(page.get_by_label("Which pet is the visit for?")).to_have_value("P-BK")
        expect(page.get_by_role("radio")).to_have_count(3)
        page.get_by_role("radio").first.check()
        expect(page.get_by_role("timer")).to_have_text(re.compile(r"Held for you: [45]:\d\d left"))
        page.get_by_label("A note for the clinic (optional)").fill("She is shy with other dogs.")
        accessible(page, "book")
        page.get_by_role("button", name="Book this time").click()
        expect(
            page.get_by_text(re.compile("Sent to the clinic — waiting for confirmation: Biscuit"))
        ).to_be_visible()
        bookings = page.get_by_role("list", name="Your bookings")
        expect(
            bookings.get_by_text("Sent to the clinic — waiting for confirmation", exact=True)
        ).to_be_visible()
        expect(page.get_by_role("radio")).to_have_count(2)  # no longer offered

        # The connector takes it; after a reload the parent sees it confirmed.
        [item] = portal.http.get("/pims/v1/outbound", headers=pims).json()["items"]
        assert (item["kind"], item["payload"]["slot_id"], item["payload"]["patient_id"]) == (
            "booking",
            "S-W1",
            "P-BK",
        )
        assert item["payload"]["note"] == "She is shy with other dogs."
        ack = portal.http.post(
            f"/pims/v1/outbound/{item['item_id']}/ack", json={"pims_reference": "EZ-9"}, headers=pims
        )
        assert ack.status_code == 200, ack.text
        page.reload()
        expect(bookings.get_by_text("Confirmed", exact=True)).to_be_visible()
        accessible(page, "book-confirmed")

        # Another booking the PIMS cannot match to the client: the parent is told the clinic will call.
        page.get_by_role("radio").first.check()
        expect(page.get_by_role("timer")).to_be_visible()
        page.get_by_role("button", name="Book this time").click()
        expect(
            page.get_by_text(re.compile("Sent to the clinic — waiting for confirmation: Biscuit"))
        ).to_be_visible()
        pulled = portal.http.get("/pims/v1/outbound", params={"after": item["cursor"]}, headers=pims).json()
        [second] = pulled["items"]
        assert second["payload"]["slot_id"] == "S-W2"
        nack = portal.http.post(
            f"/pims/v1/outbound/{second['item_id']}/nack",
            json={"reason": "client_not_matched", "text": "no client with this email"},
            headers=pims,
        )
        assert nack.status_code == 200, nack.text
        page.reload()
        expect(bookings.get_by_text("The clinic will contact you about this booking")).to_be_visible()

        # The parent confirms the appointment from the pet page (cancelling asks first).
        page.get_by_role("link", name="Pets").click()
        page.get_by_role("link", name="Biscuit").click()
        upcoming = page.get_by_role("region", name="Upcoming appointments")
        expect(upcoming.get_by_text("Dental")).to_be_visible()
        upcoming.get_by_role("button", name="Confirm", exact=True).click()
        expect(upcoming.get_by_text("Confirmation sent")).to_be_visible()
        upcoming.get_by_role("button", name="Cancel appointment").click()
        expect(upcoming.get_by_text("Cancel this appointment?")).to_be_visible()
        expect(upcoming.get_by_role("button", name="Keep it")).to_be_focused()
        accessible(page, "pet-appointment")
        upcoming.get_by_role("button", name="Keep it").click()
        expect(upcoming.get_by_role("button", name="Cancel appointment")).to_be_visible()
        answers = portal.http.get(
            "/pims/v1/outbound", params={"after": second["cursor"]}, headers=pims
        ).json()
        assert [
            (i["kind"], i["payload"]["appointment_id"], i["payload"]["answer"]) for i in answers["items"]
        ] == [("appointment_answer", "APT-W1", "confirm")]
    finally:
        context.close()

    # Staff see the flagged booking first in the console's outbound queue and retry it.
    console = browser.new_context(viewport=DESKTOP, base_url=stack.gateway, bypass_csp=True)
    try:
        clinic = console.new_page()
        staff_sign_in(clinic, portal)
        clinic.get_by_role("link", name="Outbound queue").click()
        expect(clinic.get_by_role("heading", name="Outbound queue")).to_be_visible()
        queue = clinic.get_by_role("list", name="Outbound items")
        first = queue.get_by_role("listitem").first
        expect(first).to_contain_text("Flagged for staff")
        expect(first).to_contain_text("Client not matched in the practice system")
        expect(first).to_contain_text("no client with this email")
        expect(queue.get_by_role("listitem")).to_have_count(3)  # the flagged one, the confirmed, the answer
        accessible(clinic, "console-outbound")
        first.get_by_role("button", name="Retry").click()
        expect(clinic.get_by_text(re.compile("sent again to the practice system"))).to_be_visible()
        clinic.get_by_label("Show").select_option("flagged")
        expect(clinic.get_by_text("Nothing here.")).to_be_visible()
    finally:
        console.close()
    mine = portal.http.get("/api/v1/booking/bookings", headers=parent).json()["bookings"]
    assert [(b["slot"]["slot_id"], b["status"]) for b in mine] == [("S-W2", "pending"), ("S-W1", "confirmed")]
    again = portal.http.get("/pims/v1/outbound", params={"after": second["cursor"]}, headers=pims).json()[
        "items"
    ]
    assert {(i["item_id"], i["status"]) for i in again} >= {(second["item_id"], "pending")}


def test_staff_publish_a_form_the_parent_fills_it_in_and_the_clinic_reads_it(
    stack: Stack, browser: Browser
) -> None:
    portal = Portal(stack, f"e2e-webforms-{uuid.uuid4().hex[:6]}", sms_number="+15005550036")
    email = f"fm.{uuid.uuid4().hex[:6]}@example.com"
    pushed = portal.push(
        {**contact("C-FM", "+14155550136"), "email": email},
        {"kind": "patient", "client_id": "C-FM", "patient_id": "P-FM", "name": "Pepper", "species": "cat"},
    )
    assert pushed["rejected"] == [], pushed
    parent = {"authorization": f"Bearer {portal.parent_token('C-FM')}"}
    staff = {"authorization": f"Bearer {portal.staff_token()}"}
    wait_for(
        lambda: portal.http.get("/api/v1/pets", headers=parent).json()["pets"] or None,
        what="pets knows the pet",
    )
    title = "Dental check-in"

    # Staff publish the form in the console and assign it to the parent (about their pet).
    console = browser.new_context(viewport=PHONE, base_url=stack.gateway, bypass_csp=True)
    try:
        clinic = console.new_page()
        staff_sign_in(clinic, portal)
        clinic.get_by_role("link", name="Forms").click()
        expect(clinic.get_by_role("heading", name="Forms", exact=True)).to_be_visible()
        expect(clinic.get_by_text("No forms published yet.")).to_be_visible()
        clinic.get_by_label("Title").fill(title)
        fields = [
            ("Weight (kg)", "pet_weight", "text", True, ""),
            ("Fasting since midnight?", "fasting", "choice", False, "yes, no"),
            ("Last meal", "last_meal", "date", False, ""),
            ("I consent to anaesthesia", "consent", "signature", True, ""),
        ]
        for number, (label, key, kind, required, options) in enumerate(fields, start=1):
            if number > 1:
                clinic.get_by_role("button", name="Add a field").click()
            field = clinic.get_by_role("group", name=f"Field {number}")
            field.get_by_label("Label", exact=True).fill(label)
            field.get_by_label("Key (lower case, digits, _)").fill(key)
            field.get_by_label("Type").select_option(kind)
            if options:
                field.get_by_label("Options, separated by commas").fill(options)
            if required:
                field.get_by_label("Required").check()
        clinic.get_by_role("button", name="Publish").click()
        expect(clinic.get_by_text(f"Published “{title}”.")).to_be_visible()
        card = clinic.get_by_role("listitem").filter(has_text=f"{title} (version 1, 4 fields)")
        card.get_by_label("Client id").fill("C-FM")
        card.get_by_label("Pet id (optional)").fill("P-FM")
        card.get_by_role("button", name="Assign").click()
        expect(card.get_by_text("Assigned to client C-FM.")).to_be_visible()
        submissions = clinic.get_by_role("list", name="Form submissions")
        expect(submissions.get_by_role("listitem")).to_have_count(1)
        expect(submissions).to_contain_text("Waiting for the client")
        [assignment] = portal.http.get("/clinic/v1/form-submissions", headers=staff).json()["submissions"]
        assert (assignment["client_id"], assignment["patient_id"], assignment["status"]) == (
            "C-FM",
            "P-FM",
            "pending",
        )

        # The parent: the To-Do item leads to the form.
        context = browser.new_context(viewport=PHONE, base_url=stack.gateway, bypass_csp=True)
        try:
            page = context.new_page()
            page.goto("/")
            sign_in(page, stack, email)
            todo = page.get_by_role("list", name="To-Do").get_by_role("link", name=f"Please fill in: {title}")
            expect(todo).to_be_visible(timeout=30_000)
            page.get_by_role("link", name="Your clinic forms").click()
            expect(page.get_by_role("heading", name="Forms", exact=True)).to_be_visible()
            expect(
                page.get_by_role("list", name="Forms to fill in").get_by_role("link", name=title)
            ).to_be_visible()
            accessible(page, "forms-list", save=False)
            page.get_by_role("link", name="Home").click()
            todo.click()
            expect(page.get_by_role("heading", name=title)).to_be_visible()

            # The required answers left out: each error is next to its field, and focus goes to the first.
            weight = page.get_by_label("Weight (kg) (required)")
            page.get_by_label("Fasting since midnight?").select_option("yes")
            page.get_by_label("Last meal").fill((datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d"))
            # What a screen reader reads as focus lands: the field must already carry its error.
            page.evaluate(
                """() => document.addEventListener("focusin", (e) => {
                    if (e.target.id === "field-pet_weight") {
                        window.focusedWith = e.target.getAttribute("aria-describedby");
                    }
                })"""
            )
            page.get_by_role("button", name="Send to my clinic").click()
            expect(page.get_by_role("status")).to_have_text("Some answers need another look.")
            expect(weight).to_be_focused()
            assert page.evaluate("() => window.focusedWith") == "field-pet_weight-error"
            expect(weight).to_have_attribute("aria-invalid", "true")
            expect(weight).to_have_accessible_description("this field is required")
            expect(page.locator("#field-pet_weight + .error")).to_have_text("this field is required")
            signed_name = page.get_by_label("Your full name")
            agree = page.get_by_label("I agree, and sign with my name")
            expect(signed_name).to_have_attribute("aria-invalid", "true")
            expect(agree).to_have_accessible_description(re.compile("consent"))
            accessible(page, "form-errors", save=False)

            # Filled in correctly, signature included: completed, and gone from the To-Do list.
            weight.fill("4.5")
            expect(weight).to_have_attribute("aria-invalid", "false")  # an answer changed is not wrong yet
            expect(page.locator("#field-pet_weight + .error")).to_have_count(0)
            signed_name.fill("Alex Rivera")
            agree.check()
            expect(page.get_by_text("this field is required")).to_have_count(0)
            expect(page.get_by_role("status")).to_have_text("")
            accessible(page, "forms")
            page.get_by_role("button", name="Send to my clinic").click()
            expect(page.get_by_role("status")).to_have_text(
                "Thank you: your answers were sent to your clinic."
            )
            expect(page.get_by_role("status")).to_be_focused()
            expect(page.get_by_text(re.compile("^Signed by Alex Rivera on "))).to_be_visible()
            expect(page.get_by_role("button", name="Download (PDF)")).to_be_visible()
            page.get_by_role("link", name="Home").click()
            expect(page.get_by_role("heading", name=re.compile("To-Do"))).to_be_visible()
            expect(page.get_by_role("link", name=f"Please fill in: {title}")).to_have_count(0, timeout=30_000)
            page.get_by_role("link", name="Your clinic forms").click()
            expect(
                page.get_by_role("list", name="Completed forms").get_by_role("link", name=title)
            ).to_be_visible()
        finally:
            context.close()

        # Staff see the submission, completed, with its PDF.
        clinic.reload()
        expect(submissions).to_contain_text("Completed")
        pdf_button = submissions.get_by_role("button", name="PDF")
        expect(pdf_button).to_be_visible()
        with clinic.expect_download() as download:
            pdf_button.click()
        assert Path(download.value.path()).read_bytes().startswith(b"%PDF")
        submissions.scroll_into_view_if_needed()
        accessible(clinic, "console-forms")
    finally:
        console.close()
    [completed] = portal.http.get(
        "/clinic/v1/form-submissions", params={"status": "completed"}, headers=staff
    ).json()["submissions"]
    detail = portal.http.get(f"/clinic/v1/form-submissions/{completed['submission_id']}", headers=staff)
    answers = detail.json()["submission"]["answers"]
    assert (answers["pet_weight"], answers["fasting"], answers["consent"]["full_name"]) == (
        "4.5",
        "yes",
        "Alex Rivera",
    )
    pdf = portal.http.get(f"/clinic/v1/form-submissions/{completed['submission_id']}/pdf", headers=staff)
    assert pdf.status_code == 200, pdf.text
    assert pdf.content.startswith(b"%PDF")

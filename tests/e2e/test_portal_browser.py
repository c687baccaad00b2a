"""The web portal in a real Chromium (Debian's, driven by Playwright) against the running system: a
parent signs in with the code from the local mailbox, sees the badge go up when the clinic writes and
down once they read it, replies with a photo, uploads a photo of their pet, asks for an appointment
(the clinic accepts it in its console), downloads the ID card PDF, sends feedback, turns texts off
and sees the To-Do item; the clinic reads the reply and answers from its console. axe-core finds no
serious or critical violation on any screen; each screen is saved to docs/screenshots/."""

from __future__ import annotations

import io
import re
import shutil
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


def accessible(page: Page, screen: str) -> None:
    """axe-core on the screen as it is now: no serious or critical violation."""
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
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{screen}.png"))


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
        page.get_by_label("Email or mobile number").fill("C-W@example.com")
        page.get_by_role("button", name="Send me a code").click()
        expect(page.get_by_label("6-digit code")).to_be_visible()

        def code() -> str | None:
            for mail in reversed(stack.mail()):
                if mail["To"] == "c-w@example.com" and "sign-in code" in mail["Subject"]:
                    return re.search(r"\d{6}", mail["Subject"]).group(0)  # type: ignore[union-attr]
            return None

        page.get_by_label("6-digit code").fill(wait_for(code, what="the code in the mailbox"))
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name=re.compile("To-Do"))).to_be_visible()
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

        # Signed out, the portal is the sign-in screen again.
        page.get_by_role("link", name="Account").click()
        page.get_by_role("button", name="Sign out", exact=True).click()
        expect(page.get_by_role("button", name="Send me a code")).to_be_visible()
    finally:
        context.close()

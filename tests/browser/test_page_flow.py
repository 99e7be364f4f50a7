"""The operator's whole journey in a real browser against the real server with the simulator: sign in, watch the QR
rotate, let a round expire and ask for a new one, get a phone code, pair, see the account appear live, log out.

A screenshot of every step lands in the test's temp folder (`screenshots/`).
"""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from tests.browser.conftest import TIMEOUT
from tests.processes import BASE_ENV, AppProcess

PHONE = "+6281234567890"
# Short codes so that a rotation and a whole round's expiry happen within the test: 3 codes of 5 s each.
QR_SECONDS = "5,5,5"


def shoot(page: Page, folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def badge(page: Page) -> str:
    return str(page.locator("#session .badge").get_attribute("data-state"))


def test_operator_journey(browser: Browser, screenshots: Path, database_url: str, tmp_path: Path) -> None:
    app = AppProcess(database_url, tmp_path / "app.log", env={"SIMULATOR_QR_SECONDS": QR_SECONDS}).start()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT)
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))

        def console(message: ConsoleMessage) -> None:
            expected = ("status of 401", "status of 422")  # the wrong password and the wrong phone number, below
            if "Content Security Policy" in message.text or (
                message.type == "error" and not any(text in message.text for text in expected)
            ):
                problems.append(f"console {message.type}: {message.text}")

        page.on("console", console)
        app.wait_state("pairing")

        # 1. Sign in (a wrong password first).
        page.goto(f"{app.url}/")
        expect(page).to_have_url(f"{app.url}/login")
        shoot(page, screenshots, "01-login")
        page.fill("#password", "not-the-password")
        page.click("button[type=submit]")
        expect(page.locator(".alert")).to_have_text("Wrong password.")
        shoot(page, screenshots, "02-wrong-password")
        page.fill("#password", BASE_ENV["ADMIN_PASSWORD"])
        page.click("button[type=submit]")
        expect(page).to_have_url(f"{app.url}/")
        page.evaluate("window.__sameDocument = true")  # gone if anything reloads the page from here on
        expect(page.locator("#live")).to_have_text("live")

        # 2. The QR code, and the next one arriving by itself.
        qr = page.locator("#qr figure.qr")
        expect(qr.locator("svg")).to_be_visible()
        assert badge(page) == "pairing"
        first_rotation, first_svg = qr.get_attribute("data-rotation"), qr.inner_html()
        expect(page.locator(".qr-meta")).to_contain_text("new code in")
        shoot(page, screenshots, "03-qr")
        expect(qr).not_to_have_attribute("data-rotation", str(first_rotation))
        assert qr.inner_html() != first_svg
        shoot(page, screenshots, "04-qr-rotated")

        # 3. The round ends unscanned: a new QR on request.
        new_qr = page.locator("button[data-action=pair]")
        expect(new_qr).to_be_visible()
        expect(page.locator("#pairing")).to_contain_text("expired without being scanned")
        assert badge(page) == "logged_out"
        shoot(page, screenshots, "05-round-expired")
        new_qr.click()
        expect(page.locator("#qr figure.qr svg")).to_be_visible()
        expect(page.locator("#qr figure.qr")).to_have_attribute("data-rotation", "1")

        # 4. Linking by phone number instead: a wrong number is explained, a right one gets the 8-character code.
        page.click("summary:has-text('Link with a phone number instead')")
        page.fill("#pair-phone", "081234567890")
        page.click("#pair-code-form button[type=submit]")
        expect(page.locator("#pair-code-form .form-error")).to_contain_text("+<country code><number>")
        shoot(page, screenshots, "06-invalid-phone")
        page.fill("#pair-phone", PHONE)
        page.click("#pair-code-form button[type=submit]")
        code = page.locator(".pair-code .code")
        expect(code).to_have_text(re.compile(r"^[A-Z0-9]{4}-[A-Z0-9]{4}$"))
        shoot(page, screenshots, "07-pair-code")
        shown = code.inner_text()
        expect(page.locator("#qr figure.qr")).not_to_have_attribute("data-rotation", "1")
        expect(code).to_have_text(shown)  # the QR's rotation leaves the code being typed on the phone alone

        # 5. The phone links (the simulator "scans"): connected, with the number, without a reload.
        with app.api() as api:
            response = api.post("/api/simulator/pair", json={"phone": PHONE, "push_name": "Toko Maju"})
            assert response.status_code == 202, response.text
        expect(page.locator("#session .badge")).to_have_attribute("data-state", "connected")
        expect(page.locator("#session .phone")).to_have_text(PHONE)
        expect(page.locator("#session .push-name")).to_have_text("Toko Maju")
        expect(page.locator("#pairing")).to_be_hidden()
        expect(page.locator("#history")).to_contain_text("linked with the QR code")
        shoot(page, screenshots, "08-connected")
        page.set_viewport_size({"width": 390, "height": 844})  # a phone
        shoot(page, screenshots, "09-connected-phone")
        page.set_viewport_size({"width": 1280, "height": 900})

        # 6. Reconnect now: a fresh connection, the stored device, no pairing.
        page.click("button[data-action=reconnect]")
        expect(page.locator("#history")).to_contain_text("reconnect requested by the operator")
        expect(page.locator("#history .timeline li").first).to_contain_text("connected with the stored login")
        expect(page.locator("#session .badge")).to_have_attribute("data-state", "connected")

        # 7. Log the account out, through the confirmation (cancel once first).
        page.click("button[data-action=logout]")
        dialog = page.locator("#logout-dialog")
        expect(dialog).to_be_visible()
        expect(dialog.locator(".dialog-account")).to_have_text(PHONE)
        page.click("#logout-dialog button[data-action=cancel]")
        expect(dialog).to_be_hidden()
        assert badge(page) == "connected"
        page.click("button[data-action=logout]")
        expect(dialog).to_be_visible()
        page.screenshot(path=str(screenshots / "10-logout-confirm.png"))
        page.click("#logout-dialog button[data-action=confirm-logout]")
        expect(page.locator("#session .badge")).not_to_have_attribute("data-state", "connected")
        expect(page.locator("#history")).to_contain_text("logged out by the operator")
        expect(page.locator("#qr figure.qr svg")).to_be_visible()  # pairing is offered again
        expect(page.locator("#session .phone")).to_have_count(0)
        shoot(page, screenshots, "11-logged-out")
        assert page.evaluate("window.__sameDocument") is True  # every change above came live

        # 8. Sign out of the page.
        page.click("button:has-text('Sign out')")
        expect(page).to_have_url(f"{app.url}/login?signed_out=1")
        expect(page.locator(".notice-text")).to_have_text("You are signed out.")
        shoot(page, screenshots, "12-signed-out")
        page.goto(f"{app.url}/")
        expect(page).to_have_url(f"{app.url}/login")
    finally:
        context.close()  # before stopping the server: an open event stream would hold up its shutdown
        app.terminate()
    assert problems == []
    log = app.output()
    for secret in (BASE_ENV["ADMIN_PASSWORD"], BASE_ENV["API_TOKEN"], BASE_ENV["SECRET_KEY"]):
        assert secret not in log

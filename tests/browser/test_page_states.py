"""The page in each state a shop owner meets, at a phone's width (390 px) and a laptop's (1280 px), against the real
server with the simulator: never wider than the screen, every time in the browser's local time, and in each state
only what makes sense there (the heartbeat while connected or reconnecting, no "Reconnect now" and no healthy
account during a ban, what happened when the phone unlinked the device).

Screenshots land in the test's temp folder (`screenshots/`).
"""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import TIMEOUT
from tests.processes import BASE_ENV, AppProcess

PHONE = "+6281234567890"
WIDTHS = {"phone": (390, 844), "laptop": (1280, 900)}
# Long enough to break a layout that does not wrap it; nothing listens there, so deliveries stay pending.
LONG_HOOK = "http://127.0.0.1:9/" + "/".join(["a-rather-long-path-segment"] * 6) + "?token=not-shown"


def overflow(page: Page) -> int:
    """How many pixels the page is wider than the window (0 when nothing scrolls sideways)."""
    width: int = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    return width


def check(page: Page, folder: Path, name: str) -> None:
    """At each width: nothing wider than the screen, no raw ISO time or snake_case on screen; a screenshot."""
    for label, (width, height) in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        assert overflow(page) <= 0, f"{name} at {width} px is {overflow(page)} px too wide"
        text = page.locator("main").inner_text()
        assert not re.search(r"\d{4}-\d{2}-\d{2}T\d{2}:", text), (name, label, text)
        assert not re.search(r"\b[a-z]+_[a-z_]+\b", text), (name, label, text)
        assert "{" not in text and " UTC" not in text, (name, label)  # local times, formatted by the browser
        page.screenshot(path=str(folder / f"{name}-{label}.png"), full_page=True)


def state(page: Page, name: str) -> None:
    expect(page.locator("#session .badge")).to_have_attribute("data-state", name)


def test_states_at_phone_and_laptop_widths(
    browser: Browser, screenshots: Path, database_url: str, tmp_path: Path
) -> None:
    folder = screenshots
    env = {"WEBHOOK_URL": LONG_HOOK, "WEBHOOK_SECRET": "s" * 32}
    app = AppProcess(database_url, tmp_path / "app.log", env=env).start()
    # The reader is in Jakarta (UTC+7) and reads British English: times must come out in that zone.
    context = browser.new_context(viewport={"width": 390, "height": 844}, timezone_id="Asia/Jakarta", locale="en-GB")
    problems: list[str] = []
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT)
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        app.wait_state("pairing")
        page.goto(f"{app.url}/login")
        page.fill("#password", BASE_ENV["ADMIN_PASSWORD"])
        page.click("button[type=submit]")
        expect(page.locator("#live")).to_have_text("live")

        # Pairing: the QR code.
        state(page, "pairing")
        expect(page.locator("#qr figure.qr svg")).to_be_visible()
        expect(page.locator("#health")).not_to_contain_text("Heartbeat")
        check(page, folder, "01-pairing")

        # Connected, with a message sent and a webhook endpoint whose long URL must wrap.
        with app.api() as api:
            assert api.post("/api/simulator/pair", json={"phone": PHONE, "push_name": "Toko Maju"}).status_code == 202
            state(page, "connected")
            assert api.post("/api/messages", json={"to": "+6281111111111", "text": "Halo"}).status_code == 202
        expect(page.locator("#storage")).to_contain_text("1 sent", timeout=TIMEOUT)
        expect(page.locator("#storage")).to_contain_text("a-rather-long-path-segment")
        expect(page.locator("#storage")).not_to_contain_text("not-shown")
        expect(page.locator("#health")).to_contain_text("Heartbeat")
        expect(page.locator("#session .account")).to_have_attribute("data-healthy", "true")
        expect(page.locator("#history .timeline li").first).to_contain_text("linked with the QR code")
        check(page, folder, "02-connected")

        # Reconnecting: the heartbeat still means something; the next attempt counts down.
        with app.api() as api:
            lost = {"reason": "connection_lost", "reconnect": False}
            assert api.post("/api/simulator/disconnect", json=lost).status_code == 202
            state(page, "reconnecting")
            expect(page.locator("#health")).to_contain_text("Heartbeat")
            expect(page.locator("#session .next")).to_contain_text("Next attempt in")
            check(page, folder, "03-reconnecting")
            assert api.post("/api/session/reconnect").status_code == 202
            state(page, "connected")

            # The phone unlinks the device: the page says so and when, and the account is gone everywhere.
            assert api.post("/api/simulator/disconnect", json={"reason": "logged_out"}).status_code == 202
            state(page, "pairing")
            note = page.locator("#session .unlinked")
            expect(note).to_contain_text("WhatsApp on the phone unlinked this gateway")
            assert api.get("/api/status").json()["account"] is None
        expect(page.locator("#session .phone")).to_have_count(0)
        check(page, folder, "04-unlinked-from-phone")

        # Banned: the end in local time with a countdown, no "Reconnect now", the account not shown as healthy.
        with app.api() as api:
            assert api.post("/api/simulator/pair", json={"phone": PHONE, "push_name": "Toko Maju"}).status_code == 202
            state(page, "connected")
            banned = {"reason": "banned", "seconds": 2 * 3600}
            assert api.post("/api/simulator/disconnect", json=banned).status_code == 202
            state(page, "banned")
            until = api.get("/api/status").json()["banned_until"]
        ban_end = page.locator("#session .ban-end")
        expect(ban_end).to_contain_text(re.compile(r"in (1 h 59 min|2 h)"))
        local = page.evaluate(
            "(iso) => new Date(iso).toLocaleTimeString('en-GB', {hour: '2-digit', minute: '2-digit', "
            "timeZone: 'Asia/Jakarta'})",
            until,
        )
        expect(ban_end.locator("time.local")).to_have_text(re.compile(re.escape(local)))
        expect(page.locator("button[data-action=reconnect]")).to_have_count(0)
        expect(page.locator("#session .account")).to_have_attribute("data-healthy", "false")
        expect(page.locator("#health")).not_to_contain_text("Heartbeat")
        check(page, folder, "05-banned")

        # Recent transitions: every entry whole (no scroll box cutting one off).
        clipped = page.evaluate(
            """() => [...document.querySelectorAll('#history .timeline li')].filter((item) => {
                const box = item.getBoundingClientRect(), list = item.parentElement.getBoundingClientRect();
                const scrolls = item.parentElement.scrollHeight > item.parentElement.clientHeight + 1;
                return box.bottom > list.bottom + 1 || scrolls;
            }).length"""
        )
        assert clipped == 0
    finally:
        context.close()
        app.terminate()
    assert problems == []
    assert len(list(folder.glob("*.png"))) == 2 * 5

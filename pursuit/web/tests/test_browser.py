"""An agent's morning in a real browser (Debian's Chromium through Playwright): log in, open the
ADF lead, log a voicemail without a page reload, enter a walk-in, and use the list on a phone.

Screenshots go to test-artifacts/screenshots/ for a person to look at.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from pursuit.conftest import PASSWORD
from pursuit.leads.models import Lead
from pursuit.web.tests.conftest import BROWSER, adf_lead, json_lead, screenshot
from pursuit.work.services import run_due_once

pytestmark = BROWSER


def shot(page, name: str) -> None:
    screenshot(page, f"{name}")


def test_agent_journey(transactional_db, live_server, browser, rooftop, agent, agent2, bdc_team, settings):
    settings.EMAIL_BACKEND = "pursuit.outreach.backends.OutboxBackend"
    now = timezone.now()
    lead = adf_lead(rooftop, now=now - dt.timedelta(minutes=7))
    Lead.objects.filter(pk=lead.pk).update(owner=agent)
    run_due_once(
        now=now - dt.timedelta(minutes=7) + dt.timedelta(seconds=12), limit=50
    )  # the automatic answer
    json_lead(
        rooftop,
        first_name="Grace",
        last_name="Hopper",
        emails=["grace@example.com"],
        owner=agent,
        now=now - dt.timedelta(minutes=1),
        vehicles=[{"year": 2025, "make": "Honda", "model": "Pilot"}],
    )

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/leads/")
    assert "/login/" in page.url
    shot(page, "00-login")
    page.fill("input[name=username]", agent.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/leads/")
    assert page.locator("text=Dana Driver").count() == 1
    assert page.locator(".waiting.overdue").count() >= 1  # Dana has waited 7 minutes
    shot(page, "01-lead-list")

    page.click("text=Dana Driver")
    page.wait_for_url(f"{live_server.url}/leads/{lead.pk}/")
    assert "not yet" in page.inner_text("#kpi-first-attempt")
    assert page.locator(".event").count() >= 2
    shot(page, "02-lead-page")

    # A marker on the window survives an htmx swap but not a page load.
    page.evaluate("window.__sameDocument = true")
    page.click("button[value=voicemail]")
    page.wait_for_selector(".event-text:has-text('Call: left voicemail')")
    assert page.evaluate("window.__sameDocument === true")
    assert "not yet" not in page.inner_text("#kpi-first-attempt")
    assert "after" in page.inner_text("#kpi-first-attempt")
    assert (
        page.inner_text("#lead-status") == "WORKING" or page.inner_text("#lead-status").lower() == "working"
    )
    shot(page, "03-after-voicemail")
    # A refused action answers 422 with the fragment; htmx-config makes htmx swap it in.
    page.evaluate(
        "htmx.ajax('POST', location.pathname + 'attempt/', "
        "{target: '#lead-live', swap: 'outerHTML', values: {channel: 'pigeon', outcome: 'voicemail'}})"
    )
    page.wait_for_selector("#lead-live .flash-error")
    assert "pigeon" in page.inner_text("#lead-live .flash-error")
    lead.refresh_from_db()
    assert lead.first_attempt_at is not None

    page.click("nav >> text=New lead")
    page.wait_for_url(f"{live_server.url}/leads/new/")
    page.select_option("select[name=type]", "walk-in")
    page.fill("input[name=first_name]", "Walter")
    page.fill("input[name=last_name]", "Walkin")
    page.fill("input[name=phone]", "(312) 555-0148")
    page.fill("input[name=vehicle_year]", "2025")
    page.fill("input[name=vehicle_make]", "Honda")
    page.fill("input[name=vehicle_model]", "CR-V")
    page.check("input[name=text_opt_in]")
    shot(page, "04-new-lead-form")
    page.click("button:has-text('Create lead')")
    page.wait_for_selector("h1:has-text('Walter Walkin')")
    assert "created" in page.inner_text(".messages")
    walk_in = Lead.objects.get(customer__first_name="Walter")
    assert walk_in.type == "walk-in" and page.url.endswith(f"/leads/{walk_in.pk}/")
    shot(page, "05-walk-in-created")
    page.click("nav >> text=Outbox")
    page.wait_for_selector("text=2024 Honda Accord EX-L at Lakeside Honda")
    shot(page, "05b-outbox")
    page.click("nav >> text=Notifications")
    page.wait_for_selector("text=Dana Driver is yours")
    shot(page, "05c-notifications")

    # On a phone: no sideways scrolling, and a lead is one tap away.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/leads/?scope=all")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    link = page.locator("a.row-link", has_text="Grace Hopper")
    assert link.is_visible()
    box = link.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    shot(page, "06-lead-list-390")
    link.click()
    page.wait_for_selector("h1:has-text('Grace Hopper')")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.locator("button[value=voicemail]").is_visible()
    shot(page, "07-lead-page-390")
    page.close()

"""A consultant's showroom visit in a real browser (Debian's Chromium through Playwright): open the
lead, log "Visit, no sale: price" from the plan panel, and see the price plan start in place.

Screenshots go to test-artifacts/screenshots/plans-*.png for a person to look at.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from pursuit.conftest import PASSWORD
from pursuit.plans.models import Enrolment
from pursuit.web.tests.conftest import BROWSER, json_lead, screenshot
from pursuit.web.tests.test_plan_pages import plan_world

pytestmark = BROWSER


def shot(page, name: str) -> None:
    screenshot(page, f"plans-{name}")


def login(page, base: str, user) -> None:
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/leads/")


def test_consultant_logs_a_visit_without_sale_and_the_price_plan_starts(
    transactional_db, live_server, browser, rooftop, consultant, manager
):
    plans = plan_world(rooftop)
    lead = json_lead(
        rooftop,
        owner=consultant,
        first_name="Vera",
        last_name="Visit",
        emails=["vera@example.com"],
        now=timezone.now() - dt.timedelta(hours=2),
        vehicles=[{"year": 2025, "make": "Honda", "model": "CR-V", "condition": "new"}],
    )

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    login(page, live_server.url, consultant)
    page.goto(f"{live_server.url}/leads/{lead.pk}/")
    panel = page.locator("#plan-panel")
    assert "New Internet" in panel.inner_text()
    assert panel.locator(".plan-step.is-next").count() == 1
    assert "Hi Vera, this is Carl at Lakeside Honda." in panel.inner_text()
    assert page.locator("nav >> text=Plans").count() == 0  # not a manager
    shot(page, "01-lead-panel")

    # A marker on the window survives an htmx swap but not a page load.
    page.evaluate("window.__sameDocument = true")
    page.select_option("#plan-panel select[name=objection]", "price")
    page.fill("#plan-panel input[name=note]", "wants $500 off")
    page.click("#plan-panel button:has-text('Log visit')")
    page.wait_for_selector("#plan-panel .plan-name:has-text('Objection Price')")
    assert page.evaluate("window.__sameDocument === true")
    assert "Visit logged: Objection Price started." in page.inner_text("#lead-live .flash-success")
    assert "Walk Vera through the numbers on the 2025 Honda CR-V." in page.inner_text("#plan-panel")
    assert page.locator(".event-text:has-text('Visit, no sale: Price. wants $500 off')").count() == 1
    active = Enrolment.objects.get(lead=lead, status="active")
    assert active.version.plan == plans["price"]
    shot(page, "02-after-visit")

    # "I forgot to say something": the callback goes to the top of the panel.
    page.fill("#plan-panel input[name=point]", "the CR-V comes in blue too")
    page.click("#plan-panel button:has-text('Add callback')")
    page.wait_for_selector("#plan-panel .callback:has-text('the CR-V comes in blue too')")
    shot(page, "03-callback")
    page.close()

    # The manager's side: the plans, one plan's preview, and the editor.
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    login(page, live_server.url, manager)
    page.click("nav >> text=Plans")
    page.wait_for_selector("h1:has-text('Follow-up plans')")
    shot(page, "04-plan-list")
    page.click("a.row-link:has-text('New Internet')")
    page.wait_for_selector("#preview .preview-row")
    assert page.locator("#preview .preview-row").count() == 3
    shot(page, "05-plan-detail")
    page.click("text=Edit plan")
    page.wait_for_selector("text=Leads already enrolled keep their version")
    page.click("#add-step")
    assert page.locator("[data-step]").count() == 4
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "06-plan-edit")
    page.close()

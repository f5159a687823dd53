"""A manager's evening in a real browser (Debian's Chromium through Playwright): a customer with a
Florida number at 20:30 Eastern may not be called until 8:00 their time; the manager records the
customer's written consent to texts, then edits the rooftop's 24-hour cap on the compliance page,
with the keyboard and on a phone-sized screen.

Screenshots go to test-artifacts/screenshots/compliance-*.png for a person to look at.
"""

from __future__ import annotations

import datetime as dt

import time_machine

from pursuit.compliance.gate import Clearance, decision_record
from pursuit.compliance.models import Consent
from pursuit.conftest import PASSWORD
from pursuit.lib import clock
from pursuit.web.tests.conftest import BROWSER, browser, json_lead, screenshot  # noqa: F401 (a fixture)
from pursuit.web.tests.test_plan_pages import plan_world

pytestmark = BROWSER

# Tuesday 10 March 2026, 20:30 in Miami (EDT), 19:30 at the dealership in Chicago.
EVENING = dt.datetime(2026, 3, 11, 0, 30, tzinfo=dt.UTC)
MIAMI = "+13055550123"


def shot(page, name: str) -> None:
    screenshot(page, f"compliance-{name}")


def login(page, base: str, user) -> None:
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/leads/")


def no_sideways_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_manager_sees_when_a_florida_customer_may_be_called_records_consent_and_edits_a_cap(
    transactional_db,
    live_server,
    browser,  # noqa: F811 (the fixture imported above)
    rooftop,
    manager,
    agent,
    bdc_team,
):
    plan_world(rooftop)
    # The clock moves on from 20:30 Eastern (tick): the live server and the page see it too.
    with time_machine.travel(EVENING, tick=True):
        lead = json_lead(
            rooftop,
            owner=agent,
            now=clock.now(),
            first_name="Flo",
            last_name="Rida",
            emails=["flo@example.com"],
            phones=[{"number": MIAMI, "type": "mobile"}],
            vehicles=[{"year": 2025, "make": "Honda", "model": "CR-V"}],
        )
        decision_record(
            lead.customer,
            Clearance("defer", "quiet-hours:FL", "Florida allows calls 8:00-20:00", until=EVENING),
            channel="call",
            purpose="marketing",
            at=clock.now(),
            lead=lead,
        )

        page = browser.new_page(viewport={"width": 1280, "height": 900})
        login(page, live_server.url, manager)
        page.goto(f"{live_server.url}/leads/{lead.pk}/")
        rules = page.locator("#contact-rules")
        call = rules.locator("#rule-call").inner_text()
        assert "Not now" in call and "Next allowed Wed Mar 11, 8:00 AM EDT" in call
        assert "Florida allows calls 8:00-20:00" in call
        assert "Tue Mar 10, 8:30 PM EDT" in rules.locator(".local-now").inner_text()
        assert "May email now" in rules.locator("#rule-email").inner_text()
        # The plan's first call says it may not be made now, and when it may.
        first_call = page.locator("#plan-panel .plan-step", has_text="First call")
        assert "Not allowed now next allowed Wed Mar 11, 8:00 AM EDT" in " ".join(
            first_call.inner_text().split()
        )
        shot(page, "01-lead-at-2030-eastern")

        # Record consent with the keyboard: open the section, fill it in, submit with Enter.
        page.evaluate("window.__sameDocument = true")
        summary = rules.locator("summary", has_text="Record consent")
        summary.focus()
        page.keyboard.press("Enter")
        form = rules.locator("form[action$='/consent/']")
        form.locator("select[name=channel]").select_option("text")
        form.locator("input[name=written]").check()
        evidence = form.locator("input[name=evidence]")
        evidence.fill("signed the text consent form in the showroom")
        evidence.press("Enter")
        page.wait_for_selector(
            "#lead-live .flash-success:has-text('Consent to texts recorded (in writing).')"
        )
        assert page.evaluate("window.__sameDocument === true")  # htmx swapped it in place
        text_row = page.locator("#rule-text").inner_text()
        assert "granted" in text_row and "written" in text_row
        consent = Consent.objects.get(customer=lead.customer, source="staff")
        assert consent.written and consent.by == manager
        page.locator("#rule-text summary").click()
        assert "signed the text consent form in the showroom" in page.locator("#rule-text").inner_text()
        shot(page, "02-consent-recorded")

        # On a phone: the panel fits, nothing scrolls sideways.
        page.set_viewport_size({"width": 390, "height": 844})
        page.reload()
        assert no_sideways_scroll(page)
        assert page.locator("#rule-call .next-allowed").is_visible()
        shot(page, "03-lead-390")

        # The compliance page: the decision log links to the lead; the 24-hour cap is edited.
        page.set_viewport_size({"width": 1280, "height": 900})
        page.click("nav >> text=Compliance")
        page.wait_for_selector("h1:has-text('Compliance')")
        assert page.locator("#registry-warning").is_visible()  # no registry copy imported yet
        assert page.locator(f".decision-table a[href='/leads/{lead.pk}/']").count() == 1
        cap = page.locator("input[name=cap_calls_texts_24h]")
        cap.fill("4")
        page.click("button:has-text('Save')")
        page.wait_for_selector(".error-text:has-text('At most 3')")
        shot(page, "04-cap-refused")
        rooftop.refresh_from_db()
        assert rooftop.cap_calls_texts_24h == 3
        page.locator("input[name=cap_calls_texts_24h]").fill("2")
        page.locator("input[name=cap_calls_texts_24h]").press("Enter")
        page.wait_for_selector(".flash-success:has-text('Caps and settings saved.')")
        assert page.locator("input[name=cap_calls_texts_24h]").input_value() == "2"
        rooftop.refresh_from_db()
        assert rooftop.cap_calls_texts_24h == 2
        shot(page, "05-compliance-page")

        page.set_viewport_size({"width": 390, "height": 844})
        page.reload()
        assert no_sideways_scroll(page)
        shot(page, "06-compliance-390")
        page.close()

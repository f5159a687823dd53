"""The working day in real Chromium: an agent works My day from the keyboard, a consultant logs
a visit with a price objection, a customer's text reply lands on the lead and pauses the plan,
and an appointment is set, its invitation produced, and a no-show moves the lead.

The clock is moved to a weekday morning near today (time-machine, ticking), so the compliance
gate allows calls whatever hour the suite runs at, and session cookies are not already expired
for the browser. Screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
import urllib.request

import pytest
import time_machine

from pursuit.appointments.models import Appointment
from pursuit.conftest import PASSWORD, TextProviderStandIn
from pursuit.leads.models import Lead
from pursuit.plans.files import plans_install_defaults
from pursuit.plans.models import Enrolment, Step
from pursuit.texting.provider import signature
from pursuit.web.tests.conftest import BROWSER, adf_lead, screenshot

pytestmark = BROWSER


def weekday_morning() -> dt.datetime:
    """The next Tuesday at 15:00 UTC (9:00 or 10:00 in Chicago): within a week of the real date."""
    today = dt.datetime.now(dt.UTC).date()
    days = (1 - today.weekday()) % 7 or 7
    return dt.datetime.combine(today + dt.timedelta(days=days), dt.time(15, 0), tzinfo=dt.UTC)


@pytest.fixture
def morning():
    with time_machine.travel(weekday_morning(), tick=True) as traveller:
        yield traveller


def login(page, live_server, user, path="/today/"):
    page.goto(f"{live_server.url}/login/?next={path}")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}{path}")


def test_an_agent_works_my_day_from_the_keyboard(
    transactional_db, live_server, browser, rooftop, agent, bdc_team, morning
):
    from django.utils import timezone

    plans_install_defaults(rooftop=rooftop, now=timezone.now())
    lead = adf_lead(rooftop, now=timezone.now() - dt.timedelta(minutes=1))
    Lead.objects.filter(pk=lead.pk).update(owner=agent)
    Step.objects.filter(lead=lead, action="task").update(assignee=agent)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    login(page, live_server, agent)
    first = page.locator(".today-item").first
    assert "New lead, not yet contacted" in first.inner_text() and "left to answer" in first.inner_text()
    screenshot(page, "20-my-day")
    page.evaluate("window.__sameDocument = true")
    page.keyboard.press("2")  # left a voicemail, on the first item
    page.wait_for_function(
        "!document.querySelector('.today-item .tag-danger') || !document.body.innerText.includes('not yet contacted')"
    )
    assert page.evaluate("window.__sameDocument === true")
    lead.refresh_from_db()
    assert lead.first_attempt_at is not None
    assert lead.events.filter(kind="attempt", text__contains="left voicemail").exists()
    page.goto(f"{live_server.url}/leads/{lead.pk}/")
    assert page.locator("text=Second call").count() >= 1  # the plan chose the next step
    screenshot(page, "21-after-voicemail-next-step")
    phone = browser.new_page(viewport={"width": 390, "height": 844})
    phone.context.add_cookies(page.context.cookies())
    phone.goto(f"{live_server.url}/today/")
    assert phone.evaluate("document.documentElement.scrollWidth <= 390")
    screenshot(phone, "22-my-day-phone")


def test_a_consultant_logs_a_visit_with_a_price_objection(
    transactional_db, live_server, browser, rooftop, consultant, bdc_team, morning
):
    from django.utils import timezone

    plans_install_defaults(rooftop=rooftop, now=timezone.now())
    lead = adf_lead(rooftop, now=timezone.now() - dt.timedelta(hours=1))
    Lead.objects.filter(pk=lead.pk).update(owner=consultant)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    login(page, live_server, consultant, f"/leads/{lead.pk}/")
    page.select_option("select[name=objection]", "price")
    page.click("form[action$='/visit/'] button[type=submit]")
    page.wait_for_selector(".event-text:has-text('Visit, no sale')")
    primary = Enrolment.objects.get(lead=lead, primary=True, status="active")
    assert primary.version.plan.key == "unsold-price"
    page.reload()
    assert page.locator(f"text={primary.version.plan.name}").count() >= 1
    screenshot(page, "23-visit-price-objection")


def test_a_text_reply_lands_on_the_lead_and_pauses_the_plan(
    transactional_db, live_server, browser, rooftop, agent, bdc_team, morning, text_provider, settings
):
    from django.utils import timezone

    plans_install_defaults(rooftop=rooftop, now=timezone.now())
    rooftop.text_number = "+13125550199"
    rooftop.save()
    settings.BASE_URL = live_server.url
    lead = adf_lead(rooftop, now=timezone.now() - dt.timedelta(hours=1))
    Lead.objects.filter(pk=lead.pk).update(
        owner=agent, first_attempt_at=timezone.now() - dt.timedelta(minutes=50)
    )
    number = lead.customer.phones.first().number
    params = {
        "From": number,
        "To": "+13125550199",
        "Body": "Can I come Saturday?",
        "MessageSid": "SMbrowser1",
    }
    request = urllib.request.Request(
        f"{live_server.url}/webhooks/text/",
        data=urllib.parse.urlencode(params).encode(),
        headers={
            "X-Twilio-Signature": signature(
                f"{live_server.url}/webhooks/text/", params, TextProviderStandIn.TOKEN
            )
        },
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    login(page, live_server, agent)
    assert "Reply waiting" in page.locator(".today-item").first.inner_text()
    page.goto(f"{live_server.url}/leads/{lead.pk}/")
    assert page.locator("text=Can I come Saturday?").count() >= 1
    assert Step.objects.filter(lead=lead, status="held").exists()
    screenshot(page, "24-text-reply-on-lead")


def test_an_appointment_is_set_its_invitation_produced_and_a_no_show_moves_the_lead(
    transactional_db, live_server, browser, rooftop, agent, bdc_team, morning
):
    from django.utils import timezone

    plans_install_defaults(rooftop=rooftop, now=timezone.now())
    lead = adf_lead(rooftop, now=timezone.now() - dt.timedelta(hours=1))
    Lead.objects.filter(pk=lead.pk).update(owner=agent)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    login(page, live_server, agent, f"/leads/{lead.pk}/appointment/")
    tomorrow = (timezone.now().astimezone(rooftop.tz) + dt.timedelta(days=1)).date()
    page.fill("input[name=day]", tomorrow.isoformat())
    page.fill("input[name=time]", "11:30")
    screenshot(page, "25-appointment-form")
    page.click("button:has-text('Set the appointment')")
    page.wait_for_url(f"{live_server.url}/leads/{lead.pk}/")
    appointment = Appointment.objects.get(lead=lead)
    page.goto(f"{live_server.url}/leads/{lead.pk}/appointment/")
    with page.expect_download() as download:
        page.click("text=Calendar file (.ics)")
    assert b"BEGIN:VEVENT" in open(download.value.path(), "rb").read()
    morning.shift(dt.timedelta(days=1, hours=2))  # the appointment has come and gone
    page.click("button:has-text('No-show')")
    page.wait_for_url(f"{live_server.url}/leads/{lead.pk}/")
    appointment.refresh_from_db()
    assert appointment.status == "no-show"
    assert Enrolment.objects.get(lead=lead, primary=True, status="active").version.plan.key == "no-show"
    screenshot(page, "26-after-no-show")

"""The gate inside the worker and the mail: deferrals move steps, lasting denials remove a
channel, marketing email carries the way out, and the way out works at once."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail

from pursuit.compliance.models import Decision, Suppression, Touch
from pursuit.conftest import T0
from pursuit.plans.models import Step
from pursuit.plans.tests.test_plans import new_lead, plans  # noqa: F401 (the plans fixture)
from pursuit.work.services import run_due_once

pytestmark = pytest.mark.usefixtures("plans")


def drain(now):
    while run_due_once(now=now):
        pass


def test_a_capped_email_waits_for_the_next_day_and_the_log_says_why(rooftop, bdc_team, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    rooftop.cap_touches_day = 1
    rooftop.save()
    lead = new_lead(rooftop)
    Touch.objects.create(
        customer=lead.customer, channel="call", purpose="marketing", at=T0 - dt.timedelta(minutes=5)
    )
    drain(T0)
    intro = Step.objects.get(lead=lead, plan_step__name="Intro email")
    assert intro.status == "pending" and intro.due_at == dt.datetime(
        2026, 3, 11, 5, 0, tzinfo=dt.UTC
    )  # midnight CDT
    decision = Decision.objects.get(step=intro)
    assert decision.verdict == "defer" and decision.rule == "cap:day"
    assert not [m for m in mail.outbox if m.subject.startswith("About the")]
    drain(intro.due_at)
    intro.refresh_from_db()
    assert intro.status == "done"
    assert Touch.objects.filter(customer=lead.customer, channel="email", purpose="marketing").count() == 1


def test_an_address_on_the_internal_list_takes_email_out_of_the_plan(rooftop, bdc_team, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    lead = new_lead(rooftop)
    Suppression.objects.create(
        group=rooftop.group, kind="email", value="ann@example.com", source="staff", at=T0
    )
    drain(T0)
    intro = Step.objects.get(lead=lead, plan_step__name="Intro email")
    assert intro.status == "skipped" and "do-not-contact list" in intro.outcome
    assert not [m for m in mail.outbox if m.subject.startswith("About the")]
    assert lead.events.filter(data__channel_removed="email").exists()
    # The calls go on.
    assert Step.objects.filter(lead=lead, channel="call", status="pending").exists()


def test_marketing_email_carries_the_address_and_a_one_click_way_out(rooftop, bdc_team, settings, client):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    lead = new_lead(rooftop)
    drain(T0)
    [message] = [m for m in mail.outbox if m.subject.startswith("About the")]
    link = message.extra_headers["List-Unsubscribe"].strip("<>")
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "100 Lake St, Chicago, IL 60601" in message.body and link in message.body
    path = link.removeprefix(settings.BASE_URL)
    page = client.get(path)
    assert page.status_code == 200 and b"Unsubscribe" in page.content
    lead.customer.refresh_from_db()
    assert not lead.customer.do_not_contact  # a GET (a link scanner) changes nothing
    done = client.post(path, {"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and b"You are unsubscribed" in done.content
    lead.customer.refresh_from_db()
    assert lead.customer.do_not_contact  # everywhere, the rooftop's default
    assert client.get(path[:-5] + "xx/").status_code == 404
    sent = len(mail.outbox)
    drain(T0 + dt.timedelta(days=60))
    assert not [m for m in mail.outbox[sent:] if m.to == ["ann@example.com"]]


def test_an_automatic_text_without_written_consent_becomes_a_persons_task(rooftop, bdc_team):
    from pursuit.plans.models import PlanStep

    lead = new_lead(rooftop, phone="(312) 234-5678")
    intro = Step.objects.get(lead=lead, plan_step__name="Intro email")
    PlanStep.objects.filter(pk=intro.plan_step_id).update(channel="text")
    Step.objects.filter(pk=intro.pk).update(channel="text")
    drain(T0)
    intro.refresh_from_db()
    assert intro.action == "task" and intro.status == "pending" and "written consent" in intro.outcome

"""Writing by hand: filled-in templates, and "send now" through the gate."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail

from pursuit.compliance.models import Touch
from pursuit.conftest import T0
from pursuit.outreach.compose import ComposeError, compose, send_now
from pursuit.plans.models import MessageTemplate
from pursuit.plans.tests.test_plans import new_lead, plans  # noqa: F401 (the plans fixture)
from pursuit.work.services import run_due_once

pytestmark = pytest.mark.usefixtures("plans")


def test_a_template_is_filled_in_then_sent_once_as_the_person(rooftop, bdc_team, agent, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    lead = new_lead(rooftop)
    template = MessageTemplate.objects.get(key="hello")
    draft = compose(lead=lead, template=template)
    assert draft == {"channel": "email", "subject": "About the 2024 Honda Civic", "body": "Hi Ann"}
    what = send_now(
        lead=lead,
        by=agent,
        channel="email",
        subject=draft["subject"],
        body="Hi Ann, it's here.",
        now=T0,
        key="k1",
    )
    send_now(
        lead=lead,
        by=agent,
        channel="email",
        subject=draft["subject"],
        body="Hi Ann, it's here.",
        now=T0,
        key="k1",
    )
    assert what == "email to ann@example.com queued"
    while run_due_once(now=T0):
        pass
    [sent] = [m for m in mail.outbox if m.body.startswith("Hi Ann, it's here.")]
    assert agent.display_name in sent.from_email and "No more emails from us" in sent.body
    assert Touch.objects.filter(customer=lead.customer, channel="email", by=agent).count() == 1
    assert lead.events.filter(kind="attempt", data__channel="email").exists()


def test_send_now_says_why_not_and_when(rooftop, bdc_team, agent):
    lead = new_lead(rooftop, phone="(312) 234-5678")
    night = dt.datetime(2026, 3, 10, 22, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5))).astimezone(dt.UTC)
    with pytest.raises(ComposeError, match="next allowed"):
        send_now(lead=lead, by=agent, channel="text", body="Still interested?", now=night)
    with pytest.raises(ComposeError, match="write something"):
        send_now(lead=lead, by=agent, channel="email", subject="x", body="  ", now=T0)

"""Two-way text against a real HTTP server speaking the provider's API on loopback."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from pursuit.compliance.models import Touch
from pursuit.compliance.services import consent_record
from pursuit.conftest import T0
from pursuit.leads.services import attempt_log
from pursuit.plans.models import PlanStep, Step
from pursuit.plans.tests.test_plans import new_lead, plans  # noqa: F401 (the plans fixture)
from pursuit.texting.models import TextMessage
from pursuit.texting.provider import signature
from pursuit.work.services import run_due_once

pytestmark = pytest.mark.usefixtures("plans")
NUMBER = "+13122345678"


def drain(now):
    while run_due_once(now=now):
        pass


@pytest.fixture
def texting(rooftop, text_provider, settings):
    rooftop.text_number = "+13125550199"
    rooftop.save()
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    return text_provider


def text_lead(rooftop):
    """A lead whose intro step is an automatic text, with written consent to texts."""
    lead = new_lead(rooftop, phone="(312) 234-5678")
    intro = Step.objects.get(lead=lead, plan_step__name="Intro email")
    PlanStep.objects.filter(pk=intro.plan_step_id).update(channel="text")
    Step.objects.filter(pk=intro.pk).update(channel="text")
    consent_record(
        customer=lead.customer,
        channel="text",
        granted=True,
        written=True,
        source="form",
        evidence="signed",
        at=T0,
    )
    return lead, intro


def post_signed(client, path, params, token=None, at=T0):
    from django.conf import settings

    from pursuit.conftest import TextProviderStandIn

    sig = signature(settings.BASE_URL + path, params, token or TextProviderStandIn.TOKEN)
    with time_machine.travel(at, tick=False):  # the webhook reads the clock
        return client.post(path, params, HTTP_X_TWILIO_SIGNATURE=sig)


def test_an_automatic_text_goes_through_the_provider_once(rooftop, bdc_team, texting):
    lead, intro = text_lead(rooftop)
    drain(T0)
    [request] = texting.requests
    assert request["To"] == NUMBER and request["From"] == "+13125550199"
    assert request["Body"].startswith("Hi Ann") and request["StatusCallback"].endswith(
        "/webhooks/text/status/"
    )
    sent = TextMessage.objects.get(key=f"step:{intro.pk}")
    assert sent.status == "sent" and sent.provider_id == "SM" + "1".zfill(32)
    assert Touch.objects.filter(customer=lead.customer, channel="text", automated=True).count() == 1
    assert lead.events.filter(kind="text-out").exists()
    intro.refresh_from_db()
    assert intro.status == "done"
    drain(T0 + dt.timedelta(minutes=30))
    assert len(texting.requests) == 1


def test_a_provider_outage_is_retried_and_a_bad_number_fails_for_good(rooftop, bdc_team, texting):
    from pursuit.texting.services import text_queue

    texting.fail_next = 1
    lead, _ = text_lead(rooftop)
    drain(T0)
    assert texting.requests == []  # the 503
    drain(T0 + dt.timedelta(minutes=1))
    assert len(texting.requests) == 1
    bad = text_queue(  # a number that is not the customer's: the provider refuses it
        rooftop=rooftop,
        lead=lead,
        to="+15005550001",
        body="hi",
        now=T0,
        key="x",
        purpose="transactional",
    )
    drain(T0 + dt.timedelta(minutes=2))
    bad.refresh_from_db()
    assert bad.status == "failed" and "21211" in bad.error


def test_a_reply_lands_on_the_lead_and_holds_the_automatic_steps_until_answered(
    rooftop, bdc_team, texting, client
):
    lead = new_lead(rooftop, phone="(312) 234-5678")
    params = {"From": NUMBER, "To": "+13125550199", "Body": "Is it still available?", "MessageSid": "SMin1"}
    assert post_signed(client, "/webhooks/text/", params).status_code == 200
    assert post_signed(client, "/webhooks/text/", params).status_code == 200  # the provider retried
    [received] = TextMessage.objects.filter(direction="in")
    assert received.lead == lead and received.body == "Is it still available?"
    lead.refresh_from_db()
    assert lead.reply_waiting_at == T0 and lead.first_reply_at == T0
    assert lead.events.filter(kind="text-in").count() == 1
    intro = Step.objects.get(lead=lead, plan_step__name="Intro email")
    assert intro.status == "held"
    assert lead.owner.notifications.filter(kind="reply").exists()
    drain(T0 + dt.timedelta(hours=1))
    intro.refresh_from_db()
    assert intro.status == "held"  # nothing automatic while a person owes an answer
    attempt_log(lead=lead, user=lead.owner, channel="call", outcome="talked", now=T0 + dt.timedelta(hours=2))
    intro.refresh_from_db()
    assert intro.status == "pending" and intro.due_at == T0 + dt.timedelta(hours=2)


def test_a_forged_webhook_is_refused(rooftop, texting, client):
    params = {"From": NUMBER, "To": "+13125550199", "Body": "STOP", "MessageSid": "SMforged"}
    assert post_signed(client, "/webhooks/text/", params, token="wrong").status_code == 403
    assert client.post("/webhooks/text/", params).status_code == 403
    assert not TextMessage.objects.exists()


def test_stop_by_text_gets_one_confirmation_and_nothing_after(rooftop, bdc_team, texting, client):
    lead, intro = text_lead(rooftop)
    params = {"From": NUMBER, "To": "+13125550199", "Body": "STOP", "MessageSid": "SMstop"}
    assert post_signed(client, "/webhooks/text/", params).status_code == 200
    drain(T0)
    assert (
        texting.bodies(NUMBER) == [texting.bodies(NUMBER)[0]]
        and "STOP" not in texting.bodies(NUMBER)[0].split(":")[0]
    )
    assert (
        "no more" in texting.bodies(NUMBER)[0].lower() or "unsubscribed" in texting.bodies(NUMBER)[0].lower()
    )
    intro.refresh_from_db()
    assert intro.status == "cancelled"
    lead.refresh_from_db()
    assert lead.status == "closed"
    drain(T0 + dt.timedelta(days=40))
    assert len(texting.bodies(NUMBER)) == 1


def test_delivery_reports_update_the_text(rooftop, bdc_team, texting, client):
    text_lead(rooftop)
    drain(T0)
    sent = TextMessage.objects.get(direction="out")
    params = {"MessageSid": sent.provider_id, "MessageStatus": "delivered"}
    assert post_signed(client, "/webhooks/text/status/", params).status_code == 204
    sent.refresh_from_db()
    assert sent.status == "delivered"

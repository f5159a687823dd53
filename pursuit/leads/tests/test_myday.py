"""My day: the order of the list, the gate's word on each call, and a flat query count."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from pursuit.appointments.services import appointment_set
from pursuit.conftest import T0
from pursuit.leads.models import Lead
from pursuit.leads.myday import my_day
from pursuit.plans.services import callback_add, on_reply
from pursuit.plans.tests.test_plans import new_lead, plans  # noqa: F401 (the plans fixture)

pytestmark = pytest.mark.usefixtures("plans")


def test_the_list_comes_in_the_trades_order_with_what_to_say(rooftop, bdc_team, agent):
    fresh = new_lead(rooftop, first="Fay", email="fay@example.com", phone="(312) 234-5670")
    replied = new_lead(rooftop, first="Ray", email="ray@example.com", phone="(312) 234-5671")
    promised = new_lead(rooftop, first="Pam", email="pam@example.com", phone="(312) 234-5672")
    Lead.objects.filter(pk__in=[fresh.pk, replied.pk, promised.pk]).update(owner=agent)
    Lead.objects.filter(pk__in=[replied.pk, promised.pk]).update(first_attempt_at=T0)
    on_reply(lead=replied, channel="text", text="Is it still there?", now=T0)
    callback_add(lead=promised, by=agent, point="Tell her about the extended warranty", now=T0)
    appointment_set(lead=promised, starts_at=T0 + dt.timedelta(hours=4), by=agent, now=T0)
    items = my_day(user=agent, now=T0 + dt.timedelta(minutes=1))
    kinds = [i.kind for i in items]
    assert kinds[:3] == ["new", "reply", "callback"] and "appointment" in kinds
    assert kinds.index("call") < kinds.index("appointment")
    new = items[0]
    assert new.lead == fresh and 0 < new.seconds_left <= 5 * 60
    callback = items[2]
    assert callback.script == "Tell her about the extended warranty"
    call = next(i for i in items if i.kind == "call")
    assert call.allowed and call.step.plan_step.name == "First call"


def test_a_call_that_may_not_be_made_now_says_when(rooftop, bdc_team, agent):
    lead = new_lead(rooftop, phone="(305) 234-5678")  # a Florida number
    Lead.objects.filter(pk=lead.pk).update(owner=agent)
    late = dt.datetime(2026, 3, 10, 20, 30, tzinfo=dt.timezone(dt.timedelta(hours=-4))).astimezone(dt.UTC)
    [call] = [i for i in my_day(user=agent, now=late) if i.kind == "call"]
    assert not call.allowed and call.gate_rule == "quiet-hours:FL"
    assert (call.allowed_at.hour, call.allowed_at.day) == (8, 11)


def test_the_query_count_does_not_grow_with_the_list(rooftop, bdc_team, agent):
    def count():
        with CaptureQueriesContext(connection) as queries:
            my_day(user=agent, now=T0 + dt.timedelta(minutes=1))
        return len(queries)

    first = new_lead(rooftop, first="A0", email="a0@example.com", phone="(312) 234-5600")
    Lead.objects.filter(pk=first.pk).update(owner=agent)
    few = count()
    for n in range(1, 8):
        lead = new_lead(rooftop, first=f"A{n}", email=f"a{n}@example.com", phone=f"(312) 234-56{n:02d}")
        Lead.objects.filter(pk=lead.pk).update(owner=agent)
    assert count() == few


def test_a_long_list_shows_the_most_urgent_and_counts_the_rest(rooftop, bdc_team, agent):
    for n in range(4):
        lead = new_lead(rooftop, first=f"N{n}", email=f"n{n}@example.com", now=T0 + dt.timedelta(minutes=n))
        Lead.objects.filter(pk=lead.pk).update(owner=agent)
    day = my_day(user=agent, now=T0 + dt.timedelta(minutes=10), limit=1)
    new = [i for i in day if i.kind == "new"]
    assert [i.lead.customer.first_name for i in new] == ["N3"]  # the newest: still winnable
    assert day.more == 3

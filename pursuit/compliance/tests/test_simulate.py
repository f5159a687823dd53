"""The simulated year, small: a few weeks of a rooftop through the real intake, plans, gate and
worker keep every rule and leave no open lead without a next step; and the checker that says so
can fail (a planted call at 23:00, a touch after a stop)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from pursuit.compliance.models import Decision, Touch
from pursuit.compliance.services import staff_do_not_contact
from pursuit.compliance.simulate import simulate, violations_find
from pursuit.conftest import T0
from pursuit.intake.services import payload_receive
from pursuit.intake.tests.test_intake import adf
from pursuit.leads.models import Lead

CHICAGO = ZoneInfo("America/Chicago")


@pytest.mark.django_db
def test_three_simulated_weeks_keep_every_rule_and_leave_no_lead_without_a_next_step():
    report = simulate(customers=30, days=21, seed=3)

    assert report.text().splitlines()[-2:] == [
        f"violations: {len(report.violations)}",
        f"uncovered: {report.uncovered}",
    ]
    assert report.violations == [], "\n".join(v.describe(CHICAGO) for v in report.violations[:5])
    assert report.uncovered == 0
    # It did something worth checking: people and the worker touched customers, and the gate
    # held some touches back.
    assert Touch.objects.filter(automated=False, channel="call").count() > 20
    assert Touch.objects.filter(automated=True, channel="email").count() > 20
    assert Touch.objects.filter(automated=False, channel="text").exists()
    assert Decision.objects.filter(verdict="defer").exists()
    assert Decision.objects.filter(verdict="deny").exists()


def _customer(rooftop, phone="(312) 234-5678"):
    _, [result] = payload_receive(
        rooftop=rooftop, channel="adf-http", now=T0, content=adf("Ann", "Lee", "ann@example.com", phone=phone)
    )
    return Lead.objects.select_related("customer").get(pk=result.lead).customer


def _local(hour: int, day: int = 11) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, 0, tzinfo=CHICAGO).astimezone(dt.UTC)


def test_a_call_at_23_00_local_is_counted_and_one_at_11_00_is_not(rooftop, bdc_team):
    customer = _customer(rooftop)
    fine = Touch.objects.create(customer=customer, channel="call", purpose="marketing", at=_local(11))
    late = Touch.objects.create(customer=customer, channel="call", purpose="marketing", at=_local(23))

    [violation] = violations_find()

    assert violation.touch == late.pk != fine.pk
    assert violation.rule.startswith("defer:quiet-hours")


def test_a_fourth_sales_call_in_24_hours_is_counted(rooftop, bdc_team):
    customer = _customer(rooftop)
    calls = [
        Touch.objects.create(customer=customer, channel="call", purpose="marketing", at=_local(hour))
        for hour in (10, 12, 14, 16)
    ]

    [violation] = violations_find()

    assert violation.touch == calls[-1].pk and violation.rule == "defer:cap:rooftop-24h"


def test_a_touch_after_the_customer_asked_to_stop_is_counted(rooftop, bdc_team, manager):
    customer = _customer(rooftop)
    before = Touch.objects.create(customer=customer, channel="email", purpose="marketing", at=_local(10))
    staff_do_not_contact(customer=customer, at=_local(11), by=manager)
    after = Touch.objects.create(customer=customer, channel="email", purpose="transactional", at=_local(12))

    [violation] = violations_find()

    assert violation.touch == after.pk != before.pk
    assert violation.rule == "after-stop:do-not-contact"

"""The guarantee, as a property: whatever happens to a lead, in whatever order and at whatever
time, an open lead always has a next step."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pursuit.conftest import T0
from pursuit.leads.models import Lead
from pursuit.leads.services import LeadError, attempt_log, lead_status_change
from pursuit.plans.services import (
    OBJECTIONS,
    PlanError,
    callback_add,
    callback_done,
    coverage_gaps,
    visit_log,
)
from pursuit.plans.tests.test_plans import new_lead, plans  # noqa: F401 - `plans` is a fixture
from pursuit.work.services import run_due_once

actions = st.one_of(
    st.tuples(st.just("attempt"), st.sampled_from(["no-answer", "voicemail", "talked", "bad-number"])),
    st.tuples(
        st.just("status"), st.sampled_from(["new", "working", "appointment", "sold", "lost", "closed"])
    ),
    st.tuples(st.just("visit"), st.sampled_from(sorted(OBJECTIONS))),
    st.tuples(st.just("callback"), st.just("")),
    st.tuples(st.just("wait"), st.sampled_from([5, 60, 60 * 24, 60 * 24 * 7, 60 * 24 * 40])),
)


class Rollback(Exception):
    pass


@pytest.fixture(params=["small plans", "shipped defaults"])
def plan_set(request, rooftop):
    if request.param == "small plans":
        return request.getfixturevalue("plans")
    from pursuit.plans.files import plans_install_defaults

    return plans_install_defaults(rooftop=rooftop, now=T0)


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(actions, min_size=1, max_size=12))
def test_an_open_lead_always_has_a_next_step(rooftop, bdc_team, manager, plan_set, steps):
    try:
        with transaction.atomic():
            now = T0
            lead = new_lead(rooftop, now=now)
            for kind, value in steps:
                now += dt.timedelta(minutes=1)
                lead.refresh_from_db()
                try:
                    if kind == "attempt":
                        attempt_log(lead=lead, user=manager, channel="call", outcome=value, now=now)
                    elif kind == "status":
                        reason = "bought elsewhere" if value == "lost" and now.minute % 2 else "not now"
                        lead_status_change(lead=lead, user=manager, status=value, now=now, reason=reason)
                    elif kind == "visit":
                        visit_log(lead=lead, by=manager, objection=value, now=now)
                    elif kind == "callback":
                        callback_done(
                            step=callback_add(lead=lead, by=manager, point="forgot", now=now),
                            by=manager,
                            now=now,
                        )
                    else:
                        now += dt.timedelta(minutes=value)
                        while run_due_once(now=now):
                            pass
                except (LeadError, PlanError):
                    pass  # a refused action changes nothing
                assert not coverage_gaps().exists(), (kind, value, Lead.objects.get(pk=lead.pk).status)
            raise Rollback
    except Rollback:
        pass

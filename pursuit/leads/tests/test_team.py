"""The manager's day: counts per person, missed response limits, bulk reassignment."""

from __future__ import annotations

import datetime as dt

import pytest

from pursuit.conftest import T0
from pursuit.leads.models import Lead
from pursuit.leads.services import attempt_log, leads_reassign
from pursuit.leads.team import missed_response_today, team_today
from pursuit.plans.models import Step
from pursuit.plans.tests.test_plans import new_lead, plans  # noqa: F401 (the plans fixture)

pytestmark = pytest.mark.usefixtures("plans")


def test_counts_per_person_and_the_leads_that_missed_the_limit(rooftop, bdc_team, agent, agent2, manager):
    slow = new_lead(rooftop, first="Sol", email="sol@example.com")
    quick = new_lead(rooftop, first="Qi", email="qi@example.com")
    Lead.objects.filter(pk__in=[slow.pk, quick.pk]).update(owner=agent)
    Step.objects.filter(lead__in=[slow, quick], action="task").update(assignee=agent)
    attempt_log(lead=quick, user=agent, channel="call", outcome="no-answer", now=T0 + dt.timedelta(minutes=2))
    now = T0 + dt.timedelta(minutes=30)
    rows = {row.user: row for row in team_today(rooftop=rooftop, now=now)}
    assert rows[agent].completed == 1 and rows[agent].overdue == 1 and rows[agent].due >= 1
    assert rows[agent2].due == 0 and manager in rows
    assert list(missed_response_today(rooftop=rooftop, now=now)) == [slow]


def test_bulk_reassignment_moves_the_leads_and_their_tasks(rooftop, bdc_team, agent, agent2, manager):
    leads = [new_lead(rooftop, first=f"B{n}", email=f"b{n}@example.com") for n in range(3)]
    Lead.objects.filter(pk__in=[lead.pk for lead in leads]).update(owner=agent)
    Step.objects.filter(lead__in=leads, action="task").update(assignee=agent)
    moved = leads_reassign(
        leads=Lead.objects.filter(pk__in=[lead.pk for lead in leads]), owner=agent2, now=T0, by=manager
    )
    assert moved == 3
    assert not Step.objects.filter(lead__in=leads, action="task", status="pending", assignee=agent).exists()
    assert all(
        lead.events.filter(kind="assigned", text__contains="reassigned in bulk").exists() for lead in leads
    )

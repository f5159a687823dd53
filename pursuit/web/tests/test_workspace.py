"""The working day's pages through Django's test client: My day, one-click outcomes,
appointments, the calendar, the manager's team page, and who may see what."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine

from pursuit.appointments.models import Appointment
from pursuit.conftest import T0
from pursuit.leads.models import Lead
from pursuit.plans.models import Step
from pursuit.plans.tests.test_plans import new_lead, plans  # noqa: F401 (the plans fixture)

pytestmark = pytest.mark.usefixtures("plans")
CHI = ZoneInfo("America/Chicago")


@pytest.fixture
def at_t0():
    with time_machine.travel(T0 + dt.timedelta(minutes=1), tick=False):
        yield


@pytest.fixture
def mine(rooftop, bdc_team, agent):
    lead = new_lead(rooftop, phone="(312) 234-5678")
    Lead.objects.filter(pk=lead.pk).update(owner=agent)
    Step.objects.filter(lead=lead, action="task").update(assignee=agent)
    lead.refresh_from_db()
    return lead


def test_my_day_lists_the_new_lead_first_and_one_click_logs_the_call(client, agent, mine, at_t0):
    client.force_login(agent)
    page = client.get("/today/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "New lead, not yet contacted" in html and str(mine.customer) in html and 'data-key="1"' in html
    answer = client.post(
        f"/today/log/{mine.pk}/", {"outcome": "voicemail", "channel": "call"}, HTTP_HX_REQUEST="true"
    )
    assert answer.status_code == 200 and 'id="today-list"' in answer.content.decode()
    mine.refresh_from_db()
    assert mine.first_attempt_at is not None
    first = Step.objects.get(lead=mine, plan_step__name="First call")
    assert first.status == "done" and first.outcome == "voicemail"
    assert mine.events.filter(kind="attempt", text__contains="left voicemail").exists()


def test_bought_elsewhere_needs_a_reason(client, agent, mine, at_t0):
    client.force_login(agent)
    answer = client.post(
        f"/today/log/{mine.pk}/", {"outcome": "bought-elsewhere", "channel": "call"}, HTTP_HX_REQUEST="true"
    )
    assert answer.status_code == 422 and "bought elsewhere" in answer.content.decode()
    client.post(
        f"/today/log/{mine.pk}/",
        {"outcome": "bought-elsewhere", "channel": "call", "note": "Toyota across the road"},
    )
    mine.refresh_from_db()
    assert mine.status == "lost" and "Toyota" in mine.lost_reason


def test_an_appointment_is_set_moved_and_downloaded_as_a_calendar_file(client, agent, mine, at_t0):
    client.force_login(agent)
    assert client.get(f"/leads/{mine.pk}/appointment/").status_code == 200
    bad = client.post(f"/leads/{mine.pk}/appointment/", {"day": "2026-03-01", "time": "10:00", "minutes": 60})
    assert bad.status_code == 422 and "already passed" in bad.content.decode()
    done = client.post(
        f"/leads/{mine.pk}/appointment/",
        {"day": "2026-03-13", "time": "14:00", "minutes": 45, "with_user": agent.pk},
    )
    assert done.status_code == 302
    appointment = Appointment.objects.get(lead=mine)
    assert appointment.starts_at == dt.datetime(2026, 3, 13, 14, 0, tzinfo=CHI) and appointment.minutes == 45
    client.post(f"/appointments/{appointment.pk}/move/", {"day": "2026-03-14", "time": "10:30"})
    appointment.refresh_from_db()
    assert appointment.starts_at == dt.datetime(2026, 3, 14, 10, 30, tzinfo=CHI) and appointment.sequence == 1
    ics = client.get(f"/appointments/{appointment.pk}.ics")
    assert ics["Content-Type"].startswith("text/calendar") and b"SEQUENCE:1" in ics.content
    week = client.get("/calendar/?start=2026-03-09")
    assert week.status_code == 200 and str(mine.customer) in week.content.decode()


def test_the_team_page_is_for_managers_and_reassigns_in_bulk(client, agent, agent2, manager, mine, at_t0):
    client.force_login(agent)
    assert client.get("/team/").status_code == 403
    client.force_login(manager)
    page = client.get("/team/")
    assert page.status_code == 200 and agent.display_name in page.content.decode()
    client.post("/team/reassign/", {"lead": [mine.pk], "owner": agent2.pk})
    mine.refresh_from_db()
    assert mine.owner == agent2


def test_nobody_sees_another_rooftops_appointments_or_lists(client, outsider, agent, mine, at_t0):
    from pursuit.appointments.services import appointment_set

    appointment = appointment_set(lead=mine, starts_at=T0 + dt.timedelta(days=2), by=agent, now=T0)
    client.force_login(outsider)
    assert client.get(f"/appointments/{appointment.pk}.ics").status_code == 404
    assert client.post(f"/appointments/{appointment.pk}/cancel/").status_code == 404
    assert client.post(f"/today/log/{mine.pk}/", {"outcome": "talked", "channel": "call"}).status_code == 404
    assert str(mine.customer) not in client.get("/today/").content.decode()
    assert str(mine.customer) not in client.get("/calendar/?start=2026-03-09").content.decode()


def test_agents_start_on_my_day_and_managers_on_the_leads(client, agent, manager, mine, at_t0):
    client.force_login(agent)
    assert "My day" in client.get("/").content.decode().split("<h1>", 1)[1][:20]
    client.force_login(manager)
    assert "Leads" in client.get("/").content.decode().split("<h1>", 1)[1][:20]

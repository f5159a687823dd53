"""Appointments with the shipped plans and a moved clock: reminders timed back from the visit,
the calendar invitation, moving, cancelling, shown and no-show."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from icalendar import Calendar

from pursuit.appointments.services import (
    AppointmentError,
    appointment_cancel,
    appointment_move,
    appointment_outcome,
    appointment_set,
)
from pursuit.conftest import T0
from pursuit.plans.files import plans_install_defaults
from pursuit.plans.models import Enrolment, Step
from pursuit.plans.tests.test_plans import new_lead
from pursuit.work.services import run_due_once

CHI = ZoneInfo("America/Chicago")
VISIT = dt.datetime(2026, 3, 13, 14, 0, tzinfo=CHI)  # Friday 14:00; T0 is Tuesday 10:00


@pytest.fixture
def lead(rooftop, bdc_team, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    plans_install_defaults(rooftop=rooftop, now=T0)
    return new_lead(rooftop, phone="(312) 234-5678")


def reminders(lead):
    return {
        s.plan_step.name: s.due_at.astimezone(CHI)
        for s in Step.objects.filter(lead=lead, enrolment__appointment__isnull=False, status__in=Step.OPEN)
    }


def drain(now):
    while run_due_once(now=now):
        pass


def invitation(message) -> Calendar:
    [(name, content, mimetype)] = [a for a in message.attachments if a[0].endswith(".ics")]
    return Calendar.from_ical(content)


def test_setting_one_times_the_reminders_back_from_the_visit_and_sends_the_invitation(lead, agent):
    appointment = appointment_set(lead=lead, starts_at=VISIT, by=agent, now=T0)
    lead.refresh_from_db()
    assert lead.status == "appointment"
    due = reminders(lead)
    assert due["Reminder call, the day before"] == dt.datetime(2026, 3, 12, 14, 0, tzinfo=CHI)
    assert due["Reminder text, two hours before"] == dt.datetime(2026, 3, 13, 12, 0, tzinfo=CHI)
    # The primary plan goes on beside it.
    assert Enrolment.objects.filter(lead=lead, primary=True, status="active").exists()
    drain(T0)
    [confirmation] = [m for m in mail.outbox if "is booked" in m.subject]
    assert "Friday, March 13 at 2 PM" in confirmation.body
    event = invitation(confirmation).walk("VEVENT")[0]
    assert event.decoded("dtstart") == VISIT.astimezone(dt.UTC)
    assert int(event["sequence"]) == 0 and str(event["uid"]).startswith(str(appointment.uid))
    assert "100 Lake St" in str(event["location"])


def test_a_visit_booked_for_this_afternoon_gets_no_day_before_reminder(lead, agent):
    appointment_set(lead=lead, starts_at=T0 + dt.timedelta(hours=5), by=agent, now=T0)
    assert "Reminder call, the day before" not in reminders(lead)
    assert reminders(lead)["Reminder text, two hours before"] == (T0 + dt.timedelta(hours=3)).astimezone(CHI)


def test_moving_it_reschedules_the_reminders_and_updates_the_same_calendar_entry(lead, agent):
    appointment = appointment_set(lead=lead, starts_at=VISIT, by=agent, now=T0)
    drain(T0)
    later = VISIT + dt.timedelta(days=4)  # Tuesday 17 March
    appointment_move(appointment=appointment, starts_at=later, by=agent, now=T0 + dt.timedelta(hours=1))
    assert reminders(lead)["Reminder call, the day before"] == dt.datetime(2026, 3, 16, 14, 0, tzinfo=CHI)
    drain(T0 + dt.timedelta(hours=1))
    first, second = [m for m in mail.outbox if "is booked" in m.subject]
    old, new = invitation(first).walk("VEVENT")[0], invitation(second).walk("VEVENT")[0]
    assert str(old["uid"]) == str(new["uid"]) and int(new["sequence"]) == 1
    assert "Tuesday, March 17" in second.body


def test_cancelling_stops_the_reminders_and_cancels_the_calendar_entry(lead, agent):
    appointment = appointment_set(lead=lead, starts_at=VISIT, by=agent, now=T0)
    appointment_cancel(
        appointment=appointment, by=agent, now=T0 + dt.timedelta(hours=1), reason="customer asked"
    )
    assert reminders(lead) == {}
    lead.refresh_from_db()
    assert lead.status == "working"
    drain(T0 + dt.timedelta(hours=1))
    [cancelled] = [m for m in mail.outbox if "cancelled" in m.subject]
    calendar = invitation(cancelled)
    assert str(calendar["method"]) == "CANCEL" and str(calendar.walk("VEVENT")[0]["status"]) == "CANCELLED"
    with pytest.raises(AppointmentError, match="cancelled"):
        appointment_move(appointment=appointment, starts_at=VISIT, by=agent, now=T0)


def test_a_no_show_moves_the_lead_to_the_no_show_plan_and_shown_keeps_its_plan(lead, agent, rooftop):
    appointment = appointment_set(lead=lead, starts_at=VISIT, by=agent, now=T0)
    with pytest.raises(AppointmentError, match="not happened yet"):
        appointment_outcome(appointment=appointment, shown=False, by=agent, now=T0)
    after = VISIT + dt.timedelta(minutes=45)
    appointment_outcome(appointment=appointment, shown=False, by=agent, now=after)
    primary = Enrolment.objects.get(lead=lead, primary=True, status="active")
    assert primary.version.plan.key == "no-show" and reminders(lead) == {}
    other = new_lead(rooftop, first="Bo", email="bo@example.com")
    before = Enrolment.objects.get(lead=other, primary=True, status="active")
    visit = appointment_set(lead=other, starts_at=VISIT, by=agent, now=T0)
    appointment_outcome(appointment=visit, shown=True, by=agent, now=after)
    assert Enrolment.objects.get(lead=other, primary=True, status="active") == before
    assert other.events.filter(kind="appointment", text__startswith="Came to").exists()


def test_appointment_times_are_checked(lead, agent):
    with pytest.raises(AppointmentError, match="passed"):
        appointment_set(lead=lead, starts_at=T0 - dt.timedelta(hours=1), by=agent, now=T0)
    with pytest.raises(AppointmentError, match="year"):
        appointment_set(lead=lead, starts_at=T0 + dt.timedelta(days=400), by=agent, now=T0)
    appointment_set(lead=lead, starts_at=VISIT, by=agent, now=T0)
    with pytest.raises(AppointmentError, match="already has"):
        appointment_set(lead=lead, starts_at=VISIT, by=agent, now=T0)


def test_the_calendar_groups_a_week_by_day_and_person(lead, agent, rooftop, consultant):
    from pursuit.appointments.selectors import calendar

    appointment_set(lead=lead, starts_at=VISIT, by=agent, now=T0, with_user=consultant)
    other = new_lead(rooftop, first="Bo", email="bo@example.com")
    appointment_set(lead=other, starts_at=VISIT + dt.timedelta(hours=1), by=agent, now=T0, with_user=agent)
    week = calendar(rooftop=rooftop, start=dt.date(2026, 3, 9))
    friday = week[4]
    assert friday.date == dt.date(2026, 3, 13) and friday.count == 2
    assert list(friday.by_person) == sorted([consultant.display_name, agent.display_name])
    assert sum(day.count for day in week) == 2
    assert calendar(rooftop=rooftop, start=dt.date(2026, 3, 9), person=agent)[4].count == 1

"""Appointments: set, reschedule, cancel, shown or missed.

Setting one puts the lead on the rooftop's plan for the event "appointment-set" (a transactional
plan beside the primary one: the confirmation with the calendar invitation, reminders timed back
from the appointment). Moving it starts that plan again for the new time, with the invitation's
SEQUENCE raised so calendars update the same entry; cancelling sends the cancellation. Shown and
no-show end the reminders and move the lead through "appointment-shown" / "appointment-missed".
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from icalendar import Calendar, Event, vCalAddress, vText

from pursuit.appointments.models import Appointment
from pursuit.leads.models import Lead, LeadEvent
from pursuit.leads.status import lead_status_set
from pursuit.org.models import User

# Booking further ahead than this is almost always a typo in the year.
MAX_AHEAD = dt.timedelta(days=366)


class AppointmentError(ValueError):
    """An appointment change that cannot be made; the message says why in plain words."""


def appointment_ics(appointment: Appointment, *, cancel: bool = False) -> bytes:
    """The calendar invitation (RFC 5545, METHOD:REQUEST or CANCEL) for the customer."""
    lead = appointment.lead
    rooftop = appointment.rooftop
    calendar = Calendar()
    calendar.add("prodid", "-//Pursuit//Appointments//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "CANCEL" if cancel else "REQUEST")
    event = Event()
    event.add("uid", f"{appointment.uid}@{rooftop.email.rpartition('@')[2] or 'pursuit.invalid'}")
    event.add("dtstamp", dt.datetime.now(dt.UTC).replace(microsecond=0))
    event.add("dtstart", appointment.starts_at.astimezone(dt.UTC))
    event.add("dtend", (appointment.starts_at + dt.timedelta(minutes=appointment.minutes)).astimezone(dt.UTC))
    event.add("sequence", appointment.sequence)
    event.add("status", "CANCELLED" if cancel else "CONFIRMED")
    person = appointment.with_user.display_name if appointment.with_user else rooftop.name
    event.add("summary", f"Visit to {rooftop.name}" + (f" with {person}" if appointment.with_user else ""))
    if rooftop.postal_address:
        event.add("location", rooftop.postal_address)
    vehicle = next((v for v in lead.vehicles.all() if v.role == "interest"), None)
    details = [f"{person} will have the {vehicle} ready for you." if vehicle else f"{person} will meet you."]
    if rooftop.phone:
        details.append(f"To move it, reply or call {rooftop.phone}.")
    event.add("description", " ".join(details))
    organizer = vCalAddress(f"mailto:{rooftop.email}")
    organizer.params["cn"] = vText(rooftop.name)
    event["organizer"] = organizer
    email = lead.customer.emails.order_by("id").values_list("address", flat=True).first()
    if email:
        attendee = vCalAddress(f"mailto:{email}")
        attendee.params["cn"] = vText(lead.customer.full_name or email)
        attendee.params["role"] = vText("REQ-PARTICIPANT")
        event.add("attendee", attendee, encode=0)
    calendar.add_component(event)
    return calendar.to_ical()


def _locked_lead(lead: Lead) -> Lead:
    return (
        Lead.objects.select_for_update(of=("self",))
        .select_related("customer", "rooftop", "owner")
        .get(pk=lead.pk)
    )


def _status(lead: Lead, status: str, now: dt.datetime, by: User | None, why: str) -> None:
    lead_status_set(lead, status, now=now, by=by, why=why)


def _check_time(starts_at: dt.datetime, now: dt.datetime) -> None:
    if starts_at.tzinfo is None:
        raise AppointmentError("the time needs a time zone")
    if starts_at < now - dt.timedelta(minutes=5):
        raise AppointmentError("that time has already passed")
    if starts_at > now + MAX_AHEAD:
        raise AppointmentError("that is more than a year ahead: check the date")


def appointment_set(
    *,
    lead: Lead,
    starts_at: dt.datetime,
    by: User | None,
    now: dt.datetime,
    with_user: User | None = None,
    minutes: int = 60,
    note: str = "",
) -> Appointment:
    from pursuit.plans.services import lead_event

    _check_time(starts_at, now)
    if not 5 <= minutes <= 8 * 60:
        raise AppointmentError("an appointment lasts between 5 minutes and 8 hours")
    with transaction.atomic():
        lead = _locked_lead(lead)
        if not lead.is_open:
            raise AppointmentError("the lead is closed: reopen it first")
        if Appointment.objects.filter(lead=lead, status=Appointment.Status.SET).exists():
            raise AppointmentError("the lead already has an appointment: move it instead")
        appointment = Appointment.objects.create(
            lead=lead,
            rooftop=lead.rooftop,
            starts_at=starts_at,
            minutes=minutes,
            with_user=with_user or lead.owner,
            note=note,
            set_by=by,
            created_at=now,
        )
        LeadEvent.objects.create(
            lead=lead,
            kind=LeadEvent.Kind.APPOINTMENT,
            at=now,
            actor=by,
            text=f"Appointment set for {_local(appointment, lead)}"
            + (f" with {appointment.with_user.display_name}" if appointment.with_user else ""),
            data={"appointment": appointment.pk, "starts_at": starts_at.isoformat()},
        )
        _status(lead, Lead.Status.APPOINTMENT, now, by, "appointment set")
        lead_event(lead=lead, event="appointment-set", now=now, by=by, appointment=appointment)
        return appointment


def appointment_move(
    *, appointment: Appointment, starts_at: dt.datetime, by: User | None, now: dt.datetime
) -> Appointment:
    from pursuit.plans.services import _end, lead_event

    _check_time(starts_at, now)
    with transaction.atomic():
        lead = _locked_lead(appointment.lead)
        appointment = Appointment.objects.select_for_update().get(pk=appointment.pk)
        if appointment.status != Appointment.Status.SET:
            raise AppointmentError(f"the appointment is {appointment.get_status_display().lower()}")
        before = _local(appointment, lead)
        appointment.starts_at, appointment.sequence = starts_at, appointment.sequence + 1
        appointment.save(update_fields=["starts_at", "sequence"])
        _end(lead, now, "appointment moved", appointment=appointment)
        LeadEvent.objects.create(
            lead=lead,
            kind=LeadEvent.Kind.APPOINTMENT,
            at=now,
            actor=by,
            text=f"Appointment moved from {before} to {_local(appointment, lead)}",
            data={"appointment": appointment.pk, "starts_at": starts_at.isoformat()},
        )
        lead_event(lead=lead, event="appointment-set", now=now, by=by, appointment=appointment)
        return appointment


def appointment_cancel(
    *, appointment: Appointment, by: User | None, now: dt.datetime, reason: str = ""
) -> Appointment:
    """Cancelled (by the customer or the dealer): the reminders stop, the customer's calendar
    entry is cancelled, and the lead goes back to working."""
    from pursuit.plans.services import _end, lead_ensure_plan
    from pursuit.work.services import job_schedule

    with transaction.atomic():
        lead = _locked_lead(appointment.lead)
        appointment = Appointment.objects.select_for_update().get(pk=appointment.pk)
        if appointment.status != Appointment.Status.SET:
            raise AppointmentError(f"the appointment is {appointment.get_status_display().lower()}")
        appointment.status, appointment.sequence, appointment.outcome_at = (
            Appointment.Status.CANCELLED,
            appointment.sequence + 1,
            now,
        )
        appointment.save(update_fields=["status", "sequence", "outcome_at"])
        _end(lead, now, "appointment cancelled", appointment=appointment)
        LeadEvent.objects.create(
            lead=lead,
            kind=LeadEvent.Kind.APPOINTMENT,
            at=now,
            actor=by,
            text=f"Appointment of {_local(appointment, lead)} cancelled" + (f": {reason}" if reason else ""),
            data={"appointment": appointment.pk, "cancelled": True},
        )
        if lead.status == Lead.Status.APPOINTMENT:
            _status(lead, Lead.Status.WORKING, now, by, "appointment cancelled")
        job_schedule(
            kind="appointment-cancel-email",
            key=f"appointment-cancel:{appointment.pk}",
            due_at=now,
            now=now,
            lead=lead,
            data={"appointment": appointment.pk},
            priority=0,
        )
        if lead.is_open:
            lead_ensure_plan(lead=lead, now=now)
        return appointment


def appointment_outcome(
    *, appointment: Appointment, shown: bool, by: User | None, now: dt.datetime
) -> Appointment:
    """The day's answer: the customer came (the lead moves through "appointment-shown") or not
    ("appointment-missed": the no-show plan)."""
    from pursuit.plans.services import _end, lead_ensure_plan, lead_event

    with transaction.atomic():
        lead = _locked_lead(appointment.lead)
        appointment = Appointment.objects.select_for_update().get(pk=appointment.pk)
        if appointment.status != Appointment.Status.SET:
            raise AppointmentError(f"the appointment is already {appointment.get_status_display().lower()}")
        if appointment.starts_at > now + dt.timedelta(hours=12):
            raise AppointmentError("the appointment has not happened yet")
        appointment.status = Appointment.Status.SHOWN if shown else Appointment.Status.NO_SHOW
        appointment.outcome_at = now
        appointment.save(update_fields=["status", "outcome_at"])
        _end(lead, now, "appointment shown" if shown else "appointment missed", appointment=appointment)
        LeadEvent.objects.create(
            lead=lead,
            kind=LeadEvent.Kind.APPOINTMENT,
            at=now,
            actor=by,
            text=("Came to the appointment of " if shown else "Did not come to the appointment of ")
            + _local(appointment, lead),
            data={"appointment": appointment.pk, "shown": shown},
        )
        _status(lead, Lead.Status.WORKING, now, by, "appointment shown" if shown else "no-show")
        lead_event(lead=lead, event="appointment-shown" if shown else "appointment-missed", now=now, by=by)
        lead_ensure_plan(lead=lead, now=now)
        return appointment


def _local(appointment: Appointment, lead: Lead) -> str:
    from zoneinfo import ZoneInfo

    local = appointment.starts_at.astimezone(ZoneInfo(lead.rooftop.time_zone))
    return f"{local:%a %-d %b %-I:%M %p}"


def appointment_cancel_email_run(job, *, now: dt.datetime) -> None:
    """The worker's handler: the cancellation, with METHOD:CANCEL so calendars remove it."""
    from email.utils import formataddr

    from pursuit.compliance.gate import may_contact
    from pursuit.outreach.inbound import reply_to
    from pursuit.outreach.services import _domain, _send

    appointment = Appointment.objects.select_related(
        "lead__customer", "lead__rooftop", "lead__owner", "rooftop", "with_user"
    ).get(pk=job.data["appointment"])
    lead = appointment.lead
    to = lead.customer.emails.order_by("id").values_list("address", flat=True).first()
    if not to or not may_contact(lead.customer, "email", "transactional", now, lead=lead).allowed:
        return
    rooftop = appointment.rooftop
    sent = _send(
        lead=lead,
        kind="appointment-cancel",
        to=to,
        subject=f"Your visit to {rooftop.name} is cancelled",
        body=(
            f"Hi {lead.customer.first_name or 'there'},\n\nYour visit of {_local(appointment, lead)} is cancelled. "
            f"Whenever you'd like another time, reply to this email"
            + (f" or call {rooftop.phone}" if rooftop.phone else "")
            + f".\n\n{rooftop.name}\n{rooftop.postal_address}\n"
        ),
        from_email=formataddr((rooftop.name, rooftop.email or settings.DEFAULT_FROM_EMAIL)),
        reply_to=reply_to(lead),
        message_id=f"<appointment-cancel.{appointment.pk}@{_domain(rooftop.email)}>",
        now=now,
        attachments=[
            ("cancel.ics", appointment_ics(appointment, cancel=True), "text/calendar; method=CANCEL")
        ],
    )
    if sent is not None:
        from pursuit.compliance.gate import touch_record

        touch_record(
            customer=lead.customer,
            channel="email",
            purpose="transactional",
            at=now,
            lead=lead,
            automated=True,
            what="appointment cancelled",
        )

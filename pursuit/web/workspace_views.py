"""The working day: My day, logging an outcome in one click, appointments, the calendar and the
manager's team page. Thin: each view parses, calls a service or selector, renders."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from pursuit.appointments.models import Appointment
from pursuit.appointments.selectors import calendar
from pursuit.appointments.services import (
    AppointmentError,
    appointment_cancel,
    appointment_ics,
    appointment_move,
    appointment_outcome,
    appointment_set,
)
from pursuit.leads import selectors
from pursuit.leads.models import Lead
from pursuit.leads.myday import my_day
from pursuit.leads.services import LeadError, attempt_log, lead_status_change, leads_reassign
from pursuit.leads.team import missed_response_today, team_today
from pursuit.lib import clock
from pursuit.org.models import User
from pursuit.plans.services import PlanError, coverage_gaps, reply_handled
from pursuit.web.plan_views import manager_rooftop
from pursuit.web.views import is_htmx, rooftop_time
from pursuit.web.workspace_forms import AppointmentForm, BulkReassignForm, MoveForm, OutcomeForm


def _today_context(request: HttpRequest) -> dict:
    user = request.user
    everyone = user.is_manager and request.GET.get("scope") == "all"
    now = clock.now()
    items = my_day(user=user, now=now, everyone=everyone) if user.rooftop_id else []
    return {
        "items": items,
        "now": now,
        "everyone": everyone,
        "outcome_choices": OutcomeForm.base_fields["outcome"].choices,
    }


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Agents and consultants start on My day; managers on the rooftop's leads."""
    from pursuit.web.views import lead_list

    return lead_list(request) if request.user.is_manager else today(request)


@login_required
@rooftop_time
def today(request: HttpRequest) -> HttpResponse:
    """My day. htmx polls the list (every 20 s) so new leads appear without a reload."""
    context = _today_context(request)
    if is_htmx(request):
        return render(request, "web/today.html#list", context)
    return render(request, "web/today.html", context)


@require_POST
@login_required
@rooftop_time
def today_log(request: HttpRequest, lead_id: int) -> HttpResponse:
    """One click on an outcome: the touch is recorded, the step done, the plan chooses the next
    one. "Appointment set" goes to the lead's appointment form."""
    lead = selectors.lead_for_user(request.user, lead_id)
    form = OutcomeForm(request.POST)
    error = ""
    if form.is_valid():
        data, now = form.cleaned_data, clock.now()
        try:
            _outcome(lead, request.user, data, now)
        except (LeadError, PlanError) as exc:
            error = str(exc)
    else:
        error = " ".join(m for errors in form.errors.values() for m in errors)
    if error:
        messages.error(request, f"{lead.customer}: {error}")
    if is_htmx(request):
        return render(
            request,
            "web/today.html#list",
            _today_context(request) | {"error": error},
            status=422 if error else 200,
        )
    return redirect("today")


def _outcome(lead: Lead, user: User, data: dict, now: dt.datetime) -> None:
    from pursuit.compliance.services import stop_request

    outcome, channel, note = data["outcome"], data["channel"], (data.get("note") or "").strip()
    if outcome in ("no-answer", "voicemail", "talked", "bad-number"):
        attempt_log(lead=lead, user=user, channel=channel, outcome=outcome, now=now, note=note)
    elif outcome == "stop":
        attempt_log(
            lead=lead, user=user, channel=channel, outcome="talked", now=now, note=note or "asked us to stop"
        )
        stop_request(
            customer=lead.customer,
            channel=channel,
            source="told staff",
            note=note,
            at=now,
            by=user,
            lead=lead,
        )
    elif outcome == "sold":
        attempt_log(lead=lead, user=user, channel=channel, outcome="talked", now=now, note=note)
        lead_status_change(lead=lead, user=user, status=Lead.Status.SOLD, now=now, reason=note)
    elif outcome == "bought-elsewhere":
        attempt_log(lead=lead, user=user, channel=channel, outcome="talked", now=now, note=note)
        lead_status_change(
            lead=lead, user=user, status=Lead.Status.LOST, now=now, reason=f"bought elsewhere: {note}"
        )


@require_POST
@login_required
@rooftop_time
def reply_answered(request: HttpRequest, lead_id: int) -> HttpResponse:
    lead = selectors.lead_for_user(request.user, lead_id)
    reply_handled(lead=lead, now=clock.now(), by=request.user)
    if is_htmx(request):
        return render(request, "web/today.html#list", _today_context(request))
    return redirect(request.POST.get("next") or "today")


# --------------------------------------------------------------------------- appointments


def _appointment_for_user(user: User, appointment_id: int) -> Appointment:
    appointment = (
        Appointment.objects.select_related("lead__customer", "lead__rooftop", "rooftop", "with_user")
        .filter(pk=appointment_id)
        .first()
    )
    if appointment is None:
        raise Http404("No such appointment")
    selectors.lead_for_user(user, appointment.lead_id)  # the same tenancy rule as the lead
    return appointment


@login_required
@rooftop_time
def lead_appointment(request: HttpRequest, lead_id: int) -> HttpResponse:
    """Set an appointment on the lead (GET shows the form)."""
    lead = selectors.lead_for_user(request.user, lead_id)
    form = AppointmentForm(
        request.POST or None, rooftop=lead.rooftop, initial={"with_user": lead.owner, "minutes": 60}
    )
    if request.method == "POST" and form.is_valid():
        try:
            appointment_set(
                lead=lead,
                starts_at=form.starts_at(),
                by=request.user,
                now=clock.now(),
                with_user=form.cleaned_data["with_user"],
                minutes=form.cleaned_data["minutes"],
                note=form.cleaned_data["note"],
            )
        except AppointmentError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Appointment set: the confirmation and invitation are on their way.")
            return redirect("lead", lead_id=lead.pk)
    open_appointment = Appointment.objects.filter(lead=lead, status=Appointment.Status.SET).first()
    return render(
        request,
        "web/appointment.html",
        {"lead": lead, "form": form, "appointment": open_appointment, "move_form": MoveForm()},
        status=422 if request.method == "POST" else 200,
    )


@require_POST
@login_required
@rooftop_time
def appointment_change(request: HttpRequest, appointment_id: int, action: str) -> HttpResponse:
    appointment = _appointment_for_user(request.user, appointment_id)
    now = clock.now()
    try:
        if action == "move":
            form = MoveForm(request.POST)
            if not form.is_valid():
                raise AppointmentError("choose a day and a time")
            from zoneinfo import ZoneInfo

            starts = dt.datetime.combine(
                form.cleaned_data["day"],
                form.cleaned_data["time"],
                tzinfo=ZoneInfo(appointment.rooftop.time_zone),
            )
            appointment_move(appointment=appointment, starts_at=starts, by=request.user, now=now)
            messages.success(
                request, "Appointment moved: the customer gets the new time and an updated invitation."
            )
        elif action == "cancel":
            appointment_cancel(
                appointment=appointment,
                by=request.user,
                now=now,
                reason=request.POST.get("reason", "").strip(),
            )
            messages.success(
                request, "Appointment cancelled; the customer's calendar entry is cancelled too."
            )
        elif action in ("shown", "no-show"):
            appointment_outcome(appointment=appointment, shown=action == "shown", by=request.user, now=now)
            messages.success(
                request, "Marked " + ("shown." if action == "shown" else "no-show: the no-show plan starts.")
            )
        else:
            raise Http404("No such action")
    except AppointmentError as exc:
        messages.error(request, f"Not changed: {exc}.")
    return redirect(request.POST.get("next") or reverse("lead", args=[appointment.lead_id]))


@login_required
def appointment_invite(request: HttpRequest, appointment_id: int) -> HttpResponse:
    appointment = _appointment_for_user(request.user, appointment_id)
    response = HttpResponse(
        appointment_ics(appointment, cancel=appointment.status == Appointment.Status.CANCELLED),
        content_type="text/calendar; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="appointment-{appointment.pk}.ics"'
    return response


@login_required
@rooftop_time
def calendar_page(request: HttpRequest) -> HttpResponse:
    rooftop = request.user.rooftop
    if rooftop is None:
        raise PermissionDenied("Your account is not attached to a rooftop.")
    now = clock.now().astimezone(rooftop.tz)
    try:
        start = dt.date.fromisoformat(request.GET.get("start", ""))
    except ValueError:
        start = now.date() - dt.timedelta(days=now.weekday())
    person = None
    if request.GET.get("person"):
        person = User.objects.filter(rooftop=rooftop, pk=request.GET["person"]).first()
    days = calendar(rooftop=rooftop, start=start, days=7, person=person)
    return render(
        request,
        "web/calendar.html",
        {
            "days": days,
            "start": start,
            "previous": start - dt.timedelta(days=7),
            "next": start + dt.timedelta(days=7),
            "today": now.date(),
            "people": User.objects.filter(rooftop=rooftop, is_active=True).order_by("first_name"),
            "person": person,
        },
    )


# --------------------------------------------------------------------------- manager


@login_required
@rooftop_time
def team(request: HttpRequest) -> HttpResponse:
    rooftop = manager_rooftop(request.user)
    now = clock.now()
    missed = missed_response_today(rooftop=rooftop, now=now)
    gaps = coverage_gaps(rooftop=rooftop)
    return render(
        request,
        "web/team.html",
        {
            "rows": team_today(rooftop=rooftop, now=now),
            # A bad day (or a big import) can make these long: the first 100 and the count.
            "gaps": list(gaps.select_related("customer", "owner")[:100]),
            "gaps_count": gaps.count(),
            "missed": list(missed[:100]),
            "missed_count": missed.count(),
            "open_leads": Lead.objects.filter(rooftop=rooftop, status__in=Lead.OPEN_STATUSES)
            .select_related("customer", "owner")
            .order_by("owner__first_name", "-created_at")[:500],
            "form": BulkReassignForm(rooftop=rooftop),
        },
    )


@require_POST
@login_required
@rooftop_time
def team_reassign(request: HttpRequest) -> HttpResponse:
    rooftop = manager_rooftop(request.user)
    form = BulkReassignForm(request.POST, rooftop=rooftop)
    ids = [int(x) for x in request.POST.getlist("lead") if x.isdigit()]
    if not ids:
        messages.error(request, "Choose the leads to give away.")
    elif form.is_valid():
        leads = Lead.objects.filter(rooftop=rooftop, pk__in=ids).select_related("owner")
        try:
            moved = leads_reassign(
                leads=leads, owner=form.cleaned_data["owner"], now=clock.now(), by=request.user
            )
        except LeadError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(
                request,
                f"{moved} lead{'s' if moved != 1 else ''} now with {form.cleaned_data['owner'].display_name}.",
            )
    else:
        messages.error(request, "Choose who gets them.")
    return redirect("team")

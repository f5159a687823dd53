"""Compliance in the app: the lead page's contact-rules actions (consent, "do not contact", a
stop request confirmed) and the manager's compliance page (the rooftop's caps and flags, the
decision log).

Tenancy and roles as elsewhere: the lead actions fetch the lead with `lead_for_user` (another
rooftop's lead is a 404) and are for the lead's owner or a manager (403 otherwise); the
compliance page starts with `manager_rooftop` like the plan pages. Looking never writes to the
decision log: the pages ask the gate with `record=False` semantics (`contact_status`, `decide`).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from pursuit.compliance.models import Consent, Decision
from pursuit.compliance.services import (
    ComplianceError,
    consent_record,
    rooftop_caps_save,
    staff_do_not_contact,
    stop_request,
)
from pursuit.leads import selectors as lead_selectors
from pursuit.leads.models import Lead
from pursuit.lib import clock
from pursuit.org.models import User
from pursuit.web.forms import (
    ConsentForm,
    DecisionFilterForm,
    DoNotContactForm,
    RooftopCapsForm,
    StopConfirmForm,
)
from pursuit.web.plan_views import manager_rooftop
from pursuit.web.selectors import decision_rules, decisions_for_rooftop, registry_state
from pursuit.web.views import _lead_action, page, rooftop_time

CAP_FIELDS = (
    "cap_calls_texts_24h",
    "cap_touches_day",
    "cap_touches_week",
    "texas_registered",
    "opt_out_everywhere",
)


def may_act(user: User, lead: Lead) -> bool:
    """Who records consent and stops on a lead: its owner and the managers."""
    return user.is_manager or (lead.owner_id is not None and lead.owner_id == user.pk)


def _lead_to_act_on(request: HttpRequest, lead_id: int) -> Lead:
    lead = lead_selectors.lead_for_user(request.user, lead_id)
    if not may_act(request.user, lead):
        raise PermissionDenied("Only the lead's owner or a manager can record consent or a stop.")
    return lead


# --------------------------------------------------------------------------- the lead page's actions


@require_POST
@login_required
@rooftop_time
def lead_consent(request: HttpRequest, lead_id: int) -> HttpResponse:
    lead = _lead_to_act_on(request, lead_id)

    def act(d: dict) -> Consent:
        return consent_record(
            customer=lead.customer,
            channel=d["channel"],
            purpose=d["purpose"],
            granted=True,
            written=d["written"],
            source=Consent.Source.STAFF,
            evidence=d["evidence"],
            at=clock.now(),
            by=request.user,
            lead=lead,
        )

    return _lead_action(
        request,
        lead,
        ConsentForm(request.POST),
        act,
        done=lambda c: (
            f"Consent to {c.get_channel_display().lower()}s recorded"
            + (" (in writing)." if c.written else ".")
        ),
    )


@require_POST
@login_required
@rooftop_time
def lead_do_not_contact(request: HttpRequest, lead_id: int) -> HttpResponse:
    lead = _lead_to_act_on(request, lead_id)
    return _lead_action(
        request,
        lead,
        DoNotContactForm(request.POST),
        lambda d: staff_do_not_contact(
            customer=lead.customer, at=clock.now(), by=request.user, note=d["note"].strip()
        ),
        done=f"{lead.customer} will not be contacted again: their follow-up has stopped.",
    )


@require_POST
@login_required
@rooftop_time
def lead_stop_confirm(request: HttpRequest, lead_id: int, decision_id: int) -> HttpResponse:
    lead = _lead_to_act_on(request, lead_id)
    flag = Decision.objects.filter(
        pk=decision_id, customer_id=lead.customer_id, verdict=Decision.Verdict.FLAG, rule="possible-stop"
    ).first()
    if flag is None:
        raise Http404("No such stop request")

    # The flag's words ("the customer wrote “stop texting me”: confirm whether ..."), without the
    # question put to staff.
    said = flag.detail.split(": confirm whether")[0]

    def act(d: dict) -> list[str]:
        note = d["note"].strip()
        # Consent.source holds 16 characters: "staff", with the confirmation in the evidence.
        return stop_request(
            customer=lead.customer,
            channel=flag.channel,
            source=Consent.Source.STAFF,
            note=f"stop request confirmed by {request.user.display_name}: {said}"
            + (f" ({note})" if note else ""),
            at=clock.now(),
            by=request.user,
            lead=lead,
        )

    def done(channels: list[str]) -> str:
        if len(channels) > 1:
            return f"Stop confirmed: {lead.customer} will not be contacted again on any channel."
        return f"Stop confirmed: no more {channels[0]}s to {lead.customer}."

    return _lead_action(request, lead, StopConfirmForm(request.POST), act, done=done)


# --------------------------------------------------------------------------- the manager's page


@login_required
@rooftop_time
def compliance(request: HttpRequest) -> HttpResponse:
    rooftop = manager_rooftop(request.user)
    if request.method == "POST":
        form = RooftopCapsForm(request.POST)
        if form.is_valid():
            try:
                changed = rooftop_caps_save(
                    rooftop=rooftop,
                    by=request.user,
                    at=clock.now(),
                    **{k: form.cleaned_data[k] for k in CAP_FIELDS},
                )
            except ComplianceError as exc:
                form.add_error(None, f"Not saved: {exc}.")
            else:
                messages.success(
                    request,
                    "Caps and settings saved."
                    if changed
                    else "Nothing changed: the settings are as they were.",
                )
                return redirect("compliance")
    else:
        form = RooftopCapsForm(initial={k: getattr(rooftop, k) for k in CAP_FIELDS})
    filters = DecisionFilterForm(request.GET, rules=decision_rules(rooftop=rooftop))
    rule, verdict = filters.values()
    now = clock.now()
    context = {
        "rooftop": rooftop,
        "form": form,
        "filters": filters,
        "rule": rule,
        "verdict": verdict,
        "decisions": page(request, decisions_for_rooftop(rooftop=rooftop, rule=rule, verdict=verdict)),
        "registry": registry_state(country=rooftop.country, today=now.astimezone(rooftop.tz).date()),
    }
    status = 422 if request.method == "POST" else 200
    return render(request, "web/compliance.html", context, status=status)

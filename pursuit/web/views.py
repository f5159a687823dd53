"""Pages. Each view parses input, calls one selector or service, and renders.

Times are shown in the rooftop's time zone: `rooftop_time` activates it around the view, and
views render with `render()` (not TemplateResponse) so the page is rendered inside it.
Mutations are POST; an htmx request gets back the updated fragment (a partial of the page's own
template, so page and fragment cannot drift), any other request a redirect.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from pursuit.intake.models import Payload
from pursuit.intake.parsed import PayloadError
from pursuit.intake.services import IntakeError, payload_process, payload_store
from pursuit.leads import selectors
from pursuit.leads.models import Lead
from pursuit.leads.services import LeadError, attempt_log, lead_reassign, lead_status_change, note_add
from pursuit.lib import clock
from pursuit.plans.services import PlanError
from pursuit.web.forms import (
    AttemptForm,
    ConsentForm,
    LeadFilterForm,
    NewLeadForm,
    NoteForm,
    ReassignForm,
    StatusForm,
)
from pursuit.web.selectors import (
    contact_rules,
    notifications_for_user,
    outbox_for_user,
    plan_panel_clear,
    sent_for_user,
)

PAGE_SIZE = 50
NO_ROOFTOP = (
    "Your account is not attached to a rooftop, so you cannot create leads. "
    "Ask an administrator to set your rooftop."
)


def rooftop_time(view: Callable) -> Callable:
    """Run `view` with the user's rooftop time zone active (UTC when they have none)."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        rooftop = getattr(request.user, "rooftop", None)
        with timezone.override(rooftop.tz if rooftop else None):
            return view(request, *args, **kwargs)

    return wrapper


def is_htmx(request: HttpRequest) -> bool:
    # A history restore (back button after the cache expired) needs the whole page.
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def page(request: HttpRequest, items, size: int = PAGE_SIZE):
    return Paginator(items, size).get_page(request.GET.get("page"))


# --------------------------------------------------------------------------- lead list


@login_required
@rooftop_time
def lead_list(request: HttpRequest) -> HttpResponse:
    user = request.user
    # Managers look at the whole rooftop; agents and consultants start on their own leads. A
    # search without an explicit scope (the header search box) looks at the whole rooftop: the
    # customer on the phone may belong to a colleague.
    default_scope = "all" if user.is_manager or request.GET.get("q") else "mine"
    query, status, scope = LeadFilterForm(request.GET).values(default_scope=default_scope)
    leads = page(request, selectors.lead_list(user=user, query=query, status=status, mine=scope == "mine"))
    now = clock.now()
    context = {
        "leads": leads,
        "rows": [(lead, selectors.response_times(lead, now=now)) for lead in leads],
        "query": query,
        "status": status,
        "scope": scope,
        "status_choices": selectors.STATUS_FILTERS.items(),
        "no_rooftop": user.rooftop_id is None and not user.is_superuser,
    }
    template = "web/lead_list.html#results" if is_htmx(request) else "web/lead_list.html"
    return render(request, template, context)


# --------------------------------------------------------------------------- lead page


def _plan_panel(**kwargs):
    from pursuit.web.plan_views import lead_plan_panel  # plan_views imports this module

    return lead_plan_panel(**kwargs)


def _lead_context(request: HttpRequest, lead_id: int, **extra) -> dict:
    lead_page = selectors.lead_page(user=request.user, lead_id=lead_id)
    lead = lead_page.lead
    now = clock.now()
    # The gate's facts are loaded once for the page: the contact rules and every open step of
    # the plan panel are decided from them.
    rules = contact_rules(lead=lead, now=now)
    panel = _plan_panel(lead=lead, user=request.user, now=now)
    plan_panel_clear(panel, customer=lead.customer, facts=rules.facts, now=now)
    context = {
        "lead_page": lead_page,
        "lead": lead,
        "customer": lead.customer,
        "times": selectors.response_times(lead, now=now),
        "now": now,
        "attempt_form": AttemptForm(initial={"channel": "call"}),
        "note_form": NoteForm(),
        "status_form": StatusForm(initial={"status": lead.status}),
        "can_reassign": request.user.is_manager,
        "plan_panel": panel,
        "rules": rules,
        "can_act_compliance": request.user.is_manager or lead.owner_id == request.user.pk,
        "consent_form": ConsentForm(),
    }
    if request.user.is_manager:
        context["reassign_form"] = ReassignForm(
            staff=selectors.staff_for_reassign(lead), initial={"owner": lead.owner_id}
        )
    return context | extra


@login_required
@rooftop_time
def lead_detail(request: HttpRequest, lead_id: int) -> HttpResponse:
    context = _lead_context(request, lead_id)
    # The lead's own rooftop, which differs from the user's only for a superuser.
    with timezone.override(context["lead"].rooftop.tz):
        return render(request, "web/lead.html", context)


def _lead_action(
    request: HttpRequest, lead: Lead, form, act: Callable[[dict], object], done: str | Callable[[object], str]
) -> HttpResponse:
    """Validate `form`, run `act` (one service call), then answer with the updated fragment
    (htmx) or a redirect to the lead page. A refused change is shown, never raised. `done` is the
    notice, or makes it from what `act` returned."""
    error = ""
    if not form.is_valid():
        error = " ".join(str(e) for errors in form.errors.values() for e in errors)
    else:
        try:
            result = act(form.cleaned_data)
        except (LeadError, PlanError) as exc:
            # PlanError too: an attempt or a status change can move the lead to another plan.
            error = str(exc)
        else:
            done = done(result) if callable(done) else done
    if is_htmx(request):
        context = _lead_context(request, lead.pk, error=error, notice="" if error else done)
        with timezone.override(lead.rooftop.tz):
            # 422 is swapped in too (see htmx-config in base.html), so the error shows in place.
            return render(request, "web/lead.html#live", context, status=422 if error else 200)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, done)
    return redirect("lead", lead.pk)


@require_POST
@login_required
@rooftop_time
def lead_attempt(request: HttpRequest, lead_id: int) -> HttpResponse:
    lead = selectors.lead_for_user(request.user, lead_id)
    return _lead_action(
        request,
        lead,
        AttemptForm(request.POST),
        lambda d: attempt_log(
            lead=lead,
            user=request.user,
            channel=d["channel"],
            outcome=d["outcome"],
            note=d["note"].strip(),
            now=clock.now(),
        ),
        done="Attempt logged.",
    )


@require_POST
@login_required
@rooftop_time
def lead_note(request: HttpRequest, lead_id: int) -> HttpResponse:
    lead = selectors.lead_for_user(request.user, lead_id)
    return _lead_action(
        request,
        lead,
        NoteForm(request.POST),
        lambda d: note_add(lead=lead, user=request.user, text=d["text"], now=clock.now()),
        done="Note added.",
    )


@require_POST
@login_required
@rooftop_time
def lead_status(request: HttpRequest, lead_id: int) -> HttpResponse:
    lead = selectors.lead_for_user(request.user, lead_id)
    return _lead_action(
        request,
        lead,
        StatusForm(request.POST),
        lambda d: lead_status_change(
            lead=lead, user=request.user, status=d["status"], reason=d["reason"].strip(), now=clock.now()
        ),
        done="Status changed.",
    )


@require_POST
@login_required
@rooftop_time
def lead_reassign_view(request: HttpRequest, lead_id: int) -> HttpResponse:
    lead = selectors.lead_for_user(request.user, lead_id)
    if not request.user.is_manager:
        raise PermissionDenied("Only managers can reassign leads.")
    return _lead_action(
        request,
        lead,
        ReassignForm(request.POST, staff=selectors.staff_for_reassign(lead)),
        lambda d: lead_reassign(lead=lead, owner=d["owner"], by=request.user, now=clock.now()),
        done="Lead reassigned.",
    )


# --------------------------------------------------------------------------- new lead


@login_required
@rooftop_time
def lead_new(request: HttpRequest) -> HttpResponse:
    rooftop = request.user.rooftop
    form = NewLeadForm(request.POST) if request.method == "POST" else NewLeadForm()
    if request.method == "POST":
        if rooftop is None:
            form.add_error(None, NO_ROOFTOP)
        elif form.is_valid():
            now = clock.now()
            # Stored raw first, like every channel, so a lead that fails is kept with its reason.
            payload = payload_store(
                rooftop=rooftop,
                channel=Payload.Channel.FORM,
                source=None,
                content=json.dumps(form.lead_in()).encode(),
                content_type="application/json",
                name=f"entered by {request.user.username}",
                now=now,
            )
            try:
                # Whoever enters the lead owns it (and, for a phone-up or walk-in, is talking
                # with the customer now: that is the first attempt).
                result = payload_process(payload=payload, now=now, actor=request.user)[0]
            except PayloadError as exc:
                form.add_error(None, f"The lead was not created: {exc}.")
            except IntakeError:
                form.add_error(
                    None,
                    f"The lead could not be saved because of a problem on our side. What you "
                    f"typed is kept (payload {payload.pk}) and an administrator can re-process it.",
                )
            else:
                if result.status == "created":
                    messages.success(request, f"Lead {result.lead} created.")
                else:
                    messages.info(
                        request,
                        "This customer already has an open lead: recorded as a re-inquiry "
                        "on the existing open lead.",
                    )
                return redirect("lead", result.lead)
    return render(request, "web/lead_new.html", {"form": form, "no_rooftop": rooftop is None})


# --------------------------------------------------------------------------- outbox, notifications


@login_required
@rooftop_time
def outbox(request: HttpRequest) -> HttpResponse:
    can_see_kept = request.user.is_manager
    tab = "kept" if can_see_kept and request.GET.get("tab") == "kept" else "sent"
    items = outbox_for_user(request.user) if tab == "kept" else sent_for_user(request.user)
    return render(
        request, "web/outbox.html", {"tab": tab, "items": page(request, items), "can_see_kept": can_see_kept}
    )


@login_required
@rooftop_time
def notifications(request: HttpRequest) -> HttpResponse:
    return render(
        request, "web/notifications.html", {"items": page(request, notifications_for_user(request.user))}
    )


@require_POST
@login_required
def notifications_read(request: HttpRequest) -> HttpResponse:
    # One UPDATE of the user's own rows: there is no rule here for a service to own.
    request.user.notifications.filter(read_at__isnull=True).update(read_at=clock.now())
    return redirect("notifications")

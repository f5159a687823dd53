"""Follow-up plan pages: a manager's plans (list, detail with a schedule preview, editor, YAML
export and import), incentives with re-engagement, the coverage check; and the plan panel of the
lead page with its actions (a callback, a visit without sale, moving the lead to another plan).

Tenancy and roles in one place: the manager pages start with `manager_rooftop` (an agent or a
consultant is refused with 403) and fetch their objects through `plan_for_user` and
`incentive_for_user`, which look only inside the user's rooftop (another rooftop's plan is a 404,
whatever the role); the lead actions fetch the lead through `lead_for_user` like every lead page.

Times are shown in the rooftop's time zone (`rooftop_time`). Mutations are POST; the lead
actions answer an htmx request with the lead page's live fragment (the plan panel is part of it,
so the timeline and the lead's state move with the plan), the manager pages with a redirect.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, OuterRef, Prefetch, Q, Subquery, prefetch_related_objects
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import content_disposition_header
from django.utils.text import slugify
from django.views.decorators.http import require_POST

from pursuit.compliance.gate import Clearance
from pursuit.leads import selectors
from pursuit.leads.models import Lead, Vehicle
from pursuit.lib import clock
from pursuit.org.models import Rooftop, User
from pursuit.outreach.services import TemplateProblem, incentive_fields, plan_merge_fields, template_render
from pursuit.plans.files import SAMPLE_FIELDS, PlanFileError, plans_dump, plans_load
from pursuit.plans.models import (
    Enrolment,
    Incentive,
    MessageTemplate,
    Plan,
    PlanStep,
    PlanVersion,
    Step,
    Transition,
)
from pursuit.plans.services import (
    OBJECTIONS,
    PlanError,
    callback_add,
    callback_done,
    coverage_gaps,
    enrol,
    lead_ensure_plan,
    plan_for,
    plan_version_save,
    reengage,
    reengage_candidates,
    schedule_preview,
    visit_log,
)
from pursuit.web.forms import (
    CallbackDoneForm,
    CallbackForm,
    IncentiveForm,
    MovePlanForm,
    PlanForm,
    PlanImportForm,
    StepFormSet,
    VisitForm,
)
from pursuit.web.views import _lead_action, is_htmx, rooftop_time

# How the rooftop's transitions read on the pages ("" is the event's rule whatever the condition).
EVENTS = {
    "arrived": "A lead arrives",
    "call-no-answer": "Call: no answer",
    "call-voicemail": "Call: left voicemail",
    "call-talked": "Call: talked",
    "call-bad-number": "Call: bad number",
    "appointment-set": "Appointment set",
    "appointment-missed": "Appointment missed",
    "appointment-shown": "Appointment shown",
    "visit-no-sale": "Visit, no sale",
    "reply-received": "Reply received",
    "sold": "Sold",
    "bought-elsewhere": "Bought elsewhere",
    "gone-silent": "Gone silent",
    "opted-out": "Opted out",
    "deceased": "Deceased",
    "plan-finished": "A plan finishes",
    "re-engage": "Re-engaged for an incentive",
}


# --------------------------------------------------------------------------- access


def manager_rooftop(user: User) -> Rooftop:
    """The rooftop whose plans `user` manages; PermissionDenied for anyone but a manager or an
    admin of a rooftop."""
    if not user.is_manager:
        raise PermissionDenied("Plans, incentives and the coverage check are for managers.")
    if user.rooftop_id is None:
        raise PermissionDenied("Your account is not attached to a rooftop. Ask an administrator to set it.")
    return user.rooftop


def plan_for_user(user: User, plan_id: int) -> Plan:
    """The plan if it is the user's rooftop's (else Http404, whatever the role), for a manager
    (else PermissionDenied)."""
    plan = Plan.objects.filter(pk=plan_id, rooftop_id=user.rooftop_id).select_related("rooftop").first()
    if plan is None or user.rooftop_id is None:
        raise Http404("No such plan")
    manager_rooftop(user)
    return plan


def incentive_for_user(user: User, incentive_id: int) -> Incentive:
    incentive = (
        Incentive.objects.filter(pk=incentive_id, rooftop_id=user.rooftop_id)
        .select_related("rooftop", "created_by")
        .first()
    )
    if incentive is None or user.rooftop_id is None:
        raise Http404("No such incentive")
    manager_rooftop(user)
    return incentive


# --------------------------------------------------------------------------- reads


def transition_label(transition: Transition) -> str:
    label = EVENTS.get(transition.event, transition.event)
    if transition.condition:
        condition = OBJECTIONS.get(transition.condition, transition.condition)
        label += f": {condition}" if transition.event == "visit-no-sale" else f" ({condition})"
    return label


def plans_overview(rooftop: Rooftop) -> list[Plan]:
    """The rooftop's plans with their current version's number and step count, the leads on
    them now, and what leads into each (transitions, and plans whose `then` names it): three
    queries whatever the number of plans, versions and leads."""
    current = PlanVersion.objects.filter(plan=OuterRef("pk")).order_by("-number")
    steps = (
        PlanStep.objects.filter(version_id=OuterRef("current_id"))
        .order_by()
        .values("version_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    active = (
        Enrolment.objects.filter(version__plan=OuterRef("pk"), status=Enrolment.Status.ACTIVE)
        .order_by()
        .values("version__plan")
        .annotate(n=Count("pk"))
        .values("n")
    )
    plans = list(
        Plan.objects.filter(rooftop=rooftop)
        .annotate(
            current_id=Subquery(current.values("pk")[:1]),
            current_number=Subquery(current.values("number")[:1]),
        )
        .annotate(
            n_steps=Coalesce(Subquery(steps), 0),
            n_active=Coalesce(Subquery(active), 0),
            last_repeats=Subquery(
                PlanStep.objects.filter(version_id=OuterRef("current_id"))
                .order_by("-position")
                .values("repeat")[:1]
            ),
        )
        .order_by("name")
    )
    into: dict[int, list[str]] = defaultdict(list)
    for transition in Transition.objects.filter(rooftop=rooftop).order_by("event", "condition"):
        into[transition.plan_id].append(transition_label(transition))
    by_key = {plan.key: plan for plan in plans}
    for plan in plans:
        plan.leads_in = into[plan.pk]
        plan.after = [other for other in plans if other.then == plan.key and other.pk != plan.pk]
        plan.then_plan = by_key.get(plan.then)
    return plans


def step_when(step: PlanStep) -> str:
    """When a step falls, as a manager says it: "1 business day after the previous step"."""
    enrolment = step.counted_from == PlanStep.From.ENROLMENT
    if not step.amount:
        text = "At enrolment" if enrolment else "Right after the previous step"
    else:
        unit = PlanStep.Unit(step.unit).label
        unit = unit[:-1] if step.amount == 1 else unit
        text = f"{step.amount} {unit} {PlanStep.From(step.counted_from).label}"
    return text + (", then again at this interval" if step.repeat else "")


def step_text(plan_step: PlanStep | None, fields: dict) -> tuple[str, str]:
    """(text, problem): what a person reads for the step with these merge fields. A task's script
    (or its call-script template); an automatic send's subject (a text's body). `problem` says
    why the text does not render; templates of real leads render leniently, as they are sent."""
    if plan_step is None:
        return "", ""
    template = plan_step.template
    if plan_step.action == PlanStep.Action.SEND:
        source = (template.subject or template.body) if template else ""
    else:
        source = plan_step.script or (template.body if template else "")
    if not source:
        return "", ""
    try:
        text = template_render(source, fields)
    except TemplateProblem as exc:
        return "", str(exc)
    return (" ".join(text.split()) if plan_step.action == PlanStep.Action.SEND else text.strip()), ""


@dataclass
class PreviewRow:
    step: PlanStep
    due_at: dt.datetime
    seconds: float  # from now
    text: str
    problem: str


@dataclass
class PlanPage:
    plan: Plan
    versions: list[PlanVersion]
    version: PlanVersion | None
    steps: list[tuple[PlanStep, str]]  # with when it falls, in words
    preview: list[PreviewRow]
    preview_lead: Lead | None
    then_plan: Plan | None


def plan_page(*, plan: Plan, user: User, version_number: int | None, lead_id: int | None, now: dt.datetime):
    """One plan: a version's steps (the current one unless asked), the version history with the
    leads on each, and the schedule the plan would give a lead starting now (a sample customer in
    the rooftop's zone, or a real lead of the rooftop: Http404 otherwise)."""
    versions = list(
        plan.versions.select_related("created_by")
        .annotate(
            n_steps=Count("steps", distinct=True),
            n_active=Count("enrolments", filter=Q(enrolments__status=Enrolment.Status.ACTIVE), distinct=True),
        )
        .order_by("-number")
    )
    version = next((v for v in versions if v.number == version_number), versions[0] if versions else None)
    steps = list(version.steps.select_related("template").order_by("position")) if version else []
    lead = selectors.lead_for_user(user, lead_id) if lead_id else None
    if lead is not None and lead.rooftop_id != plan.rooftop_id:
        raise Http404("No such lead")
    fields = plan_merge_fields(lead) if lead is not None else SAMPLE_FIELDS
    by_pk = {s.pk: s for s in steps}
    preview = []
    if version is not None:
        for planned in schedule_preview(plan=plan, lead=lead, rooftop=plan.rooftop, now=now, version=version):
            step = by_pk.get(planned.plan_step.pk, planned.plan_step)
            text, problem = step_text(step, fields)
            seconds = (planned.due_at - now).total_seconds()
            preview.append(PreviewRow(step, planned.due_at, seconds, text, problem))
    then_plan = Plan.objects.filter(rooftop_id=plan.rooftop_id, key=plan.then).first() if plan.then else None
    return PlanPage(
        plan=plan,
        versions=versions,
        version=version,
        steps=[(s, step_when(s)) for s in steps],
        preview=preview,
        preview_lead=lead,
        then_plan=then_plan,
    )


@dataclass
class PanelStep:
    step: Step
    text: str = ""
    problem: str = ""
    next: bool = False
    overdue: bool = False
    # Set by `selectors.plan_panel_clear` when the compliance gate would hold the step back at
    # its time: the answer, whether that time is now, and when it is allowed (customer's zone).
    gate: Clearance | None = None
    gate_why: str = ""
    gate_now: bool = False
    gate_local: dt.datetime | None = None


@dataclass
class PanelPlan:
    enrolment: Enrolment
    to_come: list[PanelStep] = field(default_factory=list)
    done: list[Step] = field(default_factory=list)
    # Steps not written yet (an import writes each step when the one before it ends): timed then.
    later: list[PlanStep] = field(default_factory=list)


@dataclass
class PlanPanel:
    plans: list[PanelPlan]
    callbacks: list[PanelStep]  # open "forgot to say" callbacks: first, whatever their plan
    next: Step | None
    earlier: list[Enrolment]  # ended plans, newest first
    objections: dict[str, str]
    move_to: list[Plan] | None  # for managers


def lead_plan_panel(*, lead: Lead, user: User, now: dt.datetime) -> PlanPanel:
    """The lead's plans for its page: the active ones with their steps done and to come (scripts
    and subjects rendered for this lead), the open callbacks, the next step, and the plans it was
    on before. A fixed number of queries, however many steps and plans the lead has had."""
    enrolments = list(
        Enrolment.objects.filter(lead=lead)
        .select_related("version__plan", "incentive")
        .order_by("-started_at", "-id")
    )
    active = [e for e in enrolments if e.status == Enrolment.Status.ACTIVE]
    active.sort(key=lambda e: not e.primary)
    steps = list(
        Step.objects.filter(enrolment__in=[e.pk for e in active])
        .select_related("plan_step__template", "assignee")
        .order_by("due_at", "id")
    )
    open_steps = [s for s in steps if s.status in Step.OPEN]
    upcoming = min(open_steps, key=lambda s: (s.due_at, s.pk), default=None)
    # The merge fields read the lead's vehicles: load them once for every step.
    if active:
        prefetch_related_objects([lead], "vehicles")
    fields_of: dict[int, dict] = {}
    plans = {e.pk: PanelPlan(e) for e in active}
    callbacks = []
    for step in steps:
        if step.status not in Step.OPEN:
            plans[step.enrolment_id].done.append(step)
            continue
        row = PanelStep(step, next=step is upcoming, overdue=step.due_at < now)
        if step.plan_step_id is None:
            row.text = step.script  # the point a person typed: not a template
            callbacks.append(row)
            continue
        enrolment = plans[step.enrolment_id].enrolment
        if enrolment.pk not in fields_of:
            incentive = incentive_fields(enrolment.incentive) if enrolment.incentive_id else None
            fields_of[enrolment.pk] = plan_merge_fields(lead, incentive=incentive)
        row.text, row.problem = step_text(step.plan_step, fields_of[enrolment.pk])
        plans[step.enrolment_id].to_come.append(row)
    written: dict[int, int] = defaultdict(int)  # enrolment -> the last position written
    for step in steps:
        if step.plan_step_id is not None:
            written[step.enrolment_id] = max(written[step.enrolment_id], step.plan_step.position)
    for plan_step in PlanStep.objects.filter(version_id__in={e.version_id for e in active}).order_by(
        "position"
    ):
        for plan in plans.values():
            if (
                plan.enrolment.version_id == plan_step.version_id
                and plan_step.position > written[plan.enrolment.pk]
            ):
                plan.later.append(plan_step)
    for plan in plans.values():
        plan.done.sort(key=lambda s: (s.done_at or s.due_at, s.pk), reverse=True)
    move_to = None
    if user.is_manager:
        move_to = list(Plan.objects.filter(rooftop_id=lead.rooftop_id, active=True).order_by("name"))
    return PlanPanel(
        plans=list(plans.values()),
        callbacks=callbacks,
        next=upcoming,
        earlier=[e for e in enrolments if e.status != Enrolment.Status.ACTIVE][:10],
        objections=OBJECTIONS,
        move_to=move_to,
    )


# --------------------------------------------------------------------------- writes kept here for now


def _step_rows(steps: list[dict]) -> list[dict]:
    return [{k: (v.pk if isinstance(v, MessageTemplate) else v) for k, v in s.items()} for s in steps]


def _current_rows(version: PlanVersion) -> list[dict]:
    keys = "name amount unit counted_from window channel action role script voicemail skip_if repeat".split()
    return [
        {k: getattr(s, k) for k in keys} | {"template": s.template_id}
        for s in version.steps.order_by("position")
    ]


def plan_save(
    *,
    rooftop: Rooftop,
    plan: Plan | None,
    fields: dict,
    steps: list[dict],
    by: User,
    now: dt.datetime,
    note: str,
) -> tuple[Plan, PlanVersion | None]:
    """Save a plan's own fields and, when its steps changed, the steps as a new version through
    `plan_version_save` (leads already enrolled keep theirs). Returns the plan and the new
    version (None when the steps were unchanged). One transaction: a refused version leaves the
    plan as it was."""
    with transaction.atomic():
        if plan is None:
            plan = Plan.objects.create(rooftop=rooftop, **fields)
        else:
            for name, value in fields.items():
                setattr(plan, name, value)
            plan.save(update_fields=list(fields))
        current = plan.current
        if current is not None and _current_rows(current) == _step_rows(steps):
            return plan, None
        return plan, plan_version_save(plan=plan, steps=steps, by=by, now=now, note=note)


# --------------------------------------------------------------------------- plans


def _plans_page(request: HttpRequest, rooftop: Rooftop, *, status: int = 200, **extra) -> HttpResponse:
    context = {
        "plans": plans_overview(rooftop),
        "import_form": PlanImportForm(),
        "templates_count": MessageTemplate.objects.filter(rooftop=rooftop).count(),
    }
    return render(request, "web/plans/plan_list.html", context | extra, status=status)


@login_required
@rooftop_time
def plan_list(request: HttpRequest) -> HttpResponse:
    return _plans_page(request, manager_rooftop(request.user))


@login_required
@rooftop_time
def plan_detail(request: HttpRequest, plan_id: int) -> HttpResponse:
    plan = plan_for_user(request.user, plan_id)
    version = request.GET.get("version", "")
    lead = request.GET.get("lead", "").strip().lstrip("#")
    try:
        page = plan_page(
            plan=plan,
            user=request.user,
            version_number=int(version) if version.isdigit() else None,
            lead_id=int(lead) if lead.isdigit() else None,
            now=clock.now(),
        )
        lead_error = "" if lead.isdigit() or not lead else f"{lead!r} is not a lead number."
    except Http404:
        page = plan_page(plan=plan, user=request.user, version_number=None, lead_id=None, now=clock.now())
        lead_error = f"Your rooftop has no lead #{lead}: the preview uses a sample customer."
    return render(
        request, "web/plans/plan_detail.html", {"page": page, "lead_query": lead, "lead_error": lead_error}
    )


def _step_initial(version: PlanVersion | None) -> list[dict]:
    if version is None:
        # A new plan starts with one step to fill in (a plan needs at least one).
        return [{"counted_from": PlanStep.From.ENROLMENT, "window": PlanStep.Window.CUSTOMER_DAY}]
    return [
        {
            "name": s.name,
            "amount": s.amount,
            "unit": s.unit,
            "counted_from": s.counted_from,
            "window": s.window,
            "channel": s.channel,
            "action": s.action,
            "template": s.template_id,
            "role": s.role,
            "script": s.script,
            "voicemail": s.voicemail,
            "skip_if": s.skip_if,
            "repeat": s.repeat,
        }
        for s in version.steps.order_by("position")
    ]


@login_required
@rooftop_time
def plan_edit(request: HttpRequest, plan_id: int | None = None) -> HttpResponse:
    plan = plan_for_user(request.user, plan_id) if plan_id is not None else None
    rooftop = plan.rooftop if plan is not None else manager_rooftop(request.user)
    templates = MessageTemplate.objects.filter(rooftop=rooftop).order_by("name")
    version = plan.current if plan is not None else None
    if request.method == "POST":
        form = PlanForm(request.POST, rooftop=rooftop, plan=plan)
        steps = StepFormSet(request.POST, templates=templates, prefix="steps")
        if form.is_valid() and steps.is_valid() and form.cleaned_data["then"] and steps.steps()[-1]["repeat"]:
            form.add_error(
                "then", "The last step repeats, so the plan never ends: it cannot go on to another."
            )
        if form.is_valid() and steps.is_valid():
            d = form.cleaned_data
            fields = {k: d[k] for k in ("name", "kind", "then", "active", "description")}
            if plan is None:
                fields["key"] = d["key"]
            try:
                saved, new_version = plan_save(
                    rooftop=rooftop,
                    plan=plan,
                    fields=fields,
                    steps=steps.steps(),
                    by=request.user,
                    now=clock.now(),
                    note=d["note"],
                )
            except PlanError as exc:
                form.add_error(None, str(exc))
            else:
                if new_version is None:
                    messages.success(
                        request, "Plan saved. Its steps did not change, so it keeps its version."
                    )
                elif new_version.number == 1:
                    messages.success(request, f"Plan {saved.name} created.")
                else:
                    messages.success(
                        request,
                        f"Saved as version {new_version.number}. Leads already on the plan keep the steps "
                        "of the version they started; leads enrolled from now on get these.",
                    )
                return redirect("plan", saved.pk)
    else:
        initial = {"kind": Plan.Kind.PRIMARY, "active": True}
        if plan is not None:
            initial = {k: getattr(plan, k) for k in ("name", "kind", "then", "active", "description")}
        form = PlanForm(initial=initial, rooftop=rooftop, plan=plan)
        steps = StepFormSet(initial=_step_initial(version), templates=templates, prefix="steps")
    enrolled = version.enrolments.filter(status=Enrolment.Status.ACTIVE).count() if version else 0
    context = {"plan": plan, "version": version, "form": form, "steps": steps, "enrolled": enrolled}
    status = 422 if request.method == "POST" else 200
    return render(request, "web/plans/plan_edit.html", context, status=status)


@login_required
def plans_export(request: HttpRequest) -> HttpResponse:
    rooftop = manager_rooftop(request.user)
    response = HttpResponse(plans_dump(rooftop=rooftop), content_type="application/yaml; charset=utf-8")
    name = f"{slugify(rooftop.name) or 'rooftop'}-plans-{clock.now().astimezone(rooftop.tz):%Y-%m-%d}.yaml"
    response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=name)
    return response


@require_POST
@login_required
@rooftop_time
def plans_import(request: HttpRequest) -> HttpResponse:
    rooftop = manager_rooftop(request.user)
    form = PlanImportForm(request.POST, request.FILES)
    if not form.is_valid():
        problems = [str(e) for errors in form.errors.values() for e in errors]
    else:
        try:
            counts = plans_load(
                rooftop=rooftop, text=form.cleaned_data["file"], now=clock.now(), by=request.user
            )
        except PlanFileError as exc:
            problems = exc.problems
        else:
            messages.success(
                request,
                f"Imported {counts['plans']} plan(s), {counts['templates']} template(s) and "
                f"{counts['transitions']} transition(s); {counts['versions']} plan(s) got a new version.",
            )
            return redirect("plans")
    return _plans_page(request, rooftop, status=422, import_problems=problems, import_form=form)


# --------------------------------------------------------------------------- incentives


@login_required
@rooftop_time
def incentive_list(request: HttpRequest) -> HttpResponse:
    rooftop = manager_rooftop(request.user)
    form = IncentiveForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        # One row with nothing else to keep in step: no service needed to write it.
        incentive = form.save(commit=False)
        incentive.rooftop, incentive.created_at, incentive.created_by = rooftop, clock.now(), request.user
        incentive.save()
        messages.success(request, "Incentive saved. Choose who to tell about it.")
        return redirect("incentive", incentive.pk)
    items = (
        Incentive.objects.filter(rooftop=rooftop).select_related("created_by").order_by("-created_at", "-id")
    )
    status = 422 if request.method == "POST" else 200
    return render(request, "web/plans/incentive_list.html", {"items": items, "form": form}, status=status)


@login_required
@rooftop_time
def incentive_detail(request: HttpRequest, incentive_id: int) -> HttpResponse:
    incentive = incentive_for_user(request.user, incentive_id)
    candidates = reengage_candidates(incentive=incentive)
    leads = [lead for lead, _ in candidates]
    interest = Vehicle.objects.filter(role=Vehicle.Role.INTEREST).order_by("id")
    prefetch_related_objects(leads, Prefetch("vehicles", queryset=interest, to_attr="interest_vehicles"))
    already = set(
        Enrolment.objects.filter(
            incentive=incentive, status=Enrolment.Status.ACTIVE, lead__in=[lead.pk for lead in leads]
        ).values_list("lead_id", flat=True)
    )
    context = {
        "incentive": incentive,
        "rows": [(lead, why, lead.pk in already) for lead, why in candidates],
        "plan": plan_for(rooftop=incentive.rooftop, event="re-engage"),
    }
    return render(request, "web/plans/incentive_detail.html", context)


@require_POST
@login_required
@rooftop_time
def incentive_reengage(request: HttpRequest, incentive_id: int) -> HttpResponse:
    incentive = incentive_for_user(request.user, incentive_id)
    ids = [int(v) for v in request.POST.getlist("lead") if v.isdigit()]
    leads = list(selectors.leads_for_user(request.user).filter(pk__in=ids).select_related("rooftop"))
    if not leads:
        messages.error(request, "Choose at least one customer to re-engage.")
        return redirect("incentive", incentive.pk)
    try:
        # All or nobody: a refusal part-way must not leave half the list enrolled unannounced.
        with transaction.atomic():
            count = reengage(incentive=incentive, leads=leads, by=request.user, now=clock.now())
    except PlanError as exc:
        messages.error(request, f"Nobody was re-engaged: {exc}.")
    else:
        skipped = len(leads) - count
        messages.success(
            request,
            f"{count} customer{'s' if count != 1 else ''} re-engaged about “{incentive.title}”."
            + (f" {skipped} skipped (closed meanwhile)." if skipped else ""),
        )
    return redirect("incentive", incentive.pk)


# --------------------------------------------------------------------------- coverage


def _coverage_page(request: HttpRequest, rooftop: Rooftop, *, status: int = 200, **extra) -> HttpResponse:
    last = Enrolment.objects.filter(lead=OuterRef("pk")).order_by("-started_at", "-id")
    gaps = (
        coverage_gaps(rooftop=rooftop)
        .select_related("customer", "owner")
        .annotate(
            last_plan=Subquery(last.values("version__plan__name")[:1]),
            last_reason=Subquery(last.values("reason")[:1]),
        )
        .order_by("created_at", "id")
    )
    template = "web/plans/coverage.html#gaps" if is_htmx(request) else "web/plans/coverage.html"
    return render(request, template, {"gaps": list(gaps)} | extra, status=status)


@login_required
@rooftop_time
def coverage(request: HttpRequest) -> HttpResponse:
    return _coverage_page(request, manager_rooftop(request.user))


@require_POST
@login_required
@rooftop_time
def coverage_repair(request: HttpRequest, lead_id: int) -> HttpResponse:
    lead = selectors.lead_for_user(request.user, lead_id)
    rooftop = manager_rooftop(request.user)
    error = notice = ""
    try:
        enrolment = lead_ensure_plan(lead=lead, now=clock.now())
    except PlanError as exc:
        error = f"{lead.customer} was not put back on a plan: {exc}."
    else:
        if enrolment is not None:
            notice = f"{lead.customer} is on {enrolment.version.plan.name} again."
        elif coverage_gaps(rooftop=rooftop).filter(pk=lead.pk).exists():
            error = (
                f"{lead.customer} could not be put on a plan: the rooftop has no plan for it "
                "(add transitions for “arrived” and “plan-finished”)."
            )
        else:
            notice = f"{lead.customer} already has a next step."
    if is_htmx(request):
        return _coverage_page(request, rooftop, status=422 if error else 200, error=error, notice=notice)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, notice)
    return redirect("coverage")


# --------------------------------------------------------------------------- the lead page's plan actions


@require_POST
@login_required
@rooftop_time
def lead_callback(request: HttpRequest, lead_id: int) -> HttpResponse:
    lead = selectors.lead_for_user(request.user, lead_id)
    return _lead_action(
        request,
        lead,
        CallbackForm(request.POST),
        lambda d: callback_add(lead=lead, by=request.user, point=d["point"], now=clock.now()),
        done="Callback added at the top of your list.",
    )


@require_POST
@login_required
@rooftop_time
def lead_callback_done(request: HttpRequest, lead_id: int, step_id: int) -> HttpResponse:
    lead = selectors.lead_for_user(request.user, lead_id)
    step = Step.objects.filter(pk=step_id, lead=lead, plan_step__isnull=True).first()
    if step is None:
        raise Http404("No such callback")
    return _lead_action(
        request,
        lead,
        CallbackDoneForm(request.POST),
        lambda d: callback_done(step=step, by=request.user, now=clock.now(), note=d["note"].strip()),
        done="Callback done.",
    )


def _visit_done(enrolment: Enrolment | None) -> str:
    if enrolment is None:
        return "Visit logged. No plan answers this objection here, so the lead stays on its plan."
    return f"Visit logged: {enrolment.version.plan.name} started."


@require_POST
@login_required
@rooftop_time
def lead_visit(request: HttpRequest, lead_id: int) -> HttpResponse:
    lead = selectors.lead_for_user(request.user, lead_id)
    return _lead_action(
        request,
        lead,
        VisitForm(request.POST),
        lambda d: visit_log(
            lead=lead, by=request.user, objection=d["objection"], note=d["note"].strip(), now=clock.now()
        ),
        done=_visit_done,
    )


@require_POST
@login_required
@rooftop_time
def lead_plan_move(request: HttpRequest, lead_id: int) -> HttpResponse:
    lead = selectors.lead_for_user(request.user, lead_id)
    if not request.user.is_manager:
        raise PermissionDenied("Only managers can move a lead to another plan.")
    return _lead_action(
        request,
        lead,
        MovePlanForm(request.POST, rooftop=lead.rooftop),
        lambda d: enrol(
            lead=lead,
            plan=d["plan"],
            now=clock.now(),
            reason=f"moved by {request.user.display_name}",
            by=request.user,
        ),
        done=lambda e: f"Moved to {e.version.plan.name}.",
    )

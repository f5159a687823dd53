"""Enrolling leads in plans, scheduling their steps, moving them between plans, and running the
automatic steps.

The guarantee: an open lead always has a next step. Enrolling materialises the plan's steps
with their due times; the last step of a plan either repeats (long-term follow-up) or hands the
lead to the plan named in `then`; closing a lead ends its plans. `coverage_gaps` lists any open
lead without a pending step, and `lead_ensure_plan` repairs one.

Locking: every change to a lead's plans locks the lead row first, so two processes (a person
logging a call while the worker runs a step) take turns on one lead.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Exists, OuterRef

from pursuit.leads.models import Lead, LeadEvent
from pursuit.leads.status import lead_status_set
from pursuit.lib.hours import Hours, add_offset, next_open
from pursuit.org.models import Rooftop, User
from pursuit.plans.models import Enrolment, Plan, PlanStep, PlanVersion, Step, Transition
from pursuit.work.models import Job

log = logging.getLogger(__name__)

# The customer's own day for calls and texts until the compliance gate (issue 4) owns it.
CUSTOMER_DAY = (dt.time(9, 0), dt.time(20, 0))


class PlanError(ValueError):
    """A plan change the data does not allow; the message says why."""


# --------------------------------------------------------------------------- time


def rooftop_hours(rooftop: Rooftop) -> Hours:
    return Hours.build(
        time_zone=rooftop.time_zone,
        business_hours=rooftop.business_hours,
        holidays=rooftop.holidays.values_list("date", flat=True),
    )


def _customer_day(zone_name: str) -> Hours:
    day = [[CUSTOMER_DAY[0].isoformat("minutes"), CUSTOMER_DAY[1].isoformat("minutes")]]
    return Hours.build(
        time_zone=zone_name,
        business_hours=dict.fromkeys(("mon", "tue", "wed", "thu", "fri", "sat", "sun"), day),
    )


def in_window(at: dt.datetime, window: str, *, hours: Hours, customer_zone: str = "") -> dt.datetime:
    """The first moment at or after `at` inside the step's window."""
    if window == PlanStep.Window.ANY:
        return at
    moment = next_open(at, hours)
    if window == PlanStep.Window.CUSTOMER_DAY and customer_zone:
        # Both the rooftop's hours and the customer's day: alternate until both agree.
        theirs = _customer_day(customer_zone)
        for _ in range(60):
            candidate = next_open(moment, theirs)
            if candidate == moment:
                break
            moment = next_open(candidate, hours)
    return moment


@dataclass
class Planned:
    plan_step: PlanStep
    due_at: dt.datetime


def schedule_compute(
    *,
    steps: list[PlanStep],
    start: dt.datetime,
    hours: Hours,
    customer_zone: str = "",
    appointment: dt.datetime | None = None,
) -> list[Planned]:
    """When each step falls for a lead enrolled at `start`: offsets from enrolment or from the
    previous step's due time, then moved into the step's window. A step counted back from the
    `appointment` that would fall before `start` or not before the appointment (a reminder for a
    visit booked an hour ahead, or no appointment at all) is left out."""
    planned: list[Planned] = []
    previous = start
    for step in steps:
        if step.counted_from == PlanStep.From.APPOINTMENT:
            due = _before(appointment, step, hours, customer_zone) if appointment else None
            if due is None or due < start or due >= appointment:
                continue
        else:
            base = start if step.counted_from == PlanStep.From.ENROLMENT else previous
            due = in_window(
                add_offset(base, step.amount, step.unit, hours),
                step.window,
                hours=hours,
                customer_zone=customer_zone,
            )
        planned.append(Planned(step, due))
        previous = due
    return planned


def _before(appointment: dt.datetime, step: PlanStep, hours: Hours, customer_zone: str) -> dt.datetime:
    """`step.amount` units before the appointment, moved into the step's window (a reminder the
    evening before that would fall at 7:00 waits for the window to open)."""
    if step.unit == PlanStep.Unit.BUSINESS_DAYS:
        at = appointment
        for _ in range(step.amount):  # back one open day at a time
            at -= dt.timedelta(days=1)
            while next_open(at.replace(hour=12, minute=0), hours).date() != at.astimezone(hours.zone).date():
                at -= dt.timedelta(days=1)
    else:
        at = appointment - dt.timedelta(**{str(step.unit): step.amount})
    return in_window(at, step.window, hours=hours, customer_zone=customer_zone)


# --------------------------------------------------------------------------- enrolment


def _assignee(lead: Lead, step: PlanStep, cache: dict | None = None) -> User | None:
    """Who a task is for: the owner, or for a step meant for another role (a manager's call),
    the first on-duty person of that role."""
    if not step.role or (lead.owner and lead.owner.role == step.role):
        return lead.owner
    cache = {} if cache is None else cache
    key = (lead.rooftop_id, step.role)
    if key not in cache:
        cache[key] = (
            User.objects.filter(rooftop_id=lead.rooftop_id, role=step.role, is_active=True, on_duty=True)
            .order_by("id")
            .first()
        )
    return cache[key] or lead.owner


def _step_row(
    enrolment: Enrolment, lead: Lead, plan_step: PlanStep, due_at: dt.datetime, people: dict
) -> Step:
    """A lead's step of a plan, unsaved (`people` caches who takes tasks for other roles)."""
    return Step(
        enrolment=enrolment,
        lead=lead,
        plan_step=plan_step,
        action=plan_step.action,
        channel=plan_step.channel,
        due_at=due_at,
        assignee=_assignee(lead, plan_step, people),
    )


def plan_for(*, rooftop: Rooftop, event: str, condition: str = "") -> Plan | None:
    """The plan an event moves a lead to: the rule for this condition, else the event's rule."""
    rules = {
        t.condition: t.plan
        for t in Transition.objects.filter(rooftop=rooftop, event=event).select_related("plan")
    }
    # A rule whose plan is switched off or has no steps gives way to the event's general rule.
    for key in (condition, ""):
        plan = rules.get(key)
        if plan is not None and plan.active and _has_steps(plan):
            return plan
    return None


def _has_steps(plan: Plan) -> bool:
    version = plan.current
    return version is not None and version.steps.exists()


def enrol(
    *,
    lead: Lead,
    plan: Plan,
    now: dt.datetime,
    reason: str = "",
    by: User | None = None,
    incentive=None,
    appointment=None,
) -> Enrolment:
    """Put the lead on `plan` (its current version) from `now`. A primary plan replaces the
    lead's primary plan: that one ends and its pending steps are cancelled."""
    version = plan.current
    if version is None or not version.steps.exists():
        raise PlanError(f"the plan {plan.name} has no steps")
    with transaction.atomic():
        lead = (
            Lead.objects.select_for_update(of=("self",))
            .select_related("customer", "rooftop", "owner")
            .get(pk=lead.pk)
        )
        if not lead.is_open and plan.key not in _plans_after_close(lead):
            raise PlanError("the lead is closed")
        primary = plan.kind == Plan.Kind.PRIMARY
        if primary:
            _end(lead, now, f"replaced by {plan.name}", primary=True)
        else:
            _end(lead, now, f"restarted: {reason}" if reason else "restarted", plan=plan)
        enrolment = Enrolment.objects.create(
            lead=lead,
            version=version,
            primary=primary,
            started_at=now,
            reason=reason[:200],
            incentive=incentive,
            appointment=appointment,
        )
        steps = list(version.steps.order_by("position"))
        planned = schedule_compute(
            steps=steps,
            start=now,
            hours=rooftop_hours(lead.rooftop),
            customer_zone=lead.customer.time_zone,
            appointment=appointment.starts_at if appointment is not None else None,
        )
        people: dict = {}
        Step.objects.bulk_create(_step_row(enrolment, lead, p.plan_step, p.due_at, people) for p in planned)
        if lead.customer.opted_out:
            Step.objects.filter(enrolment=enrolment, channel__in=lead.customer.opted_out).update(
                status=Step.Status.SKIPPED, done_at=now, outcome="the customer opted out of this channel"
            )
        LeadEvent.objects.create(
            lead=lead,
            kind=LeadEvent.Kind.PLAN,
            at=now,
            actor=by,
            text=f"Plan started: {plan.name}" + (f" ({reason})" if reason else ""),
            data={"plan": plan.key, "version": version.number, "enrolment": enrolment.pk},
        )
        return enrolment


def _plans_after_close(lead: Lead) -> set[str]:
    """Plans a closed lead may still be on: after a sale, and after buying elsewhere."""
    keys = set()
    for event in ("sold", "bought-elsewhere"):
        plan = plan_for(rooftop=lead.rooftop, event=event)
        if plan is not None:
            keys.add(plan.key)
    return keys


def _end(
    lead: Lead,
    now: dt.datetime,
    reason: str,
    *,
    primary: bool | None = None,
    plan: Plan | None = None,
    appointment=None,
) -> int:
    enrolments = Enrolment.objects.filter(lead=lead, status=Enrolment.Status.ACTIVE)
    if appointment is not None:
        enrolments = enrolments.filter(appointment=appointment)
    if primary is not None:
        enrolments = enrolments.filter(primary=primary)
    if plan is not None:
        enrolments = enrolments.filter(version__plan=plan)
    ids = list(enrolments.values_list("id", flat=True))
    if not ids:
        return 0
    Step.objects.filter(enrolment_id__in=ids, status__in=Step.OPEN).update(
        status=Step.Status.CANCELLED, done_at=now, outcome=reason[:200]
    )
    return Enrolment.objects.filter(id__in=ids).update(
        status=Enrolment.Status.ENDED, ended_at=now, reason=reason[:200]
    )


def plans_stop(*, lead: Lead, now: dt.datetime, reason: str, by: User | None = None) -> None:
    """End every plan of the lead (deceased, do not contact at all)."""
    with transaction.atomic():
        if _end(lead, now, reason):
            LeadEvent.objects.create(
                lead=lead,
                kind=LeadEvent.Kind.PLAN,
                at=now,
                actor=by,
                text=f"Follow-up stopped: {reason}",
                data={"stopped": reason},
            )


def lead_event(
    *,
    lead: Lead,
    event: str,
    now: dt.datetime,
    condition: str = "",
    by: User | None = None,
    appointment=None,
) -> Enrolment | None:
    """Something happened to the lead: move it to the plan the rooftop maps this event to, if
    any. Events with no mapping keep the lead where it is."""
    plan = plan_for(rooftop=lead.rooftop, event=event, condition=condition)
    if plan is None:
        return None
    reason = event + (f": {condition}" if condition else "")
    return enrol(lead=lead, plan=plan, now=now, reason=reason, by=by, appointment=appointment)


def plans_ensure_installed(*, rooftop: Rooftop, now: dt.datetime) -> None:
    """A rooftop with no plans at all gets the shipped defaults, so that no lead of a new
    rooftop is left without a plan. A rooftop that has plans is left alone."""
    if not Plan.objects.filter(rooftop=rooftop).exists():
        from pursuit.plans.files import plans_install_defaults

        plans_install_defaults(rooftop=rooftop, now=now)


def lead_plan_start(*, lead: Lead, now: dt.datetime, fresh: bool = True) -> Enrolment | None:
    """A new lead's plan: the arrival plan for its type; a historical import goes to long-term
    follow-up (its first days are long past)."""
    plans_ensure_installed(rooftop=lead.rooftop, now=now)
    if fresh:
        plan = plan_for(rooftop=lead.rooftop, event="arrived", condition=lead.type)
    else:
        plan = plan_for(rooftop=lead.rooftop, event="plan-finished")
    if plan is None:
        return None
    return enrol(lead=lead, plan=plan, now=now, reason="arrived" if fresh else "imported")


def enrol_new_leads(*, leads: list[Lead], now: dt.datetime, fresh: bool) -> int:
    """`lead_plan_start` for many new leads at once (imports): the schedule is computed once per
    customer time zone, and enrolments, steps and events are written in bulk."""
    if not leads:
        return 0
    rooftop = leads[0].rooftop
    plans_ensure_installed(rooftop=rooftop, now=now)
    event, condition = ("arrived", "") if fresh else ("plan-finished", "")
    by_plan: dict[int, tuple[Plan, list[Lead]]] = {}
    chosen: dict[str, Plan | None] = {}
    for lead in leads:
        wanted = lead.type if fresh else condition
        if wanted not in chosen:
            chosen[wanted] = plan_for(rooftop=rooftop, event=event, condition=wanted)
        plan = chosen[wanted]
        if plan is not None:
            by_plan.setdefault(plan.pk, (plan, []))[1].append(lead)
    hours = rooftop_hours(rooftop)
    count = 0
    for plan, members in by_plan.values():
        version = plan.current
        steps = list(version.steps.order_by("position")) if version else []
        if not steps:
            continue
        primary = plan.kind == Plan.Kind.PRIMARY
        enrolments = Enrolment.objects.bulk_create(
            Enrolment(
                lead=lead,
                version=version,
                primary=primary,
                started_at=now,
                reason="arrived" if fresh else "imported",
            )
            for lead in members
        )
        schedules: dict[str, list[Planned]] = {}
        people: dict = {}
        rows, events = [], []
        for lead, enrolment in zip(members, enrolments, strict=True):
            zone = lead.customer.time_zone
            if zone not in schedules:
                # Only the first step is written now (an import can bring 100,000 leads); each
                # later one is written when the one before it ends (see `_follow_on`).
                schedules[zone] = schedule_compute(steps=steps, start=now, hours=hours, customer_zone=zone)[
                    :1
                ]
            rows += [_step_row(enrolment, lead, p.plan_step, p.due_at, people) for p in schedules[zone]]
            events.append(
                LeadEvent(
                    lead=lead,
                    kind=LeadEvent.Kind.PLAN,
                    at=now,
                    text=f"Plan started: {plan.name}",
                    data={"plan": plan.key, "version": version.number, "enrolment": enrolment.pk},
                )
            )
        Step.objects.bulk_create(rows, batch_size=2000)
        LeadEvent.objects.bulk_create(events)
        count += len(members)
    return count


def lead_ensure_plan(*, lead: Lead, now: dt.datetime) -> Enrolment | None:
    """Give an open lead with no pending step a plan: the arrival plan for its type if it never
    had one, else long-term follow-up. The repair behind the no-cracks guarantee."""
    if not lead.is_open or Step.objects.filter(lead=lead, status__in=Step.OPEN).exists():
        return None
    plans_ensure_installed(rooftop=lead.rooftop, now=now)
    had_plan = Enrolment.objects.filter(lead=lead).exists()
    plan = (
        plan_for(rooftop=lead.rooftop, event="plan-finished")
        if had_plan
        else plan_for(rooftop=lead.rooftop, event="arrived", condition=lead.type)
    )
    if plan is None:
        return None
    return enrol(lead=lead, plan=plan, now=now, reason="no next step" if had_plan else "arrived")


# --------------------------------------------------------------------------- steps


def _follow_on(step: Step, now: dt.datetime) -> None:
    """After a step ends: repeat it, or when it was the plan's last, move to `then`."""
    enrolment = step.enrolment
    lead = step.lead
    plan_step = step.plan_step
    if enrolment.status != Enrolment.Status.ACTIVE:
        return
    if plan_step is not None and plan_step.repeat:
        hours = rooftop_hours(lead.rooftop)
        due = in_window(
            add_offset(max(step.due_at, now), plan_step.amount or 30, plan_step.unit, hours),
            plan_step.window,
            hours=hours,
            customer_zone=lead.customer.time_zone,
        )
        Step.objects.get_or_create(
            enrolment=enrolment,
            plan_step=plan_step,
            occurrence=step.occurrence + 1,
            defaults={
                "lead": lead,
                "action": plan_step.action,
                "channel": plan_step.channel,
                "due_at": due,
                "assignee": _assignee(lead, plan_step),
            },
        )
        return
    if plan_step is not None:
        _write_next_step(step, now)
    if Step.objects.filter(enrolment=enrolment, status__in=Step.OPEN).exists():
        return
    Enrolment.objects.filter(pk=enrolment.pk).update(
        status=Enrolment.Status.ENDED, ended_at=now, reason="finished"
    )
    plan = enrolment.version.plan
    if lead.is_open and not enrolment.primary:
        # A plan beside the primary one finished: the lead must still have a next step.
        lead_ensure_plan(lead=lead, now=now)
    if lead.is_open and enrolment.primary:
        named = (
            Plan.objects.filter(rooftop=lead.rooftop, key=plan.then, active=True).first()
            if plan.then
            else None
        )
        following = named if named is not None and _has_steps(named) else None
        following = following or plan_for(rooftop=lead.rooftop, event="plan-finished")
        # Finishing the "plan-finished" plan itself starts it again: better than no next step.
        if following is not None:
            enrol(lead=lead, plan=following, now=now, reason=f"{plan.name} finished")


def _write_next_step(step: Step, now: dt.datetime) -> None:
    """Write the plan step after `step` if it was not written at enrolment (imports write the
    first step only), timed as `schedule_compute` would have timed it."""
    following = (
        PlanStep.objects.filter(version_id=step.plan_step.version_id, position__gt=step.plan_step.position)
        .order_by("position")
        .first()
    )
    if following is None or Step.objects.filter(enrolment=step.enrolment, plan_step=following).exists():
        return
    if following.counted_from == PlanStep.From.APPOINTMENT:
        return  # appointment plans are always written whole at enrolment
    lead = step.lead
    hours = rooftop_hours(lead.rooftop)
    base = step.enrolment.started_at if following.counted_from == PlanStep.From.ENROLMENT else step.due_at
    due = in_window(
        add_offset(base, following.amount, following.unit, hours),
        following.window,
        hours=hours,
        customer_zone=lead.customer.time_zone,
    )
    Step.objects.create(
        enrolment=step.enrolment,
        lead=lead,
        plan_step=following,
        action=following.action,
        channel=following.channel,
        due_at=max(due, now) if due < step.due_at else due,
        assignee=_assignee(lead, following),
    )


def step_finish(
    *, step: Step, now: dt.datetime, status: str = Step.Status.DONE, outcome: str = "", by: User | None = None
) -> Step:
    """Close a step (done or skipped) and let the plan choose what follows."""
    with transaction.atomic():
        lead = (
            Lead.objects.select_for_update(of=("self",))
            .select_related("customer", "rooftop", "owner")
            .get(pk=step.lead_id)
        )
        step = Step.objects.select_related("enrolment__version__plan", "plan_step").get(pk=step.pk)
        if step.status not in Step.OPEN:
            return step
        step.status, step.done_at, step.outcome = status, now, outcome[:200]
        step.save(update_fields=["status", "done_at", "outcome"])
        step.lead = lead
        _follow_on(step, now)
        return step


def next_step(lead: Lead) -> Step | None:
    return (
        Step.objects.filter(lead=lead, status__in=Step.OPEN)
        .select_related("plan_step")
        .order_by("due_at", "id")
        .first()
    )


def coverage_gaps(*, rooftop: Rooftop | None = None):
    """Open leads with no pending step: the list that must always be empty."""
    pending = Step.objects.filter(lead=OuterRef("pk"), status__in=Step.OPEN)
    leads = Lead.objects.filter(status__in=Lead.OPEN_STATUSES).exclude(Exists(pending))
    return leads.filter(rooftop=rooftop) if rooftop is not None else leads


# --------------------------------------------------------------------------- automatic steps (worker)


def step_skip_reason(step: Step, lead: Lead) -> str:
    """Why this step should not happen for this lead now, or "" (its `skip_if` conditions,
    read at the moment the step would happen; contacts through .all(), so a batch's prefetched
    ones are used)."""
    customer = lead.customer
    started = step.enrolment.started_at
    if step.channel in customer.opted_out:
        return f"the customer opted out of {step.channel}"
    if customer.do_not_contact or customer.deceased:
        return "the customer is not to be contacted"
    for condition in (step.plan_step.skip_if if step.plan_step_id else None) or []:
        if condition == "replied" and lead.first_reply_at and lead.first_reply_at >= started:
            return "the customer replied"
        if condition == "appointment-set" and lead.status == Lead.Status.APPOINTMENT:
            return "an appointment is set"
        if (
            condition == "talked"
            and LeadEvent.objects.filter(
                lead=lead, kind=LeadEvent.Kind.ATTEMPT, at__gte=started, data__outcome="talked"
            ).exists()
        ):
            return "someone talked with the customer"
        if condition == "auto-answered" and (
            lead.auto_response_at
            or Job.objects.filter(
                lead=lead, kind="auto-response", status__in=("pending", "claimed", "done")
            ).exists()
        ):
            return "the automatic first answer went out"
        if condition == "no-email" and not customer.emails.all():
            return "no email address"
        if condition == "no-phone" and not customer.phones.all():
            return "no phone number"
        if condition == "no-mobile" and not any(p.type == "mobile" for p in customer.phones.all()):
            return "no mobile number"
    return ""


# What a batch of claimed steps loads in one go (one query, and one per prefetched relation).
_STEP_RELATED = (
    "enrolment__version__plan",
    "enrolment__incentive",
    "enrolment__appointment__with_user",
    "plan_step__template",
    "lead__customer",
    "lead__rooftop",
    "lead__owner",
)
_STEP_PREFETCH = ("lead__vehicles", "lead__customer__emails", "lead__customer__phones")


def steps_claim(*, now: dt.datetime, worker: str, limit: int = 10) -> list[Step]:
    from django.db.models import Q

    from pursuit.work.services import rows_claim

    due = [
        Q(status=Step.Status.PENDING, action=PlanStep.Action.SEND, due_at__lte=now),
        Q(status=Step.Status.CLAIMED, claimed_until__lt=now),
    ]
    return rows_claim(
        Step,
        due=due,
        order_by=("due_at", "id"),
        now=now,
        worker=worker,
        limit=limit,
        related=_STEP_RELATED,
        prefetch=_STEP_PREFETCH,
    )


@dataclass
class _Finished:
    """A claimed step the worker is done with, closed with the rest of its batch."""

    step: Step
    status: str
    outcome: str
    event: LeadEvent | None = None


def _step_verdict(step: Step, facts, at: dt.datetime):
    """What to do with a claimed automatic step now: ("send", ""), ("cancel" | "skip", why),
    ("task", why) for a step a person must do instead, or ("defer" | "deny", the gate's
    Clearance)."""
    from pursuit.compliance.gate import decide
    from pursuit.outreach.services import step_purpose

    lead = step.lead
    if step.enrolment.status != Enrolment.Status.ACTIVE:
        return "cancel", "plan ended"
    reason = step_skip_reason(step, lead)
    if not reason and not lead.is_open and step.enrolment.version.plan.key not in _plans_after_close(lead):
        reason = "the lead is closed"
    if not reason and step.channel == "email" and not step.lead.customer.emails.all():
        reason = "no email address"
    if reason:
        return "skip", reason
    answer = decide(
        lead.customer,
        facts,
        channel=step.channel,
        purpose=step_purpose(step),
        at=at,
        automated=True,
        rooftop=lead.rooftop,
    )
    if answer.verdict == "defer":
        return "defer", answer
    if answer.verdict == "deny":
        if answer.rule == "no-written-consent":
            # No consent to automatic texts: a person may still text one to one.
            return "task", answer.detail
        return "deny", answer
    if step.channel not in ("email", "text"):
        return "task", f"a {step.channel} cannot be sent automatically"
    if step.channel == "text" and not lead.rooftop.text_number:
        return "task", "the rooftop has no texting number: text by hand"
    return "send", ""


def steps_run_due(*, now: dt.datetime, worker: str, limit: int = 10, clock=None) -> int:
    """Claim and run a batch of due automatic steps; one failing step never stops the others.

    Every step passes the compliance gate at the moment it would go (one set of queries for the
    batch's customers): a deferred step moves to the first allowed moment, a denied one is
    skipped and, when the denial lasts, its channel leaves the customer's plans.

    Sending follows docs/sending.md: each message's Message-ID is derived from its step and its
    record is committed as soon as the mail server accepts it, so a step run again after a crash
    finds the record and is not sent twice. The batch's steps are then closed, their timeline
    entries and touches written and their plans moved on, in one transaction.
    """
    from pursuit.compliance.gate import decisions_build, facts_load
    from pursuit.compliance.models import Decision, Touch
    from pursuit.outreach.services import (
        message_ids_sent,
        plan_email_deliver,
        plan_email_event,
        step_message_id,
        step_purpose,
    )

    steps = steps_claim(now=now, worker=worker, limit=limit)
    if not steps:
        return 0
    for step in steps:
        step.lead.customer.rooftop = step.lead.rooftop  # the same row; saves a query per customer
    facts = facts_load({s.lead.customer_id: s.lead.customer for s in steps}.values(), at=now)
    sent_before = message_ids_sent([step_message_id(step) for step in steps if step.channel == "email"])
    finished: list[_Finished] = []
    tasks: list[Step] = []
    deferred: list[Step] = []
    decisions: list = []
    touches: list[Touch] = []
    ended: dict[tuple[int, str], tuple] = {}
    for step in steps:
        at = clock() if clock else now
        customer = step.lead.customer
        verdict, reason = _step_verdict(step, facts[customer.pk], at)
        if verdict in ("defer", "deny"):
            decisions.append((customer, reason, step.channel, step_purpose(step), at, step.lead_id, step.pk))
        if verdict == "defer":
            step.due_at, step.status, step.claimed_until = reason.until, Step.Status.PENDING, None
            deferred.append(step)
            continue
        if verdict == "deny":
            if reason.ends_channel:
                ended[(customer.pk, step.channel)] = (customer, reason)
            verdict, reason = "skip", reason.detail
        if verdict == "cancel":
            finished.append(_Finished(step, Step.Status.CANCELLED, reason))
        elif verdict == "skip":
            event = LeadEvent(
                lead_id=step.lead_id,
                kind=LeadEvent.Kind.STEP,
                at=at,
                text=f"Skipped: {step.plan_step.name} ({reason})",
                data={"step": step.pk},
            )
            finished.append(_Finished(step, Step.Status.SKIPPED, reason, event))
        elif verdict == "task":
            step.note = reason
            tasks.append(step)
        elif step.channel == "text":
            finished.append(_text_step_queue(step, at))
        elif step_message_id(step) in sent_before:
            done, touch = _already_sent(step)
            finished.append(done)
            touches += [touch] if touch else []
        else:
            try:
                sent = plan_email_deliver(step=step, now=at, checked=True)
            except Exception as exc:
                _step_failed(step, exc, at)
                continue
            if sent is None:
                finished.append(_Finished(step, Step.Status.DONE, "already sent"))
                continue
            purpose = step_purpose(step)
            # Counted at once, so a second step for the same customer in this batch sees it.
            facts[customer.pk].touches.append(("email", purpose, at))
            touches.append(
                Touch(
                    customer_id=customer.pk,
                    lead_id=step.lead_id,
                    channel="email",
                    purpose=purpose,
                    at=at,
                    automated=True,
                    what=step.plan_step.name[:200],
                )
            )
            finished.append(_Finished(step, Step.Status.DONE, "sent", plan_email_event(step, sent)))
    if tasks:
        for step in tasks:
            step.status, step.action, step.claimed_until, step.assignee = (
                Step.Status.PENDING,
                PlanStep.Action.TASK,
                None,
                step.lead.owner,
            )
            step.outcome = step.note[:200]
        Step.objects.bulk_update(tasks, ["status", "action", "claimed_until", "assignee", "outcome"])
    if deferred:
        Step.objects.bulk_update(deferred, ["due_at", "status", "claimed_until"])
    if decisions:
        Decision.objects.bulk_create(decisions_build(decisions))
    if finished or touches:
        _steps_close(finished, now=clock() if clock else now, worker=worker, touches=touches)
    for (_, channel), (customer, answer) in ended.items():
        channel_remove(customer=customer, channel=channel, reason=answer.detail, now=now)
    return len(steps)


def _text_step_queue(step: Step, at: dt.datetime) -> _Finished:
    """An automatic text: queued for the worker's text job, which asks the gate again at the
    moment it goes, then records the touch and the timeline entry."""
    from pursuit.outreach.services import step_merge_fields, step_purpose, template_render
    from pursuit.texting.services import TextError, text_queue

    lead = step.lead
    template = step.plan_step.template
    try:
        if template is None:
            raise TextError(f"the step {step.plan_step.name} has no template")
        body = template_render(template.body, step_merge_fields(step))
        text_queue(
            rooftop=lead.rooftop,
            customer=lead.customer,
            lead=lead,
            body=body,
            now=at,
            key=f"step:{step.pk}",
            purpose=step_purpose(step),
            automated=True,
        )
    except Exception as exc:  # a user's template or a missing number: the plan goes on
        reason = f"text not sent: {exc}"
        return _Finished(
            step,
            Step.Status.SKIPPED,
            reason,
            LeadEvent(
                lead_id=step.lead_id,
                kind=LeadEvent.Kind.STEP,
                at=at,
                text=f"Skipped: {step.plan_step.name} ({reason})",
                data={"step": step.pk},
            ),
        )
    return _Finished(step, Step.Status.DONE, "text queued")


def _already_sent(step: Step):
    """A step whose email went out before its worker died (docs/sending.md): closed without a
    second message, with the timeline entry and the touch the crash lost."""
    from pursuit.compliance.models import Touch
    from pursuit.outreach.models import OutboundEmail
    from pursuit.outreach.services import plan_email_event, step_message_id, step_purpose

    if LeadEvent.objects.filter(lead_id=step.lead_id, kind=LeadEvent.Kind.STEP, data__step=step.pk).exists():
        return _Finished(step, Step.Status.DONE, "already sent"), None
    sent = OutboundEmail.objects.get(message_id=step_message_id(step))
    touch = Touch(
        customer_id=step.lead.customer_id,
        lead_id=step.lead_id,
        channel="email",
        purpose=step_purpose(step),
        at=sent.sent_at,
        automated=True,
        what=step.plan_step.name[:200],
    )
    return _Finished(
        step, Step.Status.DONE, "sent (recorded after a restart)", plan_email_event(step, sent)
    ), touch


def _step_failed(step: Step, exc: Exception, at: dt.datetime) -> None:
    """Retry a step that could not be sent later, or give it up (the plan still goes on)."""
    from pursuit.work.services import BACKOFF, PermanentError

    log.warning("step %s failed on attempt %s: %s", step.pk, step.attempts, exc)
    final = isinstance(exc, PermanentError) or step.attempts > len(BACKOFF)
    update = {
        "last_error": f"{type(exc).__name__}: {exc}"[:2000],
        "claimed_until": None,
        "status": Step.Status.FAILED if final else Step.Status.PENDING,
    }
    if not final:
        update["due_at"] = at + BACKOFF[step.attempts - 1]
    held = Step.objects.filter(pk=step.pk, claimed_by=step.claimed_by, status=Step.Status.CLAIMED).update(
        **update
    )
    if held and final:
        # A step that cannot be sent must not leave the lead without a next step.
        step_finish(step=step, now=at, status=Step.Status.FAILED, outcome=update["last_error"])


def _steps_close(finished: list[_Finished], *, now: dt.datetime, worker: str, touches=()) -> None:
    """Close a batch's steps and write their timeline entries in one transaction, then let the
    plan go on where it must: a repeating step, or the last open step of its enrolment (most
    steps have their successors written already, and need nothing more)."""
    with transaction.atomic():
        # Lock the leads, in id order so two workers never wait on each other in a circle.
        list(
            Lead.objects.select_for_update()
            .filter(pk__in={f.step.lead_id for f in finished})
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        # Only steps still held by this worker: one a person closed meanwhile stays closed.
        held = set(
            Step.objects.filter(
                pk__in=[f.step.pk for f in finished], status=Step.Status.CLAIMED, claimed_by=worker
            ).values_list("pk", flat=True)
        )
        closing = [f for f in finished if f.step.pk in held]
        # One UPDATE per distinct result (a handful per batch; a CASE per row costs more in Python).
        results: dict[tuple[str, str], list[int]] = {}
        for f in closing:
            f.step.status, f.step.done_at, f.step.outcome, f.step.claimed_until = (
                f.status,
                now,
                f.outcome[:200],
                None,
            )
            results.setdefault((f.status, f.step.outcome), []).append(f.step.pk)
        for (status, outcome), ids in results.items():
            Step.objects.filter(pk__in=ids).update(
                status=status, done_at=now, outcome=outcome, claimed_until=None
            )
        # A message that went out is on the timeline (and counts) even if a person closed its
        # step meanwhile.
        LeadEvent.objects.bulk_create([f.event for f in finished if f.event is not None])
        if touches:
            from pursuit.compliance.models import Touch

            Touch.objects.bulk_create(touches)
        moving = [f.step for f in closing if f.status != Step.Status.CANCELLED and f.step.plan_step_id]
        if not moving:
            return
        later = {}  # enrolment -> the furthest position among its other open steps
        for enrolment_id, position in Step.objects.filter(
            enrolment_id__in={s.enrolment_id for s in moving}, status__in=Step.OPEN, plan_step__isnull=False
        ).values_list("enrolment_id", "plan_step__position"):
            later[enrolment_id] = max(position, later.get(enrolment_id, position))
        for step in moving:
            if step.plan_step.repeat or later.get(step.enrolment_id, -1) <= step.plan_step.position:
                step.enrolment.refresh_from_db(fields=["status"])
                _follow_on(step, now)


# --------------------------------------------------------------------------- what people do


ATTEMPT_EVENTS = {
    "no-answer": "call-no-answer",
    "voicemail": "call-voicemail",
    "talked": "call-talked",
    "bad-number": "call-bad-number",
}


def on_attempt(*, lead: Lead, channel: str, outcome: str, now: dt.datetime, by: User | None = None) -> None:
    """A person tried to reach the customer: the due task of that channel is done, and the
    outcome may move the lead to another plan (the rooftop's transitions)."""
    due = (
        Step.objects.filter(
            lead=lead,
            status=Step.Status.PENDING,
            action=PlanStep.Action.TASK,
            channel=channel,
            due_at__lte=now,
        )
        .order_by("due_at", "id")
        .first()
    )
    if due is not None:
        step_finish(step=due, now=now, outcome=outcome, by=by)
    if lead.reply_waiting_at is not None:
        reply_handled(lead=lead, now=now, by=by)
    if channel == "call" and outcome in ATTEMPT_EVENTS:
        lead_event(lead=lead, event=ATTEMPT_EVENTS[outcome], now=now, by=by)
    lead_ensure_plan(lead=lead, now=now)


def on_reply(*, lead: Lead, channel: str, text: str, now: dt.datetime) -> None:
    """The customer wrote back: the plan's automatic sends wait (a person answers a person), the
    owner is told, and the rooftop's transition for a reply (if any) moves the plan."""
    from pursuit.work.services import notify

    with transaction.atomic():
        lead = Lead.objects.select_for_update(of=("self",)).select_related("owner").get(pk=lead.pk)
        fields = {"reply_waiting_at": lead.reply_waiting_at or now}
        if lead.first_reply_at is None:
            fields["first_reply_at"] = now
        Lead.objects.filter(pk=lead.pk).update(**fields)
        for name, value in fields.items():
            setattr(lead, name, value)
        Step.objects.filter(lead=lead, status=Step.Status.PENDING, action=PlanStep.Action.SEND).update(
            status=Step.Status.HELD
        )
        if lead.owner is not None:
            notify(
                user=lead.owner,
                lead=lead,
                kind="reply",
                now=now,
                text=f"{lead.customer} replied by {channel}: {text[:200]}",
            )
        lead_event(lead=lead, event="reply-received", now=now)
        # A reply-received transition may have enrolled a new plan with automatic steps: they wait too.
        Step.objects.filter(lead=lead, status=Step.Status.PENDING, action=PlanStep.Action.SEND).update(
            status=Step.Status.HELD
        )


def reply_handled(*, lead: Lead, now: dt.datetime, by: User | None = None) -> int:
    """Someone answered the customer (a call, a text, an email, or "answered" on the lead): the
    held automatic steps go on, none earlier than now. Returns the steps released."""
    with transaction.atomic():
        held = list(Step.objects.filter(lead=lead, status=Step.Status.HELD))
        for step in held:
            step.status, step.due_at = Step.Status.PENDING, max(step.due_at, now)
        Step.objects.bulk_update(held, ["status", "due_at"])
        Lead.objects.filter(pk=lead.pk).update(reply_waiting_at=None)
        lead.reply_waiting_at = None
        LeadEvent.objects.create(
            lead=lead,
            kind=LeadEvent.Kind.REPLY_HANDLED,
            at=now,
            actor=by,
            text="Reply answered"
            + (f" by {by.display_name}" if by else "")
            + (f": {len(held)} automatic steps go on" if held else ""),
        )
        return len(held)


def on_status(
    *, lead: Lead, before: str, status: str, reason: str, now: dt.datetime, by: User | None = None
) -> None:
    """The lead's status changed: a sale moves it to the sold plan, buying elsewhere to the
    light plan for the next purchase; any other close stops its follow-up."""
    if status == Lead.Status.SOLD:
        if lead_event(lead=lead, event="sold", now=now, by=by) is None:
            plans_stop(lead=lead, now=now, reason="sold", by=by)
    elif status == Lead.Status.LOST and reason.lower().startswith("bought elsewhere"):
        if lead_event(lead=lead, event="bought-elsewhere", now=now, by=by) is None:
            plans_stop(lead=lead, now=now, reason=reason, by=by)
    elif status in (Lead.Status.LOST, Lead.Status.CLOSED):
        plans_stop(lead=lead, now=now, reason=f"{status}: {reason}" if reason else status, by=by)
    else:
        if before not in Lead.OPEN_STATUSES:
            # Reopened: back on a primary plan before anything else.
            _end(lead, now, "reopened")
            lead_ensure_plan(lead=lead, now=now)
        if status == Lead.Status.APPOINTMENT and before != Lead.Status.APPOINTMENT:
            lead_event(lead=lead, event="appointment-set", now=now, by=by)
        lead_ensure_plan(lead=lead, now=now)


def coverage_check_run(job, *, now: dt.datetime) -> None:
    """The worker's daily check (job "coverage-check"): repair any open lead without a next step
    and tell the rooftop's managers how many there were, so a gap is never silent."""
    from pursuit.org.models import Role
    from pursuit.work.services import notify

    found: dict[int, list[Lead]] = {}
    for lead in coverage_gaps().select_related("rooftop", "customer"):
        found.setdefault(lead.rooftop_id, []).append(lead)
        lead_ensure_plan(lead=lead, now=now)
    for rooftop_id, leads in found.items():
        for manager in User.objects.filter(
            rooftop_id=rooftop_id, role__in=(Role.MANAGER, Role.ADMIN), is_active=True
        ):
            notify(
                user=manager,
                kind="coverage",
                now=now,
                lead=leads[0] if len(leads) == 1 else None,
                text=f"{len(leads)} open lead(s) had no next step and were put back on a plan",
            )


# --------------------------------------------------------------------------- by hand


OBJECTIONS = {
    "price": "Price",
    "trade": "Trade-in value",
    "payment": "Monthly payment",
    "credit": "Credit",
    "spouse": "Needs to talk with spouse or partner",
    "timing": "Timing / just looking",
    "shopping": "Shopping other dealers",
}


def callback_add(*, lead: Lead, by: User, point: str, now: dt.datetime) -> Step:
    """ "I forgot to say something": an immediate callback task at the top of the person's list.

    It continues the same conversation: it is not a new attempt (no attempt is logged when it is
    done by `callback_done`) and it neither restarts nor advances the plan.
    """
    point = point.strip()
    if not point:
        raise PlanError("say what you forgot to tell them")
    with transaction.atomic():
        lead = (
            Lead.objects.select_for_update(of=("self",)).select_related("customer", "rooftop").get(pk=lead.pk)
        )
        enrolment = (
            Enrolment.objects.filter(lead=lead, status=Enrolment.Status.ACTIVE).order_by("-primary").first()
        )
        if enrolment is None:
            enrolment = lead_ensure_plan(lead=lead, now=now)
        if enrolment is None:
            raise PlanError("the lead is on no plan: a callback needs one (see the rooftop's transitions)")
        step = Step.objects.create(
            enrolment=enrolment,
            lead=lead,
            plan_step=None,
            name="Call back: forgot to say",
            script=point,
            action=PlanStep.Action.TASK,
            channel="call",
            due_at=now,
            # The owner's list (the words); whoever forgot, the owner makes the call.
            assignee=lead.owner or by,
            priority=0,
        )
        LeadEvent.objects.create(
            lead=lead,
            kind=LeadEvent.Kind.STEP,
            at=now,
            actor=by,
            text=f"Callback to make at once: {point}",
            data={"step": step.pk},
        )
        return step


def callback_done(*, step: Step, by: User, now: dt.datetime, note: str = "") -> Step:
    """The callback was made: recorded on the timeline, not as an attempt; the plan is untouched.
    It is still a call: it counts against the caps, and one made while the gate would not have
    allowed it is flagged for the managers (as a logged attempt is)."""
    if step.plan_step_id is not None:
        raise PlanError("this is a plan step, not a callback")
    with transaction.atomic():
        updated = Step.objects.filter(pk=step.pk, status__in=Step.OPEN).update(
            status=Step.Status.DONE, done_at=now, outcome=(note or "called back")[:200]
        )
        if updated:
            LeadEvent.objects.create(
                lead_id=step.lead_id,
                kind=LeadEvent.Kind.STEP,
                at=now,
                actor=by,
                text="Called back" + (f": {note}" if note else ""),
                data={"step": step.pk},
            )
            from pursuit.leads.services import _touch_check

            lead = Lead.objects.select_related("customer__rooftop").get(pk=step.lead_id)
            _touch_check(lead, "call", by, now, "Called back")
    step.refresh_from_db()
    return step


def visit_log(*, lead: Lead, by: User, objection: str, now: dt.datetime, note: str = "") -> Enrolment | None:
    """A showroom visit that did not end in a sale: recorded with the objection, and the lead
    moves to the plan that answers that objection."""
    if objection not in OBJECTIONS:
        raise PlanError(f"unknown objection {objection!r}: one of {', '.join(OBJECTIONS)}")
    with transaction.atomic():
        lead = Lead.objects.select_for_update(of=("self",)).select_related("rooftop").get(pk=lead.pk)
        if not lead.is_open:
            raise PlanError("the lead is closed")
        LeadEvent.objects.create(
            lead=lead,
            kind=LeadEvent.Kind.ATTEMPT,
            at=now,
            actor=by,
            text=f"Visit, no sale: {OBJECTIONS[objection]}" + (f". {note}" if note else ""),
            data={"channel": "visit", "outcome": "talked", "objection": objection, "note": note},
        )
        fields = []
        if lead.first_attempt_at is None:
            lead.first_attempt_at, fields = now, ["first_attempt_at"]
        if lead.status == Lead.Status.NEW:
            lead.status, fields = Lead.Status.WORKING, [*fields, "status"]
            LeadEvent.objects.create(
                lead=lead,
                kind=LeadEvent.Kind.STATUS,
                at=now,
                actor=by,
                text="New → Working: visited",
                data={"from": "new", "to": "working"},
            )
        if fields:
            lead.save(update_fields=fields)
        return lead_event(lead=lead, event="visit-no-sale", condition=objection, now=now, by=by)


def plan_version_save(
    *, plan: Plan, steps: list[dict], by: User | None, now: dt.datetime, note: str = ""
) -> PlanVersion:
    """Save a plan's steps as a new version. Leads already enrolled keep the version they have;
    leads enrolled from now on get this one. `steps` are PlanStep field values in order."""
    if not steps:
        raise PlanError("a plan needs at least one step")
    with transaction.atomic():
        last = PlanVersion.objects.select_for_update().filter(plan=plan).order_by("-number").first()
        version = PlanVersion.objects.create(
            plan=plan, number=(last.number + 1) if last else 1, created_at=now, created_by=by, note=note[:300]
        )
        PlanStep.objects.bulk_create(
            PlanStep(version=version, position=i, **fields) for i, fields in enumerate(steps, start=1)
        )
        return version


def schedule_preview(
    *, plan: Plan, lead: Lead | None, rooftop: Rooftop, now: dt.datetime, version: PlanVersion | None = None
) -> list[Planned]:
    """The schedule the plan would give `lead` (or a customer in the rooftop's own time zone)
    enrolled at `now`."""
    version = version or plan.current
    steps = list(version.steps.order_by("position")) if version else []
    zone = lead.customer.time_zone if lead is not None else rooftop.time_zone
    return schedule_compute(steps=steps, start=now, hours=rooftop_hours(rooftop), customer_zone=zone)


def reengage_candidates(*, incentive):
    """Open unsold prospects who wanted a vehicle matching the incentive, with why they did not
    buy (the objection of their last visit without a sale, if any)."""
    from pursuit.leads.models import Vehicle

    vehicles = Vehicle.objects.filter(
        lead__rooftop=incentive.rooftop, role=Vehicle.Role.INTEREST, lead__status__in=Lead.OPEN_STATUSES
    )
    if incentive.stock:
        vehicles = vehicles.filter(stock__iexact=incentive.stock)
    if incentive.make:
        vehicles = vehicles.filter(make__iexact=incentive.make)
    if incentive.model:
        vehicles = vehicles.filter(model__iexact=incentive.model)
    if incentive.year_from:
        vehicles = vehicles.filter(year__gte=incentive.year_from)
    if incentive.year_to:
        vehicles = vehicles.filter(year__lte=incentive.year_to)
    if incentive.condition:
        vehicles = vehicles.filter(condition=incentive.condition)
    leads = (
        Lead.objects.filter(pk__in=vehicles.values("lead_id"))
        .select_related("customer", "owner")
        .order_by("-created_at")
    )
    objections = {}
    for lead_id, data in (
        LeadEvent.objects.filter(lead__in=leads, data__has_key="objection")
        .order_by("at")
        .values_list("lead_id", "data")
    ):
        objections[lead_id] = OBJECTIONS.get(data.get("objection"), "")
    return [(lead, objections.get(lead.pk, "")) for lead in leads]


def reengage(*, incentive, leads: list[Lead], by: User | None, now: dt.datetime) -> int:
    """Enrol the chosen prospects in the rooftop's re-engagement plan, its templates able to
    mention the incentive ({{ incentive.title }})."""
    plan = plan_for(rooftop=incentive.rooftop, event="re-engage")
    if plan is None:
        raise PlanError("the rooftop has no re-engagement plan (transition for the event re-engage)")
    count = 0
    with transaction.atomic():  # all the chosen prospects, or none
        for lead in leads:
            if lead.rooftop_id != incentive.rooftop_id or not lead.is_open:
                continue
            enrol(
                lead=lead,
                plan=plan,
                now=now,
                reason=f"re-engage: {incentive.title}",
                by=by,
                incentive=incentive,
            )
            count += 1
    return count


# --------------------------------------------------------------------------- stop conditions

CONTACT_CHANNELS = ("call", "email", "text")


def customer_stop(*, customer, reason: str, now: dt.datetime, by: User | None = None) -> int:
    """The customer died or asked not to be contacted at all: every open lead of theirs is
    closed with the reason on its timeline, and all follow-up ends at once. Returns the leads
    closed."""
    from pursuit.leads.models import Customer

    if reason not in ("deceased", "do-not-contact"):
        raise PlanError(f"unknown stop reason {reason!r}")
    closed = 0
    with transaction.atomic():
        field = "deceased" if reason == "deceased" else "do_not_contact"
        Customer.objects.filter(pk=customer.pk).update(**{field: True})
        # Booked visits are off too (no cancellation message: nothing more is sent).
        from pursuit.appointments.models import Appointment

        Appointment.objects.filter(lead__customer=customer, status=Appointment.Status.SET).update(
            status=Appointment.Status.CANCELLED, outcome_at=now
        )
        setattr(customer, field, True)
        words = "deceased" if reason == "deceased" else "asked not to be contacted"
        for lead in Lead.objects.select_for_update(of=("self",)).filter(customer=customer):
            _end(lead, now, words)
            Job.objects.filter(lead=lead, status=Job.Status.PENDING).update(
                status=Job.Status.CANCELLED, done_at=now
            )
            if lead.is_open:
                lead_status_set(
                    lead,
                    Lead.Status.CLOSED,
                    now=now,
                    by=by,
                    why=f"customer {words}",
                    data={"reason": reason},
                    closed_at=now,
                    lost_reason=words,
                )
                closed += 1
    return closed


def customer_opt_out(*, customer, channel: str, now: dt.datetime, by: User | None = None) -> None:
    """The customer asked us not to use one channel: its steps are removed from every open
    lead's plans at once and the plans go on with the other channels. Out of every channel,
    or "all": nothing more is sent (`customer_stop`)."""
    from pursuit.leads.models import Customer

    if channel == "all":
        customer_stop(customer=customer, reason="do-not-contact", now=now, by=by)
        return
    if channel not in CONTACT_CHANNELS:
        raise PlanError(f"unknown channel {channel!r}: one of {', '.join(CONTACT_CHANNELS)} or all")
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer.pk)
        if channel not in customer.opted_out:
            customer.opted_out = [*customer.opted_out, channel]
            customer.save(update_fields=["opted_out"])
        if set(CONTACT_CHANNELS) <= set(customer.opted_out):
            customer_stop(customer=customer, reason="do-not-contact", now=now, by=by)
            return
        _channel_steps_remove(customer, channel, f"opted out of {channel}", now, by)


def channel_remove(*, customer, channel: str, reason: str, now: dt.datetime, by: User | None = None) -> None:
    """The compliance gate denied a channel for good (the national registry without an
    exemption, the internal list, a refused consent): its steps leave every open lead's plans and
    the plans go on with the channels still lawful. With none left, the leads stop, the reason on
    their timelines."""
    from pursuit.compliance.gate import channels_lawful

    with transaction.atomic():
        _channel_steps_remove(customer, channel, reason, now, by)
        if channels_lawful(customer, at=now):
            return
        words = f"no lawful way to contact the customer is left ({reason})"
        for lead in Lead.objects.select_for_update(of=("self",)).filter(
            customer=customer, status__in=Lead.OPEN_STATUSES
        ):
            _end(lead, now, words)
            lead_status_set(
                lead,
                Lead.Status.CLOSED,
                now=now,
                by=by,
                why=words,
                data={"reason": "no-lawful-channel"},
                closed_at=now,
                lost_reason=words[:200],
            )


def _channel_steps_remove(customer, channel: str, reason: str, now: dt.datetime, by: User | None) -> None:
    for lead in Lead.objects.filter(customer=customer, status__in=Lead.OPEN_STATUSES):
        removed = Step.objects.filter(
            lead=lead, channel=channel, status__in=(Step.Status.PENDING, Step.Status.HELD)
        ).update(status=Step.Status.CANCELLED, done_at=now, outcome=reason[:200])
        LeadEvent.objects.create(
            lead=lead,
            kind=LeadEvent.Kind.PLAN,
            at=now,
            actor=by,
            text=f"No more {channel} steps ({reason})" + ("" if removed else ": none were pending"),
            data={"channel_removed": channel, "reason": reason[:200]},
        )
        for enrolment in Enrolment.objects.filter(lead=lead, status=Enrolment.Status.ACTIVE):
            last = Step.objects.filter(enrolment=enrolment).order_by("-due_at", "-id").first()
            if (
                last is not None
                and not Step.objects.filter(enrolment=enrolment, status__in=Step.OPEN).exists()
            ):
                last = Step.objects.select_related("enrolment__version__plan", "plan_step").get(pk=last.pk)
                last.lead = lead
                _follow_on(last, now)
        lead_ensure_plan(lead=lead, now=now)


def silence_check_run(job, *, now: dt.datetime) -> None:
    """The worker's daily "silence-check": a warm prospect (someone talked with them, they
    visited, or they replied) who has gone quiet for the rooftop's `silent_after_days` moves to
    the plan for "gone-silent" (the honest "did I let you down?" call), once per silence."""
    from django.db.models import Max, Q

    for rooftop in Rooftop.objects.all():
        plan = plan_for(rooftop=rooftop, event="gone-silent")
        if plan is None:
            continue
        cutoff = now - dt.timedelta(days=rooftop.silent_after_days)
        warm = Q(events__kind=LeadEvent.Kind.ATTEMPT, events__data__outcome="talked")
        leads = (
            Lead.objects.filter(rooftop=rooftop, status__in=Lead.OPEN_STATUSES)
            .annotate(last_warm=Max("events__at", filter=warm))
            .filter(Q(last_warm__lt=cutoff) | Q(last_warm__isnull=True, first_reply_at__lt=cutoff))
            .exclude(first_reply_at__gte=cutoff)
        )
        for lead in leads.select_related("rooftop", "customer"):
            since = max(filter(None, [lead.last_warm, lead.first_reply_at]))
            if Enrolment.objects.filter(lead=lead, version__plan=plan, started_at__gte=since).exists():
                continue  # this silence was already followed up
            try:
                lead_event(lead=lead, event="gone-silent", now=now)
            except PlanError as exc:
                log.warning("silence check: lead %s: %s", lead.pk, exc)

"""My day: one prioritised list of what a person should do now.

The order is the trade's (domain.md, "the users' day"): new leads not yet attempted (with the
time left against the rooftop's response limit), replies waiting, callbacks the person promised
("I forgot to say" first), calls due now, today's appointments, then emails and texts to send by
hand. Each item says why it is there, what to say, and, for calls and texts, whether the
compliance gate allows it right now and otherwise when.

A fixed number of queries, whatever the length of the list: the page is opened all day.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from django.db.models import Q

from pursuit.leads.models import Lead
from pursuit.org.models import User

ORDER = ("new", "reply", "callback", "call", "appointment", "message")
LABELS = {
    "new": "New lead, not yet contacted",
    "reply": "Reply waiting",
    "callback": "Callback you promised",
    "call": "Call due",
    "appointment": "Appointment today",
    "message": "To send by hand",
}


@dataclass
class Item:
    kind: str
    lead: Lead
    why: str
    due_at: dt.datetime
    step: object | None = None
    appointment: object | None = None
    script: str = ""
    overdue: bool = False
    seconds_left: float | None = None  # new leads: against the response limit
    allowed: bool = True
    allowed_at: dt.datetime | None = None  # in the customer's time
    gate_rule: str = ""
    gate_detail: str = ""
    vehicle: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return LABELS[self.kind]

    @property
    def seconds_over(self) -> float:
        return -(self.seconds_left or 0)


@dataclass
class Day:
    items: list[Item]
    more: int  # due items beyond the list's length, counted but not shown

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]


LIMIT = 40  # per kind: more than a person can do in an hour; the rest is counted, not shown


def my_day(
    *, user: User, now: dt.datetime, everyone: bool = False, horizon_hours: int = 0, limit: int = LIMIT
) -> Day:
    """The list for `user` (for a manager with `everyone`, the whole rooftop's): at most `limit`
    items of each kind, the most urgent first, with a count of the rest."""
    from pursuit.appointments.models import Appointment
    from pursuit.compliance.gate import decide, facts_load
    from pursuit.outreach.services import plan_merge_fields, template_render
    from pursuit.plans.models import PlanStep, Step

    rooftop = user.rooftop
    zone = ZoneInfo(rooftop.time_zone)
    mine = Q() if everyone else Q(owner=user)
    leads = Lead.objects.filter(mine, rooftop=rooftop, status__in=Lead.OPEN_STATUSES).select_related(
        "customer", "owner", "rooftop"
    )
    items: list[Item] = []
    more = 0
    window = dt.timedelta(minutes=rooftop.handoff_after or 5)
    fresh = leads.filter(first_attempt_at__isnull=True)
    for lead in fresh.order_by("-created_at")[:limit]:  # the newest: the ones still winnable
        left = (lead.created_at + window - now).total_seconds()
        items.append(
            Item(
                "new",
                lead,
                f"Arrived {_ago(now - lead.created_at)}",
                lead.created_at,
                seconds_left=left,
                overdue=left < 0,
            )
        )
    replies = leads.filter(reply_waiting_at__isnull=False)
    for lead in replies.order_by("reply_waiting_at")[:limit]:
        items.append(
            Item("reply", lead, f"Wrote back {_ago(now - lead.reply_waiting_at)}", lead.reply_waiting_at)
        )
    soon = now + dt.timedelta(hours=horizon_hours)
    step_owner = Q() if everyone else Q(assignee=user)
    due = Step.objects.filter(
        step_owner,
        lead__rooftop=rooftop,
        lead__status__in=Lead.OPEN_STATUSES,
        status=Step.Status.PENDING,
        action=PlanStep.Action.TASK,
        due_at__lte=soon,
    )
    steps = list(
        due.select_related(
            "lead__customer__rooftop",
            "lead__owner",
            "lead__rooftop",
            "plan_step__template",
            "enrolment__incentive",
            "enrolment__appointment",
        )
        .prefetch_related("lead__vehicles", "lead__customer__phones", "lead__customer__emails")
        .order_by("priority", "due_at", "id")[: limit * 2]
    )
    # Counted only when a list is full: the common case costs no extra query.
    if len(items) >= limit or len(steps) >= limit * 2:
        more += (
            max(fresh.count() - limit, 0) + max(replies.count() - limit, 0) + max(due.count() - limit * 2, 0)
        )
    customers = {s.lead.customer_id: s.lead.customer for s in steps}
    facts = facts_load(customers.values(), at=now) if customers else {}
    for step in steps:
        lead = step.lead
        kind = (
            "callback"
            if step.plan_step_id is None
            else ("call" if step.channel in ("call", "video") else "message")
        )
        item = Item(
            kind,
            lead,
            step.name or (step.plan_step.name if step.plan_step_id else "Task"),
            step.due_at,
            step=step,
        )
        item.overdue = step.due_at < now - dt.timedelta(minutes=15)
        item.script = _script(step, plan_merge_fields, template_render)
        if step.channel in ("call", "text", "email", "video"):
            answer = decide(
                lead.customer, facts[lead.customer_id], channel=step.channel, purpose="marketing", at=now
            )
            if not answer.allowed:
                item.allowed, item.gate_rule, item.gate_detail = False, answer.rule, answer.detail
                if answer.until:
                    item.allowed_at = answer.until.astimezone(
                        ZoneInfo(lead.customer.time_zone or rooftop.time_zone)
                    )
        items.append(item)
    day_start = dt.datetime.combine(now.astimezone(zone).date(), dt.time(), tzinfo=zone)
    appointments = Appointment.objects.filter(
        rooftop=rooftop,
        status=Appointment.Status.SET,
        starts_at__gte=day_start,
        starts_at__lt=day_start + dt.timedelta(days=1),
    ).select_related("lead__customer", "lead__owner", "lead__rooftop", "with_user")
    if not everyone:
        appointments = appointments.filter(Q(with_user=user) | Q(lead__owner=user))
    for appointment in appointments.order_by("starts_at"):
        items.append(
            Item(
                "appointment",
                appointment.lead,
                f"{appointment.starts_at.astimezone(zone):%-I:%M %p}"
                + (f" with {appointment.with_user.display_name}" if appointment.with_user else ""),
                appointment.starts_at,
                appointment=appointment,
                overdue=appointment.starts_at < now - dt.timedelta(hours=1),
            )
        )
    # The vehicle each row is about: one query for the whole list.
    from pursuit.leads.models import Vehicle

    wanted: dict[int, str] = {}
    for vehicle in Vehicle.objects.filter(
        lead_id__in={i.lead.pk for i in items}, role=Vehicle.Role.INTEREST
    ).order_by("id"):
        wanted.setdefault(vehicle.lead_id, str(vehicle))
    for item in items:
        item.vehicle = wanted.get(item.lead.pk, "")
    rank = {kind: i for i, kind in enumerate(ORDER)}
    # Callbacks keep their own order (promised ones first); the rest oldest first.
    ordered = sorted(items, key=lambda i: (rank[i.kind], i.step.priority if i.step else 0, i.due_at))
    return Day(items=ordered, more=more)


def _script(step, plan_merge_fields, template_render) -> str:
    if step.plan_step_id is None:
        return step.script
    source = step.plan_step.script or (step.plan_step.template.body if step.plan_step.template_id else "")
    if not source:
        return ""
    try:
        return template_render(source, plan_merge_fields(step.lead))
    except Exception:  # a broken template must not take the list down: show it raw
        return source


def _ago(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 1:
        return "just now"
    if minutes < 60:
        return f"{minutes} min ago"
    if minutes < 48 * 60:
        return f"{minutes // 60} h ago"
    return f"{minutes // 1440} days ago"

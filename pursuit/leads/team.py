"""The manager's view of the day: who has what to do, what slipped, which leads have no next step."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.db.models import Count, F, Q

from pursuit.leads.models import Lead, LeadEvent
from pursuit.org.models import User

OVERDUE_AFTER = dt.timedelta(minutes=15)


@dataclass
class PersonToday:
    user: User
    due: int  # tasks due by the end of the rooftop's day, still open
    overdue: int  # of those, due more than 15 minutes ago
    completed: int  # attempts logged today


def team_today(*, rooftop, now: dt.datetime) -> list[PersonToday]:
    """Each active member of staff's due, overdue and completed counts today (three queries)."""
    from pursuit.plans.models import PlanStep, Step

    zone = ZoneInfo(rooftop.time_zone)
    start = dt.datetime.combine(now.astimezone(zone).date(), dt.time(), tzinfo=zone)
    end = start + dt.timedelta(days=1)
    people = list(User.objects.filter(rooftop=rooftop, is_active=True).order_by("first_name", "username"))
    tasks = (
        Step.objects.filter(
            assignee__rooftop=rooftop,
            status=Step.Status.PENDING,
            action=PlanStep.Action.TASK,
            due_at__lt=end,
            lead__status__in=Lead.OPEN_STATUSES,
        )
        .values("assignee_id")
        .annotate(due=Count("id"), overdue=Count("id", filter=Q(due_at__lt=now - OVERDUE_AFTER)))
    )
    counts = {row["assignee_id"]: row for row in tasks}
    done = dict(
        LeadEvent.objects.filter(
            lead__rooftop=rooftop, kind=LeadEvent.Kind.ATTEMPT, at__gte=start, at__lt=end, actor__isnull=False
        )
        .values_list("actor_id")
        .annotate(n=Count("id"))
    )
    return [
        PersonToday(
            user=person,
            due=counts.get(person.pk, {}).get("due", 0),
            overdue=counts.get(person.pk, {}).get("overdue", 0),
            completed=done.get(person.pk, 0),
        )
        for person in people
    ]


def missed_response_today(*, rooftop, now: dt.datetime):
    """Leads that arrived today and were not attempted within the rooftop's response limit (the
    hand-off minutes): still waiting past it, or answered late."""
    zone = ZoneInfo(rooftop.time_zone)
    start = dt.datetime.combine(now.astimezone(zone).date(), dt.time(), tzinfo=zone)
    limit = dt.timedelta(minutes=rooftop.handoff_after or 5)
    return (
        Lead.objects.filter(rooftop=rooftop, created_at__gte=start, created_at__lte=now - limit)
        .filter(Q(first_attempt_at__isnull=True) | Q(first_attempt_at__gt=F("created_at") + limit))
        .select_related("customer", "owner")
        .order_by("created_at")
    )

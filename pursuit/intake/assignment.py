"""Who owns a new lead: the returning customer's previous owner, else the rooftop's rules and
round robin among the team's on-duty members, else any on-duty salesperson."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Q

from pursuit.intake.models import AssignmentRule
from pursuit.org.models import Role, Team, User

SELLING_ROLES = (Role.BDC_AGENT, Role.CONSULTANT)


def _on_duty(qs):
    return qs.filter(is_active=True, on_duty=True)


def team_next_member(*, team: Team, exclude: User | None = None) -> User | None:
    """The next on-duty member of `team` after its round-robin cursor, and move the cursor.

    The team row is locked (SELECT ... FOR UPDATE) for the rest of the caller's transaction, so
    two processes assigning at once take turns instead of both picking the same person. On
    SQLite the transaction's write lock does the same.
    """
    team = Team.objects.select_for_update().get(pk=team.pk)
    members = list(_on_duty(team.members.all()).order_by("id"))
    if exclude is not None:
        members = [m for m in members if m.pk != exclude.pk]
    if not members:
        return None
    after = team.last_assigned_id or 0
    chosen = next((m for m in members if m.pk > after), members[0])
    Team.objects.filter(pk=team.pk).update(last_assigned=chosen)
    return chosen


def _least_loaded(*, rooftop, now: dt.datetime, exclude: User | None = None) -> User | None:
    """Fallback when no rule or team has anyone: the on-duty salesperson given the fewest leads
    in the last 24 hours (ties to the lowest id, so the choice is stable)."""
    qs = _on_duty(User.objects.filter(rooftop=rooftop, role__in=SELLING_ROLES))
    if exclude is not None:
        qs = qs.exclude(pk=exclude.pk)
    return (
        qs.annotate(recent=Count("leads", filter=Q(leads__assigned_at__gte=now - dt.timedelta(hours=24))))
        .order_by("recent", "id")
        .first()
    )


def previous_owner(*, customer, rooftop) -> User | None:
    """The owner of the customer's most recent earlier lead, if they still work here."""
    lead = (
        customer.leads.filter(rooftop=rooftop, owner__isnull=False)
        .select_related("owner")
        .order_by("-created_at", "-id")
        .first()
    )
    if lead and lead.owner.is_active and lead.owner.rooftop_id == rooftop.pk:
        return lead.owner
    return None


def owner_choose(*, rooftop, lead_type: str, source_id: int | None, customer, now: dt.datetime) -> tuple[User | None, str]:
    """(owner or None, why) for a new lead."""
    owner = previous_owner(customer=customer, rooftop=rooftop)
    if owner is not None:
        return owner, "returning customer: back to their previous owner"
    for rule in AssignmentRule.objects.filter(rooftop=rooftop).select_related("team"):
        if rule.matches(lead_type=lead_type, source_id=source_id):
            member = team_next_member(team=rule.team)
            if member is not None:
                return member, f"round robin in {rule.team.name}"
            break  # the matching team has nobody on duty: fall back rather than try weaker rules
    owner = _least_loaded(rooftop=rooftop, now=now)
    if owner is not None:
        return owner, "no team on duty for this lead: the least busy salesperson on duty"
    return None, "nobody is on duty"


def handoff_choose(*, lead, now: dt.datetime) -> User | None:
    """The next on-duty agent for a lead its owner has not touched: the next member of the
    owner's team that takes this kind of lead, else the least busy other salesperson."""
    for rule in AssignmentRule.objects.filter(rooftop=lead.rooftop).select_related("team"):
        if rule.matches(lead_type=lead.type, source_id=lead.source_id):
            member = team_next_member(team=rule.team, exclude=lead.owner)
            if member is not None:
                return member
            break
    return _least_loaded(rooftop=lead.rooftop, now=now, exclude=lead.owner)

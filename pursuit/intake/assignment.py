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
    # By customer only (a customer belongs to one rooftop): filtering on the rooftop too makes
    # SQLite pick the rooftop's index and scan every lead of the rooftop.
    lead = customer.leads.filter(owner__isnull=False).select_related("owner").order_by("-id").first()
    if lead and lead.owner.is_active and lead.owner.rooftop_id == rooftop.pk:
        return lead.owner
    return None


def owner_choose(
    *, rooftop, lead_type: str, source_id: int | None, customer, now: dt.datetime, returning: bool = True
) -> tuple[User | None, str]:
    """(owner or None, why) for a new lead. `returning=False` (a customer created just now)
    skips looking for a previous owner."""
    owner = previous_owner(customer=customer, rooftop=rooftop) if returning else None
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


class BatchAssigner:
    """Owners for many new leads at once (imports), with the same rules as `owner_choose` for
    customers new to the rooftop: the first matching rule's team in round robin, else the least
    busy salesperson on duty.

    The teams' rows stay locked for the caller's transaction; `save()` writes the moved
    round-robin cursors back.
    """

    def __init__(self, *, rooftop, now: dt.datetime):
        self.rules = list(AssignmentRule.objects.filter(rooftop=rooftop).select_related("team"))
        team_ids = {rule.team_id for rule in self.rules}
        self.teams = {t.pk: t for t in Team.objects.select_for_update().filter(pk__in=team_ids)}
        self.members = {
            pk: list(_on_duty(team.members.all()).order_by("id")) for pk, team in self.teams.items()
        }
        self.cursor = {pk: team.last_assigned_id or 0 for pk, team in self.teams.items()}
        selling = _on_duty(User.objects.filter(rooftop=rooftop, role__in=SELLING_ROLES))
        self.load = {
            u.pk: (u.recent, u)
            for u in selling.annotate(
                recent=Count("leads", filter=Q(leads__assigned_at__gte=now - dt.timedelta(hours=24)))
            )
        }

    def choose(self, *, lead_type: str, source_id: int | None) -> tuple[User | None, str]:
        for rule in self.rules:
            if rule.matches(lead_type=lead_type, source_id=source_id):
                members = self.members.get(rule.team_id) or []
                if members:
                    after = self.cursor[rule.team_id]
                    chosen = next((m for m in members if m.pk > after), members[0])
                    self.cursor[rule.team_id] = chosen.pk
                    return chosen, f"round robin in {rule.team.name}"
                break
        if not self.load:
            return None, "nobody is on duty"
        pk = min(self.load, key=lambda k: (self.load[k][0], k))
        count, user = self.load[pk]
        self.load[pk] = (count + 1, user)
        return user, "no team on duty for this lead: the least busy salesperson on duty"

    def save(self) -> None:
        for pk, team in self.teams.items():
            if self.cursor[pk] != (team.last_assigned_id or 0):
                Team.objects.filter(pk=pk).update(last_assigned_id=self.cursor[pk])

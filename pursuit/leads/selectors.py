"""Reads on leads: who may see which lead, the lead list with its search, one lead's page.

Tenancy lives here: every page fetches leads through `leads_for_user` or `lead_for_user`, so a
user only ever sees the leads of their own rooftop (superusers see every rooftop).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.http import Http404

from pursuit.leads.models import CustomerEmail, CustomerPhone, Lead, LeadEvent, Vehicle
from pursuit.org.models import User

_NOT_DIGIT = re.compile(r"\D+")
# What a phone number typed into the search box may contain besides digits.
_PHONE_CHARS = re.compile(r"^[\d\s()+.\-]+$")


def leads_for_user(user: User) -> QuerySet[Lead]:
    """Every lead `user` may see: their rooftop's (all rooftops for a superuser, none without one)."""
    qs = Lead.objects.all()
    if user.is_superuser:
        return qs
    if not user.is_authenticated or user.rooftop_id is None:
        return qs.none()
    return qs.filter(rooftop_id=user.rooftop_id)


def lead_for_user(user: User, lead_id: int) -> Lead:
    """The lead `lead_id` if `user` may see it, else Http404 (never 403: an outsider must not
    learn that the lead exists)."""
    lead = (
        leads_for_user(user)
        .select_related("customer", "rooftop", "owner", "source")
        .filter(pk=lead_id)
        .first()
    )
    if lead is None:
        raise Http404("No such lead")
    return lead


def lead_search(qs: QuerySet[Lead], query: str) -> QuerySet[Lead]:
    """Leads matching `query`: a customer name (every word must match a name part), an email,
    a phone (its digits), a VIN or stock number, or a lead id ("1234" or "#1234").

    Contacts and vehicles are matched with EXISTS subqueries, so a customer with two matching
    phones still appears once and the list needs no DISTINCT.
    """
    query = " ".join(query.split())
    if not query:
        return qs
    name = Q()
    for word in query.split(" "):
        name &= (
            Q(customer__first_name__icontains=word)
            | Q(customer__last_name__icontains=word)
            | Q(customer__middle_name__icontains=word)
        )
    match = name | Exists(
        CustomerEmail.objects.filter(customer=OuterRef("customer"), address__icontains=query)
    )
    digits = _NOT_DIGIT.sub("", query)
    if len(digits) >= 4 and _PHONE_CHARS.match(query):
        # match_key is E.164 ("+13125550100") or the digits of an unverified number, so the
        # typed digits, with or without country code, are a substring of it.
        national = digits[1:] if len(digits) == 11 and digits.startswith("1") else digits
        match |= Exists(
            CustomerPhone.objects.filter(customer=OuterRef("customer")).filter(
                Q(match_key__contains=national) | Q(number__contains=query)
            )
        )
    if len(query) >= 3:
        match |= Exists(
            Vehicle.objects.filter(lead=OuterRef("pk")).filter(
                Q(vin__icontains=query) | Q(stock__iexact=query)
            )
        )
    lead_id = query.lstrip("#")
    if lead_id.isdigit() and len(lead_id) < 12:
        match |= Q(pk=int(lead_id))
    return qs.filter(match)


STATUS_FILTERS = {"open": "Open", **dict(Lead.Status.choices), "all": "Any status"}


def lead_list(*, user: User, query: str = "", status: str = "open", mine: bool = False) -> QuerySet[Lead]:
    """The lead list as `user` sees it, newest first, with everything a row shows loaded in a
    fixed number of queries (whatever the page size)."""
    qs = leads_for_user(user)
    if status == "open":
        qs = qs.filter(status__in=Lead.OPEN_STATUSES)
    elif status in Lead.Status.values:
        qs = qs.filter(status=status)
    if mine:
        qs = qs.filter(owner=user)
    qs = lead_search(qs, query)
    interest = Vehicle.objects.filter(role=Vehicle.Role.INTEREST).order_by("id")
    return (
        qs.select_related("customer", "owner", "source", "rooftop")
        .prefetch_related(Prefetch("vehicles", queryset=interest, to_attr="interest_vehicles"))
        .order_by("-created_at", "-id")
    )


@dataclass
class LeadPage:
    """Everything the lead page shows, loaded in a fixed number of queries."""

    lead: Lead
    phones: list[CustomerPhone]
    emails: list[CustomerEmail]
    interest: list[Vehicle]
    trades: list[Vehicle]
    timeline: list[LeadEvent]
    sent: list  # OutboundEmail, newest first
    consents: list[dict]  # as the arrival recorded them: the evidence of what the customer said


def lead_page(*, user: User, lead_id: int) -> LeadPage:
    """One lead as `user` may see it (Http404 otherwise), with its contacts, vehicles, timeline
    and the emails sent for it."""
    lead = lead_for_user(user, lead_id)
    customer = lead.customer
    vehicles = list(lead.vehicles.order_by("id"))
    timeline = list(lead.events.select_related("actor").order_by("at", "id"))
    arrived = next((e for e in timeline if e.kind == LeadEvent.Kind.ARRIVED), None)
    consents = (arrived.data or {}).get("consents", []) if arrived else []
    return LeadPage(
        lead=lead,
        phones=list(customer.phones.order_by("-preferred", "id")),
        emails=list(customer.emails.order_by("id")),
        interest=[v for v in vehicles if v.role == Vehicle.Role.INTEREST],
        trades=[v for v in vehicles if v.role == Vehicle.Role.TRADE],
        timeline=timeline,
        sent=list(lead.emails.order_by("-sent_at", "-id")),
        consents=[c for c in consents if isinstance(c, dict)],
    )


def staff_for_reassign(lead: Lead) -> QuerySet[User]:
    """Who a manager may give the lead to: the rooftop's active staff."""
    return User.objects.filter(rooftop_id=lead.rooftop_id, is_active=True).order_by(
        "first_name", "last_name", "username"
    )


@dataclass(frozen=True)
class ResponseTimes:
    """A lead's speed-to-lead figures. The automatic answer is shown, but never as the
    response: `attempt_seconds` is the only response time."""

    auto_seconds: float | None  # arrival -> automatic answer
    attempt_seconds: float | None  # arrival -> first human attempt
    waiting_seconds: float | None  # open and not yet attempted: how long it has waited
    overdue: bool  # waiting longer than the rooftop's remind_owner_after


def response_times(lead: Lead, *, now: dt.datetime) -> ResponseTimes:
    def since(at: dt.datetime | None) -> float | None:
        return None if at is None else max(0.0, (at - lead.created_at).total_seconds())

    waiting = None
    overdue = False
    if lead.first_attempt_at is None and lead.is_open:
        waiting = max(0.0, (now - lead.created_at).total_seconds())
        overdue = waiting > lead.rooftop.remind_owner_after * 60
    return ResponseTimes(
        auto_seconds=since(lead.auto_response_at),
        attempt_seconds=since(lead.first_attempt_at),
        waiting_seconds=waiting,
        overdue=overdue,
    )

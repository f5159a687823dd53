"""Reads for the pages: the outbox and notifications, and the compliance panel of the lead page
and the manager's compliance page.

Like every read, each takes the acting user and returns only what that user may see.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.db.models import Exists, OuterRef, QuerySet

from pursuit.compliance.gate import (
    CONTACT_CHANNELS,
    REGISTRY_FRESH_DAYS,
    RULES_OF,
    Clearance,
    Facts,
    decide,
    ebr,
    facts_load,
    registry_copy,
)
from pursuit.compliance.models import Consent, Decision, RegistryCopy
from pursuit.lib.contacts import phone_display
from pursuit.org.models import Rooftop, User
from pursuit.outreach.models import OutboundEmail, OutboxEmail
from pursuit.work.models import Notification


def sent_for_user(user: User) -> QuerySet[OutboundEmail]:
    """The emails Pursuit sent (or tried to) for the leads of the user's rooftop, newest first."""
    qs = OutboundEmail.objects.select_related("lead__customer").order_by("-sent_at", "-id")
    if user.is_superuser:
        return qs
    if user.rooftop_id is None:
        return qs.none()
    return qs.filter(lead__rooftop_id=user.rooftop_id)


def outbox_for_user(user: User) -> QuerySet[OutboxEmail]:
    """What the "outbox" email backend kept instead of delivering: managers and admins only.

    A kept message belongs to a rooftop through its Message-ID: the Message-ID of an
    OutboundEmail of the rooftop's leads. Superusers see everything, including mail Django
    itself sent.
    """
    qs = OutboxEmail.objects.order_by("-created_at", "-id")
    if user.is_superuser:
        return qs
    if not user.is_manager or user.rooftop_id is None:
        return qs.none()
    mine = OutboundEmail.objects.filter(lead__rooftop_id=user.rooftop_id, message_id=OuterRef("message_id"))
    return qs.exclude(message_id="").filter(Exists(mine))


def notifications_for_user(user: User) -> QuerySet[Notification]:
    return (
        Notification.objects.filter(user=user).select_related("lead__customer").order_by("-created_at", "-id")
    )


# --------------------------------------------------------------------------- compliance

CHANNEL_LABELS = {"call": "Call", "text": "Text", "email": "Email"}
CHANNEL_VERBS = {"call": "call", "text": "text", "email": "email"}
LEAD_DECISIONS = 50  # the lead page's decision log shows the newest this many


@dataclass
class ChannelState:
    """One channel of a customer as the contact-rules panel shows it."""

    channel: str
    label: str
    answer: Clearance  # may a person make a sales touch on this channel now
    until_local: dt.datetime | None  # the deferral's moment, in the customer's zone
    consent: Consent | None  # the latest statement for marketing
    transactional: Consent | None  # the latest for transactional messages
    opted_out: bool
    listed: list[str]  # this channel's numbers or addresses on the group's own list
    on_registry: list[str]  # numbers on the national registry (calls and texts)
    address: str  # the number or address a touch would go to

    @property
    def verb(self) -> str:
        return CHANNEL_VERBS[self.channel]

    @property
    def address_shown(self) -> str:
        return phone_display(self.address) if self.address.startswith("+") else self.address

    @property
    def why(self) -> str:
        return reason(self.answer)


def reason(answer: Clearance) -> str:
    """Why the gate holds a touch back, without the moment it becomes allowed (the pages show
    that moment themselves, in the customer's time)."""
    return answer.detail.split("; next allowed ")[0]


@dataclass
class RegistryState:
    country: str
    copy: RegistryCopy | None
    age_days: int | None
    warning: str  # "" when the copy is fresh


@dataclass
class ContactRules:
    """The lead page's "Contact rules": what the gate would answer for each channel now, what it
    rests on, the stop requests waiting for a person, and the customer's decision log."""

    channels: list[ChannelState]
    local_now: dt.datetime
    zone: str
    ebr: str
    facts: Facts
    flags: list[Decision]  # possible stop requests not yet acted on, newest first
    decisions: list[Decision]  # newest first, at most LEAD_DECISIONS
    decisions_total: int
    registry: RegistryState


def registry_state(*, country: str, today: dt.date) -> RegistryState:
    """The latest national registry copy of `country` and a warning when it is missing or older
    than REGISTRY_FRESH_DAYS (a copy that old no longer gives the safe harbour)."""
    country = (country or "US").upper()
    copy = registry_copy(country)
    if copy is None:
        warning = (
            f"No {country} do-not-call registry copy has been imported: numbers on the national registry "
            "cannot be recognised. An administrator imports one in the admin (Registry copies) or with "
            "the command pursuit import-dnc."
        )
        return RegistryState(country, None, None, warning)
    age = (today - copy.copied_on).days
    warning = ""
    if age > REGISTRY_FRESH_DAYS:
        warning = (
            f"The {country} do-not-call registry copy is {age} days old (copy of {copy.copied_on:%b %-d, %Y}): "
            f"the law wants one no older than {REGISTRY_FRESH_DAYS} days. Import a new copy."
        )
    return RegistryState(country, copy, age, warning)


def _possible_stops(customer, facts: Facts, flags: list[Decision]) -> list[Decision]:
    """The "possible stop" flags a person has not acted on: the channel is not stopped yet and no
    refusal was recorded for it since the flag."""
    waiting = []
    for flag in flags:
        if customer.do_not_contact or customer.deceased or flag.channel in customer.opted_out:
            continue
        refusal = facts.consents.get((flag.channel, "marketing"))
        if refusal is not None and not refusal.granted and refusal.at >= flag.at:
            continue
        waiting.append(flag)
    return waiting


def contact_rules(*, lead, now: dt.datetime) -> ContactRules:
    """The contact rules of `lead`'s customer at `now`, read-only: nothing is written to the
    decision log by looking. A fixed number of queries: the gate's facts, the decisions and
    their count, the flags and the registry copy."""
    customer = lead.customer
    if customer.rooftop_id == lead.rooftop_id:
        customer.rooftop = lead.rooftop  # the same row: saves a query
    # gate.contact_status, with the channel details the panel shows besides.
    facts = facts_load([customer], at=now)[customer.pk]
    zone = customer.time_zone or customer.rooftop.time_zone
    emails = set(facts.emails)
    channels = []
    for channel in CONTACT_CHANNELS:
        answer = _decide(customer, facts, channel=channel, purpose="marketing", at=now)
        channels.append(
            ChannelState(
                channel=channel,
                label=CHANNEL_LABELS[channel],
                answer=answer,
                until_local=answer.until.astimezone(ZoneInfo(zone)) if answer.until else None,
                consent=facts.consents.get((channel, "marketing")),
                transactional=facts.consents.get((channel, "transactional")),
                opted_out=channel in customer.opted_out,
                listed=[v for v in sorted(facts.suppressed) if (v in emails) == (channel == "email")],
                on_registry=sorted(facts.on_registry) if channel != "email" else [],
                address=answer.inputs.get("address", ""),
            )
        )
    decisions = Decision.objects.filter(customer_id=customer.pk).order_by("-at", "-id")
    flags = list(decisions.filter(verdict=Decision.Verdict.FLAG, rule="possible-stop"))
    return ContactRules(
        channels=channels,
        local_now=now.astimezone(ZoneInfo(zone)),
        zone=zone,
        ebr=ebr(facts, now),
        facts=facts,
        flags=_possible_stops(customer, facts, flags),
        decisions=list(decisions[:LEAD_DECISIONS]),
        decisions_total=decisions.count(),
        registry=registry_state(country=lead.rooftop.country, today=now.astimezone(lead.rooftop.tz).date()),
    )


def _decide(customer, facts: Facts, *, channel: str, **kwargs) -> Clearance:
    """gate.decide, asked by a page. gate.decide reads the first email address before checking
    that there is one; a customer without one is answered here the way the gate answers a
    customer without a phone number."""
    try:
        return decide(customer, facts, channel=channel, **kwargs)
    except IndexError:
        if RULES_OF.get(channel) != "email" or facts.emails:
            raise
        return Clearance("deny", "no-email-address", "no email address")


def step_purpose_of(step, enrolment) -> str:
    """A plan step's purpose without a query (outreach.services.step_purpose, with the
    enrolment the panel already holds)."""
    template = step.plan_step.template if step.plan_step_id else None
    if template is not None:
        return template.purpose
    return "transactional" if enrolment.version.plan.kind == "transactional" else "marketing"


def plan_panel_clear(panel, *, customer, facts: Facts, now: dt.datetime) -> None:
    """Say on each open step of the plan panel whether the gate would let it happen at its time
    (now, for a step already due): `row.gate` is the gate's answer and `row.gate_local` the
    moment it becomes allowed, in the customer's zone. Uses the facts already loaded for the
    page: no query per step."""
    zone = ZoneInfo(customer.time_zone or customer.rooftop.time_zone)
    enrolments = {p.enrolment.pk: p.enrolment for p in panel.plans}
    rows = list(panel.callbacks) + [row for p in panel.plans for row in p.to_come]
    for row in rows:
        step = row.step
        enrolment = enrolments.get(step.enrolment_id)
        if enrolment is None or RULES_OF.get(step.channel) is None:
            continue
        at = max(now, step.due_at)
        answer = _decide(
            customer,
            facts,
            channel=step.channel,
            purpose=step_purpose_of(step, enrolment),
            at=at,
            automated=step.action == "send",
        )
        if answer.allowed:
            continue
        row.gate = answer
        row.gate_why = reason(answer)
        row.gate_now = at == now
        row.gate_local = answer.until.astimezone(zone) if answer.until else None


def decisions_for_rooftop(*, rooftop: Rooftop, rule: str = "", verdict: str = "") -> QuerySet[Decision]:
    """The decision log of the rooftop's customers, newest first, filtered by rule and verdict."""
    qs = Decision.objects.filter(customer__rooftop_id=rooftop.pk)
    if rule:
        qs = qs.filter(rule=rule)
    if verdict:
        qs = qs.filter(verdict=verdict)
    return qs.select_related("customer").order_by("-at", "-id")


def decision_rules(*, rooftop: Rooftop) -> list[str]:
    """The rules named in the rooftop's decision log, for the filter."""
    return list(
        Decision.objects.filter(customer__rooftop_id=rooftop.pk)
        .order_by("rule")
        .values_list("rule", flat=True)
        .distinct()
    )

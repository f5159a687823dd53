"""The compliance gate: one function every outbound touch passes through at the moment it would
happen (automatic sends at send time, call tasks when shown and when logged, "send now").

`may_contact(customer, channel, purpose, at)` answers allow, defer until a moment, or deny, with
a reason code. Checks run in the order of compliance.md B.1: stops and the internal list, then
consent, the national registry and its exemption, registrations, then the hours (the rule table
in rules.yaml) and the frequency caps. A deferral names the first moment every rule allows; a
denial that `ends_channel` removes that channel from the customer's plans (see
`pursuit.plans.services.channel_remove`).

The decision itself is a pure function of the customer, what is known about them (`Facts`,
loaded once per customer or per batch by `facts_load`), the rooftop and the moment, so that the
worker can decide a batch with a handful of queries and the tests can move a clock.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta
from django.db.models import Max

from pursuit.compliance import rules as law
from pursuit.compliance.models import Consent, Decision, RegistryCopy, RegistryNumber, Suppression, Touch

# Established business relationship (compliance.md row 8): an inquiry within three months (the
# FTC counts 90 days: day 90 is inside, day 91 is not) or a purchase within 18 months.
EBR_INQUIRY = dt.timedelta(days=90)
EBR_PURCHASE = relativedelta(months=18)
# A registry copy older than this loses the safe harbour (47 CFR 64.1200(c)(2)).
REGISTRY_FRESH_DAYS = 31
CONTACT_CHANNELS = ("call", "text", "email")
# Which rules a plan channel follows: a video call is a call; a letter or a social message
# only has to respect the stops.
RULES_OF = {"call": "call", "video": "call", "text": "text", "email": "email"}
PURPOSES = ("marketing", "transactional")
MAX_ROUNDS = 12  # hours and caps pushing each other later: settles in two or three


@dataclass(frozen=True)
class Clearance:
    """The gate's answer. `until` is the moment a deferred touch may happen; `ends_channel`
    says a denial lasts (opted out, internal list, registry without exemption) rather than
    belonging to this one touch."""

    verdict: str  # "allow" | "defer" | "deny"
    rule: str
    detail: str
    until: dt.datetime | None = None
    ends_channel: bool = False
    inputs: dict = field(default_factory=dict, compare=False)

    @property
    def allowed(self) -> bool:
        return self.verdict == "allow"


ALLOW = Clearance("allow", "allowed", "allowed")


@dataclass
class Facts:
    """What the gate needs to know about one customer besides the customer row."""

    phones: list[tuple[str, str, bool]] = field(default_factory=list)  # number, type, verified
    emails: list[str] = field(default_factory=list)
    suppressed: set[str] = field(default_factory=set)
    on_registry: set[str] = field(default_factory=set)
    consents: dict[tuple[str, str], Consent] = field(default_factory=dict)  # the latest per key
    touches: list[tuple[str, str, dt.datetime]] = field(default_factory=list)  # channel, purpose, at
    last_inquiry: dt.datetime | None = None
    last_purchase: dt.datetime | None = None


def facts_load(customers, *, at: dt.datetime) -> dict[int, Facts]:
    """Facts for many customers in a fixed number of queries (the worker's batches)."""
    from pursuit.leads.models import Lead

    customers = list(customers)
    facts = {c.pk: Facts() for c in customers}
    if not customers:
        return facts
    ids = list(facts)
    for c in customers:
        f = facts[c.pk]
        f.phones = [(p.number, p.type, p.verified) for p in sorted(c.phones.all(), key=_phone_order)]
        f.emails = [e.address for e in sorted(c.emails.all(), key=lambda e: e.pk)]
    values = {v for f in facts.values() for v in [p[0] for p in f.phones] + f.emails}
    groups = {c.rooftop.group_id for c in customers}
    listed = set(
        Suppression.objects.filter(group_id__in=groups, value__in=values).values_list("group_id", "value")
    )
    registry = set(
        RegistryNumber.objects.filter(number__in=[v for v in values if v.startswith("+")]).values_list(
            "number", flat=True
        )
    )
    for c in customers:
        f = facts[c.pk]
        mine = [p[0] for p in f.phones] + f.emails
        f.suppressed = {v for v in mine if (c.rooftop.group_id, v) in listed}
        f.on_registry = {p[0] for p in f.phones if p[0] in registry}
    for consent in Consent.objects.filter(customer_id__in=ids).order_by("at", "id"):
        facts[consent.customer_id].consents[(consent.channel, consent.purpose)] = consent
    week = at - dt.timedelta(days=7)
    for customer_id, channel, purpose, when in Touch.objects.filter(
        customer_id__in=ids, at__gt=week, at__lte=at
    ).values_list("customer_id", "channel", "purpose", "at"):
        facts[customer_id].touches.append((channel, purpose, when))
    for row in (
        Lead.objects.filter(customer_id__in=ids)
        .values("customer_id")
        .annotate(inquiry=Max("received_at"), purchase=Max("sold_at"))
    ):
        f = facts[row["customer_id"]]
        f.last_inquiry, f.last_purchase = row["inquiry"], row["purchase"]
    return facts


def _phone_order(phone) -> tuple:
    # The number a person or the worker would use: preferred, then mobile, then oldest.
    return (not phone.preferred, phone.type != "mobile", phone.pk)


def registry_copy(country: str = "US") -> RegistryCopy | None:
    return RegistryCopy.objects.filter(country=country).order_by("-copied_on", "-pk").first()


def number_for(facts: Facts, channel: str) -> str:
    """The number a call or text would go to ("" when there is none: texts need a mobile or a
    number of unknown type)."""
    for number, kind, _verified in facts.phones:
        if channel == "text" and kind not in ("mobile", "other", ""):
            continue
        return number
    return ""


def _places(customer, rooftop, number: str) -> list[law.Place]:
    return law.recipient_places(
        country=_country(customer.country),
        region=customer.region,
        phone=number,
        rooftop_zone=rooftop.time_zone,
        rooftop_country=rooftop.country or "US",
        rooftop_region=rooftop.region,
    )


def _country(value: str) -> str:
    value = (value or "").strip().upper()
    return {"USA": "US", "UNITED STATES": "US", "CANADA": "CA", "CAN": "CA"}.get(value, value)


def decide(
    customer,
    facts: Facts,
    *,
    channel: str,
    purpose: str,
    at: dt.datetime,
    automated: bool = False,
    rooftop=None,
) -> Clearance:
    """The gate's rules, in order, for one touch at `at`. Pure: reads only its arguments."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown purpose {purpose!r}")
    rooftop = rooftop or customer.rooftop
    kind = RULES_OF.get(channel)
    if customer.deceased:
        return Clearance("deny", "deceased", "the customer has died", ends_channel=True)
    if customer.do_not_contact:
        return Clearance(
            "deny", "do-not-contact", "the customer asked not to be contacted at all", ends_channel=True
        )
    if channel in customer.opted_out or (kind and kind in customer.opted_out):
        return Clearance(
            "deny",
            f"opted-out:{kind or channel}",
            f"the customer opted out of {kind or channel}",
            ends_channel=True,
        )
    if kind is None:
        return ALLOW  # letters and social messages: only the stops above apply
    address = (facts.emails[0] if facts.emails else "") if kind == "email" else number_for(facts, kind)
    if not address:
        what = "email address" if kind == "email" else ("mobile number" if kind == "text" else "phone number")
        return Clearance("deny", f"no-{kind}-address", f"no {what}")
    inputs = {"address": address}
    if address in facts.suppressed:
        return Clearance(
            "deny",
            "internal-dnc",
            f"{address} is on the dealer group's do-not-contact list",
            ends_channel=True,
            inputs=inputs,
        )
    places = _places(customer, rooftop, address) if kind != "email" else []
    if places:
        inputs["places"] = [f"{p.country}-{p.region or '?'} {p.zone} ({p.why})" for p in places]
    if purpose == "marketing":
        refusal = _consent_refused(facts, kind)
        if refusal is not None:
            return Clearance(
                "deny",
                f"consent-refused:{kind}",
                f"the customer refused {kind}: {refusal.evidence}",
                ends_channel=True,
                inputs=inputs,
            )
        denied = _marketing_denied(customer, facts, kind, at, automated, rooftop, places, inputs)
        if denied is not None:
            return denied
    return _when(customer, facts, kind, purpose, at, rooftop, places, inputs)


def _consent_refused(facts: Facts, kind: str) -> Consent | None:
    consent = facts.consents.get((kind, "marketing"))
    return consent if consent is not None and not consent.granted else None


def _written_consent(facts: Facts, kind: str) -> Consent | None:
    consent = facts.consents.get((kind, "marketing"))
    return consent if consent is not None and consent.granted and consent.written else None


def ebr(facts: Facts, at: dt.datetime) -> str:
    """The established business relationship in force at `at` ("" when none)."""
    if facts.last_purchase and at <= facts.last_purchase + EBR_PURCHASE:
        return f"bought {facts.last_purchase.date():%Y-%m-%d}"
    if facts.last_inquiry and at <= facts.last_inquiry + EBR_INQUIRY:
        return f"inquired {facts.last_inquiry.date():%Y-%m-%d}"
    return ""


def _marketing_denied(customer, facts, kind, at, automated, rooftop, places, inputs) -> Clearance | None:
    if kind == "email":
        if not rooftop.postal_address.strip() or not rooftop.street:
            return Clearance(
                "deny",
                "no-postal-address",
                f"{rooftop.name} has no postal address: marketing email must carry one",
                inputs=inputs,
            )
        return None
    relationship = ebr(facts, at)
    written = _written_consent(facts, kind)
    inputs["ebr"] = relationship
    inputs["written_consent"] = bool(written)
    if kind == "text":
        if automated and written is None:
            return Clearance(
                "deny",
                "no-written-consent",
                "automatic marketing texts need the customer's written consent",
                inputs=inputs,
            )
        if not automated and written is None and not facts.last_inquiry:
            return Clearance(
                "deny", "no-consent", "no consent and no inquiry of the customer's to answer", inputs=inputs
            )
        duties = law.place_duties(places, channel="text", purpose="marketing")
        if duties.registration and not rooftop.texas_registered:
            states = ", ".join(duties.registration)
            return Clearance(
                "deny",
                f"registration:{duties.registration[0]}",
                f"marketing texts to {states} need the rooftop's seller registration",
                inputs=inputs,
            )
    number = inputs["address"]
    if number in facts.on_registry and written is None and not relationship:
        return Clearance(
            "deny",
            "dnc-registry",
            f"{number} is on the national do-not-call registry and the customer has no consent or business relationship with us",
            ends_channel=True,
            inputs=inputs,
        )
    return None


def _when(customer, facts, kind, purpose, at, rooftop, places, inputs) -> Clearance:
    """Allowed now, or deferred to the first moment the hours and the caps all allow."""
    zone = ZoneInfo(customer.time_zone or rooftop.time_zone)
    moment, first = at, None
    for _ in range(MAX_ROUNDS):
        later = []
        if kind in ("call", "text"):
            verdict = law.window_check(places, moment, channel=kind, purpose=purpose)
            if not verdict.allowed:
                if verdict.next_at is None:
                    return Clearance("deny", verdict.rule, verdict.detail, inputs=inputs)
                later.append((verdict.next_at, verdict.rule, verdict.detail))
        if purpose == "marketing":
            later += _caps(facts, kind, moment, rooftop, places, zone)
        if not later:
            break
        until, rule, detail = max(later, key=lambda x: x[0])
        first = first or (rule, detail)
        moment = until
    else:
        return Clearance(
            "deny", "no-window", "no moment within the caps and hours could be found", inputs=inputs
        )
    if first is None:
        return Clearance("allow", "allowed", "allowed", inputs=inputs)
    local = moment.astimezone(zone)
    return Clearance(
        "defer",
        first[0],
        f"{first[1]}; next allowed {local:%a %-d %b %-H:%M} customer's time",
        until=moment,
        inputs=inputs,
    )


def _caps(facts: Facts, kind: str, at: dt.datetime, rooftop, places, zone) -> list[tuple]:
    """The frequency caps at `at`: for each one reached, the moment it frees up."""
    marketing = sorted(t for c, p, t in facts.touches if p == "marketing" and t <= at)
    found = []
    if kind in ("call", "text"):
        duties = law.place_duties(places, channel=kind, purpose="marketing")
        caps = [(rooftop.cap_calls_texts_24h, "cap:rooftop-24h")]
        if duties.frequency_cap_24h:
            caps.append((duties.frequency_cap_24h, duties.cap_rule))
        cap, rule = min(caps, key=lambda c: c[0])
        phone = sorted(
            t
            for c, p, t in facts.touches
            if p == "marketing" and c in ("call", "text") and at - dt.timedelta(hours=24) < t <= at
        )
        if cap and len(phone) >= cap:
            found.append(
                (
                    phone[-cap] + dt.timedelta(hours=24),
                    rule,
                    f"{len(phone)} sales calls and texts in 24 hours (limit {cap})",
                )
            )
    day_start = dt.datetime.combine(at.astimezone(zone).date(), dt.time(), tzinfo=zone)
    today = [t for t in marketing if t >= day_start]
    if rooftop.cap_touches_day and len(today) >= rooftop.cap_touches_day:
        tomorrow = dt.datetime.combine(day_start.date() + dt.timedelta(days=1), dt.time(), tzinfo=zone)
        found.append(
            (
                tomorrow.astimezone(dt.UTC),
                "cap:day",
                f"{len(today)} touches today (limit {rooftop.cap_touches_day})",
            )
        )
    week = [t for t in marketing if t > at - dt.timedelta(days=7)]
    cap = rooftop.cap_touches_week
    if cap and len(week) >= cap:
        found.append(
            (week[-cap] + dt.timedelta(days=7), "cap:week", f"{len(week)} touches in 7 days (limit {cap})")
        )
    return found


def may_contact(
    customer,
    channel: str,
    purpose: str,
    at: dt.datetime,
    *,
    automated: bool = False,
    lead=None,
    step=None,
    facts: Facts | None = None,
    record: bool = True,
) -> Clearance:
    """The gate (see the module docstring). Every answer that holds a touch back is written to
    the decision log unless `record` is False (a page asking "may I call now?")."""
    if facts is None:
        facts = facts_load([customer], at=at)[customer.pk]
    answer = decide(customer, facts, channel=channel, purpose=purpose, at=at, automated=automated)
    if record and not answer.allowed:
        decision_record(customer, answer, channel=channel, purpose=purpose, at=at, lead=lead, step=step)
    return answer


def decision_record(customer, answer: Clearance, *, channel, purpose, at, lead=None, step=None) -> Decision:
    return Decision.objects.create(**_decision_fields(customer, answer, channel, purpose, at, lead, step))


def _decision_fields(customer, answer, channel, purpose, at, lead, step) -> dict:
    return {
        "customer_id": customer.pk,
        "lead_id": getattr(lead, "pk", lead),
        "step_id": getattr(step, "pk", step),
        "channel": channel,
        "purpose": purpose,
        "verdict": answer.verdict,
        "rule": answer.rule[:60],
        "detail": answer.detail,
        "until": answer.until,
        "inputs": answer.inputs,
        "at": at,
    }


def decisions_build(rows) -> list[Decision]:
    """Unsaved decisions for (customer, answer, channel, purpose, at, lead, step) rows: the worker
    writes a batch's together."""
    return [Decision(**_decision_fields(*row)) for row in rows]


def touch_record(
    *, customer, channel: str, purpose: str, at: dt.datetime, lead=None, by=None, automated=False, what=""
) -> Touch:
    return Touch.objects.create(
        customer_id=customer.pk,
        lead_id=getattr(lead, "pk", lead),
        channel=channel,
        purpose=purpose,
        at=at,
        by=by,
        automated=automated,
        what=what[:200],
    )


def channels_lawful(customer, *, at: dt.datetime, facts: Facts | None = None) -> list[str]:
    """The contact channels still open for marketing to this customer (deferrals count as open:
    they pass)."""
    facts = facts or facts_load([customer], at=at)[customer.pk]
    open_ = []
    for channel in CONTACT_CHANNELS:
        answer = decide(customer, facts, channel=channel, purpose="marketing", at=at)
        if not (answer.verdict == "deny" and answer.ends_channel):
            open_.append(channel)
    return open_


def contact_status(customer, *, at: dt.datetime) -> dict:
    """Per channel, for the pages: consent, opt-out and "may we now / next allowed at"."""
    facts = facts_load([customer], at=at)[customer.pk]
    zone = ZoneInfo(customer.time_zone or customer.rooftop.time_zone)
    status = {}
    for channel in CONTACT_CHANNELS:
        answer = decide(customer, facts, channel=channel, purpose="marketing", at=at)
        status[channel] = {
            "answer": answer,
            "until_local": answer.until.astimezone(zone) if answer.until else None,
            "consent": facts.consents.get((channel, "marketing")),
            "opted_out": channel in customer.opted_out,
            "suppressed": sorted(facts.suppressed),
            "on_registry": sorted(facts.on_registry) if channel != "email" else [],
        }
    return {"channels": status, "local_now": at.astimezone(zone), "ebr": ebr(facts, at), "facts": facts}

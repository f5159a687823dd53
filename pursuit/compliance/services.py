"""Consent, stops and the do-not-call lists: the writes behind the gate.

A stop is honoured at once (the law allows 10 business days; we allow none): by default on
every channel (the rooftop's `opt_out_everywhere`), with the customer's numbers and addresses
put on the dealer group's own list, and one confirmation message and nothing after it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import F, Max

from pursuit.compliance import keywords
from pursuit.compliance.gate import CONTACT_CHANNELS, Clearance, decision_record
from pursuit.compliance.models import Consent, RegistryCopy, RegistryNumber, Suppression
from pursuit.compliance.registry import registry_read
from pursuit.lib.contacts import email_normalise, phone_normalise

log = logging.getLogger(__name__)

UNSUBSCRIBE_SALT = "pursuit.unsubscribe"


def consent_record(
    *,
    customer,
    channel: str,
    granted: bool,
    source: str,
    evidence: str,
    at: dt.datetime,
    purpose: str = "marketing",
    written: bool = False,
    by=None,
    lead=None,
) -> Consent:
    if channel not in CONTACT_CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    return Consent.objects.create(
        customer=customer,
        channel=channel,
        purpose=purpose,
        granted=granted,
        written=written and granted,
        source=source,
        evidence=evidence[:2000],
        at=at,
        by=by,
        lead=lead,
    )


def consent_rows(
    *,
    customer,
    consents,
    at: dt.datetime,
    source: str = Consent.Source.LEAD,
    written: bool = False,
    by=None,
    lead=None,
) -> list[Consent]:
    """Unsaved ledger rows for a lead's consent statements (parsed from ADF comments, CSV
    columns, the API or the form). A provider's checkbox is kept as evidence but not as written
    consent: a lead alone is not consent to automatic marketing texts (compliance.md B.3)."""
    return [
        Consent(
            customer=customer,
            channel={"phone": "call", "sms": "text"}.get(c.channel, c.channel),
            purpose="marketing",
            granted=c.granted,
            written=written and c.granted,
            source=source,
            evidence=c.evidence[:2000],
            at=at,
            by=by,
            lead=lead,
        )
        for c in consents
        if {"phone": "call", "sms": "text"}.get(c.channel, c.channel) in CONTACT_CHANNELS
    ]


def consents_from_lead(
    *,
    customer,
    lead,
    consents,
    at: dt.datetime,
    source: str = Consent.Source.LEAD,
    written: bool = False,
    by=None,
) -> int:
    rows = consent_rows(
        customer=customer, consents=consents, at=at, source=source, written=written, by=by, lead=lead
    )
    Consent.objects.bulk_create(rows)
    return len(rows)


def suppress(
    *, group, kind: str, value: str, source: str, at: dt.datetime, note: str = "", customer=None, by=None
):
    """Put a number or address on the group's own do-not-contact list (idempotent)."""
    value = value.strip().lower() if kind == Suppression.Kind.EMAIL else value.strip()
    if not value:
        return None
    try:
        with transaction.atomic():
            return Suppression.objects.create(
                group=group,
                kind=kind,
                value=value,
                source=source[:40],
                note=note,
                customer=customer,
                by=by,
                at=at,
            )
    except IntegrityError:
        return Suppression.objects.get(group=group, kind=kind, value=value)


def stop_request(
    *, customer, channel: str, source: str, at: dt.datetime, note: str = "", by=None, lead=None
) -> list[str]:
    """The customer asked to stop (a STOP text, the unsubscribe link, a confirmed request, staff).
    Everywhere by default; only `channel` when the rooftop chose per-channel opt-outs. Returns
    the channels now stopped."""
    from pursuit.plans.services import customer_opt_out

    rooftop = customer.rooftop
    channels = list(CONTACT_CHANNELS) if rooftop.opt_out_everywhere else [channel]
    with transaction.atomic():
        for ch in channels:
            consent_record(
                customer=customer,
                channel=ch,
                granted=False,
                source=source,
                evidence=note or f"stop via {source}",
                at=at,
                by=by,
                lead=lead,
            )
        values = []
        if "call" in channels or "text" in channels:
            values += [(Suppression.Kind.PHONE, p.number) for p in customer.phones.all() if p.verified]
        if "email" in channels:
            values += [(Suppression.Kind.EMAIL, e.address) for e in customer.emails.all()]
        if rooftop.opt_out_everywhere:
            for kind, value in values:
                suppress(
                    group=rooftop.group,
                    kind=kind,
                    value=value,
                    source=source,
                    note=note,
                    customer=customer,
                    by=by,
                    at=at,
                )
        customer_opt_out(customer=customer, channel="all" if len(channels) > 1 else channel, now=at, by=by)
    return channels


def staff_do_not_contact(*, customer, at: dt.datetime, by, note: str = "") -> None:
    """A member of staff marks the customer "do not contact": every channel, every rooftop of the
    group, at once."""
    with transaction.atomic():
        for phone in customer.phones.all():
            if phone.verified:
                suppress(
                    group=customer.rooftop.group,
                    kind="phone",
                    value=phone.number,
                    source="staff",
                    note=note,
                    customer=customer,
                    by=by,
                    at=at,
                )
        for email in customer.emails.all():
            suppress(
                group=customer.rooftop.group,
                kind="email",
                value=email.address,
                source="staff",
                note=note,
                customer=customer,
                by=by,
                at=at,
            )
        from pursuit.plans.services import customer_stop

        customer_stop(customer=customer, reason="do-not-contact", now=at, by=by)


def _customer_by_number(rooftop, number: str):
    from pursuit.leads.models import CustomerPhone

    phone = (
        CustomerPhone.objects.filter(rooftop=rooftop, match_key=number, customer__merged_into__isnull=True)
        .select_related("customer__rooftop")
        # Two customers may share a number (a family phone): the one we last heard from.
        .annotate(last_lead=Max("customer__leads__created_at"))
        .order_by(F("last_lead").desc(nulls_last=True), "-customer_id")
        .first()
    )
    return phone.customer if phone else None


def _customers_by_number(rooftop, number: str) -> list:
    from pursuit.leads.models import Customer

    return list(
        Customer.objects.filter(
            rooftop__group=rooftop.group, phones__match_key=number, merged_into__isnull=True
        )
        .select_related("rooftop__group")
        .distinct()
    )


def text_received(*, rooftop, number: str, body: str, at: dt.datetime) -> str:
    """An inbound text, before anything else looks at it (compliance.md B.5). Handles the
    keywords and returns the one reply to send ("" for none); a text that only sounds like a stop
    is flagged for a person. The customer texting us is consent to answer them one to one."""

    phone = phone_normalise(number, region=rooftop.country or "US")
    if phone is None:
        return ""
    key = phone.match_key
    customer = _customer_by_number(rooftop, key)
    word = keywords.sms_keyword(body)
    if word == "help":
        return keywords.help_reply(rooftop.name, rooftop.phone or "", rooftop.website or rooftop.email)
    if customer is None:
        if word == "stop":  # a number we do not know: still never text it again
            suppress(group=rooftop.group, kind="phone", value=key, source="text STOP", note=body, at=at)
            return keywords.stop_confirmation(rooftop.name)
        return ""
    if word == "stop":
        # The number said stop: every customer who shares it (a family phone) stops with it.
        for sharer in _customers_by_number(rooftop, key):
            stop_request(customer=sharer, channel="text", source="text STOP", note=body, at=at)
        return keywords.stop_confirmation(rooftop.name)
    if word == "start":
        if "text" not in customer.opted_out and not customer.do_not_contact:
            return ""  # an ordinary "yes" in a conversation
        text_resume(customer=customer, number=key, at=at, evidence=body)
        return keywords.start_confirmation(rooftop.name)
    consent_record(
        customer=customer,
        channel="text",
        purpose="transactional",
        granted=True,
        source=Consent.Source.INBOUND_TEXT,
        evidence=body,
        at=at,
    )
    phrase = keywords.sounds_like_stop(body)
    if phrase:
        possible_stop_flag(customer=customer, channel="text", phrase=phrase, text=body, at=at)
    return ""


def text_resume(*, customer, number: str, at: dt.datetime, evidence: str) -> None:
    """START after a STOP: texts may resume (the reply is written consent to texts); the other
    channels stay as they are."""
    from pursuit.leads.models import Customer

    with transaction.atomic():
        Suppression.objects.filter(group=customer.rooftop.group, kind="phone", value=number).delete()
        customer = Customer.objects.select_for_update().get(pk=customer.pk)
        others = [c for c in CONTACT_CHANNELS if c != "text"]
        if customer.do_not_contact:
            customer.do_not_contact = False
            customer.opted_out = others
        else:
            customer.opted_out = [c for c in customer.opted_out if c != "text"]
        customer.save(update_fields=["do_not_contact", "opted_out"])
        consent_record(
            customer=customer,
            channel="text",
            granted=True,
            written=True,
            source=Consent.Source.KEYWORD,
            evidence=evidence,
            at=at,
        )


def possible_stop_flag(*, customer, channel: str, phrase: str, text: str, at: dt.datetime, lead=None) -> None:
    """Words that may be a request to stop: a person must confirm it (and until they do, the
    automatic steps are held by the reply itself)."""
    from pursuit.leads.models import Lead
    from pursuit.work.services import notify

    lead = lead or Lead.objects.filter(customer=customer).order_by("-created_at").first()
    decision_record(
        customer,
        Clearance(
            "flag", "possible-stop", f"the customer wrote “{phrase}”: confirm whether they asked us to stop"
        ),
        channel=channel,
        purpose="marketing",
        at=at,
        lead=lead,
    )
    if lead is not None and lead.owner is not None:
        notify(
            user=lead.owner,
            lead=lead,
            kind="possible-stop",
            text=f"{customer}: “{phrase}” in a {channel} reply. Did they ask us to stop? Confirm on the lead.",
            now=at,
        )


def email_reply_check(*, lead, text: str, at: dt.datetime) -> str:
    """An email reply: flag plain-language stop requests for a person (quoted text ignored)."""
    phrase = keywords.sounds_like_stop(text)
    if phrase:
        possible_stop_flag(
            customer=lead.customer, channel="email", phrase=phrase, text=text, at=at, lead=lead
        )
    return phrase


# --------------------------------------------------------------------------- unsubscribe link


def unsubscribe_token(customer, address: str) -> str:
    return signing.dumps(
        {"c": customer.pk, "e": email_normalise(address)}, salt=UNSUBSCRIBE_SALT, compress=True
    )


def unsubscribe_read(token: str) -> tuple[int, str] | None:
    """(customer id, address) of a link; None for a link that was not ours. Links never expire:
    CAN-SPAM wants them to work for at least 30 days, CASL 60."""
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None
    return data.get("c"), data.get("e", "")


def unsubscribe(*, token: str, at: dt.datetime) -> object | None:
    """The one-click unsubscribe (RFC 8058): no login, honoured at once. Returns the customer."""
    from pursuit.leads.models import Customer

    read = unsubscribe_read(token)
    if read is None:
        return None
    customer = Customer.objects.select_related("rooftop__group").filter(pk=read[0]).first()
    if customer is None:
        return None
    if "email" not in customer.opted_out and not customer.do_not_contact:
        stop_request(
            customer=customer,
            channel="email",
            source="unsubscribe link",
            note=f"unsubscribed {read[1]}",
            at=at,
        )
        suppress(
            group=customer.rooftop.group,
            kind="email",
            value=read[1],
            source="unsubscribe link",
            customer=customer,
            at=at,
        )
    return customer


# --------------------------------------------------------------------------- national registry


def registry_import(
    *,
    lines: Iterable[str],
    copied_on: dt.date,
    at: dt.datetime,
    country: str = "US",
    file_name: str = "",
    by=None,
    chunk: int = 10_000,
) -> tuple[RegistryCopy, list[tuple[int, str]]]:
    """Replace the country's registry with this copy (format: `pursuit.compliance.registry`).
    Returns the copy and the lines that were not numbers (kept out, reported)."""
    problems: list[tuple[int, str]] = []
    with transaction.atomic():
        copy = RegistryCopy.objects.create(
            country=country, copied_on=copied_on, imported_at=at, file_name=file_name[:200], by=by
        )
        RegistryNumber.objects.filter(copy__country=country).delete()
        batch: list[RegistryNumber] = []
        count = 0
        for line, number, problem in registry_read(lines):
            if number is None:
                if problem and len(problems) < 1000:
                    problems.append((line, problem))
                continue
            batch.append(RegistryNumber(number=number, copy=copy))
            if len(batch) >= chunk:
                RegistryNumber.objects.bulk_create(batch, ignore_conflicts=True)
                count += len(batch)
                batch = []
        RegistryNumber.objects.bulk_create(batch, ignore_conflicts=True)
        count += len(batch)
        copy.numbers = RegistryNumber.objects.filter(copy=copy).count() if count else 0
        copy.save(update_fields=["numbers"])
    return copy, problems


# --------------------------------------------------------------------------- the pages' writes


class ComplianceError(ValueError):
    """A change the compliance pages refuse, in words a person can act on."""


# The rooftop settings a manager edits on the compliance page, and their bounds. The 24-hour cap
# stops at 3: Florida, Oklahoma and Maryland allow no more sales calls and texts than that in any
# 24 hours, and the rule table applies 3 nationally, so a higher number would only mislead.
ROOFTOP_CAPS = {
    "cap_calls_texts_24h": (1, 3),
    "cap_touches_day": (1, 20),
    "cap_touches_week": (1, 100),
}
ROOFTOP_FLAGS = ("texas_registered", "opt_out_everywhere")


def rooftop_caps_save(*, rooftop, by, at: dt.datetime, **values) -> list[str]:
    """Save the rooftop's frequency caps and compliance flags (any of ROOFTOP_CAPS and
    ROOFTOP_FLAGS). The gate reads them at each decision, so a change binds the next touch.
    Returns the names of the fields that changed; raises ComplianceError for a value out of
    bounds (the form says the same first) and ValueError for an unknown field."""
    unknown = set(values) - set(ROOFTOP_CAPS) - set(ROOFTOP_FLAGS)
    if unknown:
        raise ValueError(f"not a compliance setting: {', '.join(sorted(unknown))}")
    for name, (low, high) in ROOFTOP_CAPS.items():
        value = values.get(name, getattr(rooftop, name))
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ComplianceError(f"{name} must be a whole number from {low} to {high}, not {value!r}")
    day = values.get("cap_touches_day", rooftop.cap_touches_day)
    if values.get("cap_touches_week", rooftop.cap_touches_week) < day:
        raise ComplianceError("the weekly cap cannot be lower than the daily cap")
    changed = [name for name, value in values.items() if getattr(rooftop, name) != value]
    if not changed:
        return []
    for name in changed:
        setattr(rooftop, name, values[name] if name in ROOFTOP_CAPS else bool(values[name]))
    rooftop.save(update_fields=changed)
    log.info(
        "rooftop %s: %s changed by %s at %s",
        rooftop.pk,
        ", ".join(f"{name}={getattr(rooftop, name)}" for name in changed),
        getattr(by, "username", by),
        at.isoformat(),
    )
    return changed


class RegistryFileError(ComplianceError):
    def __init__(self, message: str, problems: list[tuple[int, str]] | None = None):
        super().__init__(message)
        self.problems = problems or []


def registry_file_import(
    *,
    lines: Iterable[str],
    copied_on: dt.date,
    at: dt.datetime,
    today: dt.date,
    country: str = "US",
    file_name: str = "",
    by=None,
) -> tuple[RegistryCopy, list[tuple[int, str]]]:
    """`registry_import` for a file a person chose (the admin page, `pursuit import-dnc`): the
    copy's date may not be in the future, and a file with no number in it is refused and changes
    nothing, because importing it would empty the registry (the wrong file chosen, say). `lines`
    is read once, lazily. Returns the copy and the bad lines (the first 1000, with their line
    numbers); raises RegistryFileError, with the bad lines, when nothing was imported."""
    country = country.strip().upper()
    if country not in ("US", "CA"):
        raise RegistryFileError(f"the country is US or CA, not {country!r}")
    if copied_on > today:
        raise RegistryFileError(f"the copy's date {copied_on:%Y-%m-%d} is in the future")
    with transaction.atomic():
        copy, problems = registry_import(
            lines=lines, copied_on=copied_on, at=at, country=country, file_name=file_name, by=by
        )
        if copy.numbers == 0:
            # Raising inside the block undoes the import: the registry keeps the numbers it had.
            bad = f" ({len(problems)} bad line{'s' if len(problems) != 1 else ''})" if problems else ""
            raise RegistryFileError(
                f"the file has no telephone number in it{bad}: nothing was imported and the registry "
                "is unchanged",
                problems,
            )
    return copy, problems

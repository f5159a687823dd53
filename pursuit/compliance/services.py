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
        stop_request(customer=customer, channel="text", source="text STOP", note=body, at=at)
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

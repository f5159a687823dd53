"""Intake: every payload is stored raw, then parsed; every prospect becomes one customer with
one open lead, an owner, an automatic first answer and a speed-to-lead ladder.

Every channel (ADF over HTTP, ADF in email, JSON, the new-lead form, file imports) goes through
`payload_store` then `payload_process`, and each prospect through `lead_intake`, so duplicates,
assignment and scheduling behave the same whatever the channel.

Concurrency: `lead_intake` locks the rooftop row for its transaction. Two processes receiving
leads for one rooftop therefore take turns (each turn is a few milliseconds), and two copies of
one inquiry arriving at once cannot both create a customer. The database also refuses a second
open lead for a customer (a partial unique constraint) as a last line of defence.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

from django.db import transaction
from django.db.models import Q

from pursuit.intake import adf
from pursuit.intake.assignment import owner_choose
from pursuit.intake.csv_parse import iter_csv
from pursuit.intake.email_parse import parse_email
from pursuit.intake.json_parse import parse_json
from pursuit.intake.models import LeadSource, Payload
from pursuit.intake.parsed import ParsedDocument, ParsedProspect, ParsedVehicle, PayloadError
from pursuit.leads.models import Customer, CustomerEmail, CustomerPhone, Lead, LeadEvent, Vehicle
from pursuit.lib.contacts import Phone, email_normalise, phone_normalise, phone_time_zone
from pursuit.lib.zones import region_time_zone
from pursuit.org.models import Role, Rooftop, User
from pursuit.work.services import job_schedule, notify

log = logging.getLogger(__name__)

Channel = Payload.Channel
LIVE_CHANNELS = (Channel.ADF_HTTP, Channel.EMAIL_HTTP, Channel.JSON_API, Channel.FORM)


@dataclass
class IntakeResult:
    lead: int
    customer: int
    matched: bool  # the customer already existed
    status: str  # "created" | "re-inquiry"
    resent: bool = False  # the provider sent the same lead again (no new signal)

    def as_api(self) -> dict:
        return {"lead": self.lead, "customer": self.customer, "matched": self.matched, "status": self.status}


class IntakeError(Exception):
    """A payload that failed for a reason that is not its own fault (a bug, the database). The
    payload is kept as failed with the reason and can be re-processed."""


# --------------------------------------------------------------------------- payloads


def payload_store(*, rooftop: Rooftop, channel: str, content: bytes, now: dt.datetime,
                  source: LeadSource | None = None, content_type: str = "", name: str = "") -> Payload:
    """Store a payload exactly as received, committed before anything parses it."""
    with transaction.atomic():
        return Payload.objects.create(rooftop=rooftop, source=source, channel=channel, content=content,
                                      content_type=content_type[:100], name=name[:300], received_at=now)


def _parse(payload: Payload) -> ParsedDocument:
    raw = bytes(payload.content)
    if payload.channel in (Channel.ADF_HTTP, Channel.IMPORT_XML):
        return adf.parse(raw)
    if payload.channel in (Channel.EMAIL_HTTP, Channel.IMPORT_EML):
        return parse_email(raw)
    if payload.channel in (Channel.JSON_API, Channel.FORM):
        return ParsedDocument(prospects=[parse_json(raw, issuer=f"source:{payload.source_id or 'form'}")])
    if payload.channel == Channel.IMPORT_CSV:
        rows = list(iter_csv(io.StringIO(adf.decode_bytes(raw)[0])))
        if len(rows) != 1:
            raise PayloadError(f"a CSV payload re-processed on its own must hold one row, not {len(rows)}")
        row, prospect = rows[0]
        if isinstance(prospect, PayloadError):
            raise prospect
        return ParsedDocument(prospects=[prospect])
    raise PayloadError(f"unknown channel {payload.channel!r}")


def _fail(payload: Payload, reason: str, now: dt.datetime) -> None:
    Payload.objects.filter(pk=payload.pk).update(status=Payload.Status.FAILED, reason=reason, processed_at=now,
                                                 attempts=payload.attempts + 1)
    payload.status, payload.reason = Payload.Status.FAILED, reason


def payload_process(*, payload: Payload, now: dt.datetime, fresh: bool | None = None) -> list[IntakeResult]:
    """Parse a stored payload and take in each prospect.

    `fresh` (default: true for live channels) schedules the automatic answer and the ladder;
    imports of old leads are historical and schedule nothing.

    Raises `PayloadError` (the payload's own fault: kept as failed with the reason) or
    `IntakeError` (anything else: kept as failed too). Never loses the payload.
    """
    if fresh is None:
        fresh = payload.channel in LIVE_CHANNELS
    try:
        document = _parse(payload)
    except PayloadError as exc:
        _fail(payload, str(exc), now)
        raise
    except Exception as exc:  # a parser bug must not lose the payload either
        log.exception("payload %s: parser failed", payload.pk)
        _fail(payload, f"could not be read ({type(exc).__name__}: {exc}); kept for re-processing", now)
        raise IntakeError(payload.reason) from exc

    results: list[IntakeResult] = []
    problems: list[str] = []
    many = len(document.prospects) > 1
    for index, prospect in enumerate(document.prospects, start=1):
        prefix = f"prospect {index}: " if many else ""
        if not prospect.has_customer:
            problems.append(prefix + "no customer: the lead names no person to follow up")
            continue
        try:
            results.append(lead_intake(rooftop=payload.rooftop, prospect=prospect, now=now, payload=payload,
                                       source=payload.source, fresh=fresh))
        except PayloadError as exc:
            problems.append(prefix + str(exc))
        except Exception as exc:
            log.exception("payload %s: intake failed", payload.pk)
            _fail(payload, f"{prefix}intake failed ({type(exc).__name__}: {exc}); kept for re-processing", now)
            raise IntakeError(payload.reason) from exc
    if not results:
        reason = "; ".join(problems) or "no prospect could be taken in"
        _fail(payload, reason, now)
        raise PayloadError(reason)
    Payload.objects.filter(pk=payload.pk).update(
        status=Payload.Status.PROCESSED, reason="", processed_at=now, attempts=payload.attempts + 1,
        result=[asdict(r) for r in results], warnings=document.warnings + problems,
    )
    payload.status = Payload.Status.PROCESSED
    return results


def payload_receive(*, rooftop: Rooftop, channel: str, content: bytes, now: dt.datetime,
                    source: LeadSource | None = None, content_type: str = "", name: str = "",
                    fresh: bool | None = None) -> tuple[Payload, list[IntakeResult]]:
    """Store, then process. Raises like `payload_process`; the payload is stored either way."""
    payload = payload_store(rooftop=rooftop, channel=channel, content=content, now=now, source=source,
                            content_type=content_type, name=name)
    return payload, payload_process(payload=payload, now=now, fresh=fresh)


def payload_reprocess(*, payload: Payload, now: dt.datetime) -> list[IntakeResult]:
    """Process a failed payload again (an admin fixed a setting, or the parser learned a quirk)."""
    if payload.status == Payload.Status.PROCESSED:
        raise PayloadError("this payload was already processed")
    return payload_process(payload=payload, now=now)


def csv_import(*, payload: Payload, now: dt.datetime, fresh: bool = False, batch: int = 500,
               progress: Callable[[int], None] | None = None) -> dict:
    """Import a stored CSV file row by row.

    Rows are taken in in batches of `batch` per transaction (one transaction per row is ten times
    slower on SQLite). A bad row is stored as its own failed payload (the header and that row),
    so an admin sees the reason and can re-process it once fixed; the import goes on.
    Returns counts: created, re-inquiry, failed.
    """
    text = adf.decode_bytes(bytes(payload.content))[0]
    header = text.splitlines()[0] if text else ""
    counts = {"created": 0, "re-inquiry": 0, "failed": 0}
    rows = iter_csv(io.StringIO(text))
    done = False
    while not done:
        with transaction.atomic():
            for _ in range(batch):
                item = next(rows, None)
                if item is None:
                    done = True
                    break
                row, prospect = item
                reason = None
                if isinstance(prospect, PayloadError) and row == 1:
                    # The header itself is wrong: the file as a whole is kept as failed.
                    _fail(payload, prospect.reason, now)
                    raise prospect
                if isinstance(prospect, PayloadError):
                    reason = prospect.reason
                else:
                    try:
                        with transaction.atomic():
                            result = lead_intake(rooftop=payload.rooftop, prospect=prospect, now=now,
                                                 payload=payload, source=payload.source, fresh=fresh)
                        counts[result.status] += 1
                    except PayloadError as exc:
                        reason = f"row {row}: {exc.reason}"
                if reason is not None:
                    counts["failed"] += 1
                    Payload.objects.create(
                        rooftop=payload.rooftop, source=payload.source, channel=Channel.IMPORT_CSV,
                        content=_csv_row_bytes(header, text, row), content_type="text/csv",
                        name=f"{payload.name} row {row}"[:300], received_at=now, status=Payload.Status.FAILED,
                        reason=reason, processed_at=now, attempts=1,
                    )
                if progress:
                    progress(1)
    Payload.objects.filter(pk=payload.pk).update(status=Payload.Status.PROCESSED, processed_at=now,
                                                 attempts=payload.attempts + 1, result=[counts])
    return counts


def _csv_row_bytes(header: str, text: str, row: int) -> bytes:
    """The header and data row `row` (1-based, as iter_csv counts) as a CSV of its own."""
    reader = csv.reader(io.StringIO(text))
    records = list(_nth_records(reader, row))
    out = io.StringIO()
    writer = csv.writer(out)
    for record in records:
        writer.writerow(record)
    return (out.getvalue() if records else header + "\n").encode()


def _nth_records(reader: Iterable[list[str]], row: int) -> Iterable[list[str]]:
    for index, record in enumerate(reader):
        if index == 0:
            yield record
        elif index == row - 1:  # rows count like a spreadsheet's: the header is row 1
            yield record
            return


# --------------------------------------------------------------------------- prospects -> leads


@dataclass
class _Contacts:
    emails: list[str]
    phones: list[tuple[Phone, str, bool]]  # (phone, type, preferred)


def _contacts(prospect: ParsedProspect, region: str) -> _Contacts:
    emails: list[str] = []
    for raw in prospect.emails:
        address = email_normalise(raw)
        if address and address not in emails:
            emails.append(address)
    phones: list[tuple[Phone, str, bool]] = []
    seen: set[str] = set()
    for p in prospect.phones:
        phone = phone_normalise(p.number, region=region)
        if phone and phone.match_key not in seen:
            seen.add(phone.match_key)
            phones.append((phone, p.type, p.preferred))
    return _Contacts(emails, phones)


def _norm_name(name: str) -> str:
    return " ".join(name.lower().split())


def customer_match(*, rooftop: Rooftop, prospect: ParsedProspect, contacts: _Contacts) -> Customer | None:
    """The existing customer this prospect is, or None.

    Same email, or same valid phone number: the same customer. A number that is not valid
    (kept as written) matches only together with the same full name: placeholder numbers such
    as 555-123-4567 are shared by strangers. Provider ids are never used alone (some providers
    reuse them). Of several candidates, the one with an open lead wins, then the most recent.
    """
    by_contact = Q()
    if contacts.emails:
        by_contact |= Q(emails__rooftop=rooftop, emails__address__in=contacts.emails)
    verified = [p.match_key for p, _, _ in contacts.phones if p.verified]
    if verified:
        by_contact |= Q(phones__rooftop=rooftop, phones__verified=True, phones__match_key__in=verified)
    candidates: list[Customer] = []
    if by_contact:
        candidates = list(Customer.objects.filter(by_contact, rooftop=rooftop, merged_into__isnull=True).distinct())
    unverified = [p.match_key for p, _, _ in contacts.phones if not p.verified]
    if unverified and prospect.full_name:
        wanted = _norm_name(prospect.full_name)
        for customer in Customer.objects.filter(
            rooftop=rooftop, merged_into__isnull=True, phones__rooftop=rooftop, phones__verified=False,
            phones__match_key__in=unverified,
        ).distinct():
            if _norm_name(customer.full_name) == wanted and customer not in candidates:
                candidates.append(customer)
    if not candidates:
        return None
    open_ids = set(
        Lead.objects.filter(customer__in=candidates, status__in=Lead.OPEN_STATUSES).values_list("customer_id", flat=True)
    )
    return max(candidates, key=lambda c: (c.pk in open_ids, c.created_at, c.pk))


def _customer_time_zone(customer: Customer, phones: list[Phone]) -> str:
    zone = region_time_zone(customer.region, customer.country) if customer.region else ""
    if zone:
        return zone
    for phone in phones:
        if phone.verified:
            zone = phone_time_zone(phone.number)
            if zone:
                return zone
    return ""


def _customer_update(customer: Customer, prospect: ParsedProspect, contacts: _Contacts, rooftop: Rooftop) -> None:
    """Add what the new inquiry tells us: new emails and phones, blanks filled (never overwrite
    what staff may have corrected)."""
    changed = []
    for field in ("first_name", "middle_name", "last_name", "preferred_contact"):
        value = getattr(prospect, field)
        if value and not getattr(customer, field):
            setattr(customer, field, value[:100])
            changed.append(field)
    if prospect.address and not prospect.address.is_empty() and not customer.street and not customer.city:
        _address_set(customer, prospect)
        changed += ["street", "apartment", "city", "region", "postal_code", "country"]
    have_emails = set(customer.emails.values_list("address", flat=True))
    CustomerEmail.objects.bulk_create(
        CustomerEmail(customer=customer, rooftop=rooftop, address=a) for a in contacts.emails if a not in have_emails
    )
    have_phones = set(customer.phones.values_list("match_key", flat=True))
    _phones_add(customer, rooftop, [p for p in contacts.phones if p[0].match_key not in have_phones])
    if not customer.time_zone:
        customer.time_zone = _customer_time_zone(customer, [p for p, _, _ in contacts.phones])
        if customer.time_zone:
            changed.append("time_zone")
    if changed:
        customer.save(update_fields=changed)


def _address_set(customer: Customer, prospect: ParsedProspect) -> None:
    a = prospect.address
    customer.street, customer.apartment, customer.city = a.street[:200], a.apartment[:100], a.city[:100]
    customer.region, customer.postal_code, customer.country = a.region[:64], a.postal_code[:20], a.country[:64]


def _phones_add(customer: Customer, rooftop: Rooftop, phones: list[tuple[Phone, str, bool]]) -> None:
    CustomerPhone.objects.bulk_create(
        CustomerPhone(customer=customer, rooftop=rooftop, number=p.number, match_key=p.match_key,
                      verified=p.verified, type=kind, preferred=preferred)
        for p, kind, preferred in phones
    )


def _customer_create(rooftop: Rooftop, prospect: ParsedProspect, contacts: _Contacts, now: dt.datetime) -> Customer:
    customer = Customer(rooftop=rooftop, first_name=prospect.first_name[:100], middle_name=prospect.middle_name[:100],
                        last_name=prospect.last_name[:100], preferred_contact=prospect.preferred_contact,
                        created_at=now)
    if prospect.address and not prospect.address.is_empty():
        _address_set(customer, prospect)
    customer.time_zone = _customer_time_zone(customer, [p for p, _, _ in contacts.phones])
    customer.save()
    CustomerEmail.objects.bulk_create(CustomerEmail(customer=customer, rooftop=rooftop, address=a)
                                      for a in contacts.emails)
    _phones_add(customer, rooftop, contacts.phones)
    return customer


def _vehicle_row(lead: Lead, v: ParsedVehicle, role: str) -> Vehicle:
    return Vehicle(lead=lead, role=role, condition=v.status if v.status in ("new", "used") else "",
                   year=v.year, make=v.make[:60], model=v.model[:100], trim=v.trim[:200], vin=v.vin[:20],
                   stock=v.stock[:40], price=v.price, odometer=v.odometer, odometer_units=v.odometer_units[:4])


def _same_vehicle(existing: Vehicle, v: ParsedVehicle) -> bool:
    if existing.vin and v.vin:
        return existing.vin.upper() == v.vin.upper()
    return (existing.year, existing.make.lower(), existing.model.lower()) == (v.year, v.make.lower(), v.model.lower())


def _source_for(rooftop: Rooftop, source: LeadSource | None, prospect: ParsedProspect) -> LeadSource | None:
    """The channel's own source (a token), else the source the payload names, kept by name."""
    if source is not None:
        return source
    name = (prospect.source_name or prospect.provider_name).strip()[:100]
    if not name:
        return None
    found = LeadSource.objects.filter(rooftop=rooftop, name__iexact=name).first()
    if found is None:
        found = LeadSource.objects.create(rooftop=rooftop, name=name, lead_type=prospect.lead_type)
    return found


def _comments(prospect: ParsedProspect) -> str:
    parts = [prospect.comments.strip()] if prospect.comments.strip() else []
    for v in prospect.vehicles + prospect.trade_ins:
        if v.comments.strip() and v.comments.strip() not in parts:
            parts.append(v.comments.strip())
    return "\n".join(parts)


def _arrival_data(prospect: ParsedProspect, payload: Payload | None) -> dict:
    return {
        "payload": payload.pk if payload else None,
        "channel": payload.channel if payload else "",
        "provider": prospect.provider_name,
        "consents": [{"channel": c.channel, "granted": c.granted, "evidence": c.evidence} for c in prospect.consents],
        "vehicles": [v.describe() for v in prospect.vehicles],
        "comments": _comments(prospect),
    }


def lead_intake(*, rooftop: Rooftop, prospect: ParsedProspect, now: dt.datetime, payload: Payload | None = None,
                source: LeadSource | None = None, fresh: bool = True, actor: User | None = None) -> IntakeResult:
    """Take in one prospect: find or create the customer, then either record a re-inquiry on
    the customer's open lead, or create a lead, assign it and (when `fresh`) schedule the
    automatic first answer and the speed-to-lead ladder. One transaction."""
    with transaction.atomic():
        # Serialises intake per rooftop: see the module docstring.
        list(Rooftop.objects.select_for_update().filter(pk=rooftop.pk).values_list("pk", flat=True))
        contacts = _contacts(prospect, rooftop.country)
        customer = customer_match(rooftop=rooftop, prospect=prospect, contacts=contacts)
        matched = customer is not None
        if customer is None:
            customer = _customer_create(rooftop, prospect, contacts, now)
        else:
            _customer_update(customer, prospect, contacts, rooftop)
        source = _source_for(rooftop, source, prospect)
        external_ids = [list(pair) for pair in prospect.external_ids]

        open_lead = (
            Lead.objects.select_for_update(of=("self",))
            .filter(customer=customer, status__in=Lead.OPEN_STATUSES)
            .select_related("owner")
            .first()
        )
        if open_lead is not None:
            return _reinquiry(open_lead, prospect, payload, source, external_ids, now, actor)

        lead = Lead.objects.create(
            rooftop=rooftop, customer=customer, source=source, payload=payload,
            type=prospect.lead_type, comments=_comments(prospect), timeframe=prospect.timeframe[:200],
            provider=prospect.provider_name[:200], external_ids=external_ids,
            received_at=prospect.requested_at or now, created_at=now,
        )
        Vehicle.objects.bulk_create(
            [_vehicle_row(lead, v, Vehicle.Role.INTEREST) for v in prospect.vehicles]
            + [_vehicle_row(lead, v, Vehicle.Role.TRADE) for v in prospect.trade_ins]
        )
        events = [LeadEvent(lead=lead, kind=LeadEvent.Kind.ARRIVED, at=now, actor=actor,
                            text=f"{lead.get_type_display()} lead" + (f" from {source.name}" if source else ""),
                            data=_arrival_data(prospect, payload))]
        if not (contacts.emails or contacts.phones):
            lead.flags = ["no-contact"]
            events.append(LeadEvent(lead=lead, kind=LeadEvent.Kind.FLAGGED, at=now,
                                    text="No phone or email: find another way to reach this customer",
                                    data={"flag": "no-contact"}))
        LeadEvent.objects.bulk_create(events)
        lead_assign_new(lead=lead, now=now)
        if lead.flags:
            Lead.objects.filter(pk=lead.pk).update(flags=lead.flags)
        if fresh:
            _schedule_speed_to_lead(lead, contacts, now)
        return IntakeResult(lead=lead.pk, customer=customer.pk, matched=matched, status="created")


def _reinquiry(lead: Lead, prospect: ParsedProspect, payload: Payload | None, source: LeadSource | None,
               external_ids: list[list[str]], now: dt.datetime, actor: User | None) -> IntakeResult:
    """The customer asked again while a lead is open: a hot signal on that lead, not a new one.

    A provider resending the same lead (status="resend", or an id this lead already has) is
    recorded but not announced: it says nothing new about the customer.
    """
    resent = prospect.status == "resend" or any(pair in lead.external_ids for pair in external_ids)
    new_ids = [pair for pair in external_ids if pair not in lead.external_ids]
    if new_ids:
        lead.external_ids = lead.external_ids + new_ids
        Lead.objects.filter(pk=lead.pk).update(external_ids=lead.external_ids)
    existing = list(lead.vehicles.all())
    added = [v for v in prospect.vehicles if not any(_same_vehicle(e, v) for e in existing)]
    Vehicle.objects.bulk_create(_vehicle_row(lead, v, Vehicle.Role.INTEREST) for v in added)
    data = _arrival_data(prospect, payload) | {"source": source.name if source else ""}
    if resent:
        LeadEvent.objects.create(lead=lead, kind=LeadEvent.Kind.RESENT, at=now, actor=actor, data=data,
                                 text="The provider sent this lead again")
    else:
        about = ", ".join(v.describe() for v in prospect.vehicles if v.describe()) or "their inquiry"
        text = f"{lead.customer} asked again about {about}" + (f" via {source.name}" if source else "")
        LeadEvent.objects.create(lead=lead, kind=LeadEvent.Kind.REINQUIRY, at=now, actor=actor, text=text, data=data)
        recipients = [lead.owner] if lead.owner and lead.owner.is_active else _managers(lead.rooftop)
        for user in recipients:
            notify(user=user, lead=lead, kind="re-inquiry", text=f"Hot: {text}", now=now)
    return IntakeResult(lead=lead.pk, customer=lead.customer_id, matched=True, status="re-inquiry", resent=resent)


def _managers(rooftop: Rooftop) -> list[User]:
    return list(User.objects.filter(rooftop=rooftop, role__in=(Role.MANAGER, Role.ADMIN), is_active=True))


def lead_assign_new(*, lead: Lead, now: dt.datetime) -> User | None:
    """Give a new lead its owner, record it on the timeline and tell the owner."""
    owner, why = owner_choose(rooftop=lead.rooftop, lead_type=lead.type, source_id=lead.source_id,
                              customer=lead.customer, now=now)
    if owner is None:
        lead.flags = [*lead.flags, "unassigned"]
        LeadEvent.objects.create(lead=lead, kind=LeadEvent.Kind.FLAGGED, at=now, data={"flag": "unassigned"},
                                 text="Nobody on duty to take this lead: a manager must assign it")
        for manager in _managers(lead.rooftop):
            notify(user=manager, lead=lead, kind="unassigned", now=now,
                   text=f"New lead from {lead.customer} has no owner: nobody is on duty")
        return None
    Lead.objects.filter(pk=lead.pk).update(owner=owner, assigned_at=now)
    lead.owner, lead.assigned_at = owner, now
    LeadEvent.objects.create(lead=lead, kind=LeadEvent.Kind.ASSIGNED, at=now, text=f"Assigned to {owner.display_name}",
                             data={"owner": owner.pk, "why": why})
    notify(user=owner, lead=lead, kind="assigned", now=now, text=f"New lead: {lead.customer} is yours ({why})")
    return owner


def _schedule_speed_to_lead(lead: Lead, contacts: _Contacts, now: dt.datetime) -> None:
    rooftop = lead.rooftop
    if contacts.emails:
        # The customer asked: the first answer goes at any hour, never held for business hours.
        job_schedule(kind="auto-response", due_at=now, now=now, lead=lead, key=f"auto-response:{lead.pk}",
                     priority=0)
    else:
        # Text answers come with the compliance gate (issue 4); until then only email answers.
        LeadEvent.objects.create(lead=lead, kind=LeadEvent.Kind.AUTO_RESPONSE_SKIPPED, at=now,
                                 text="No automatic answer: the customer gave no email address")
    if lead.owner_id is None:
        # Nobody to remind or hand off from: the managers were told at once.
        return
    rungs = [("ladder-remind", rooftop.remind_owner_after)]
    if rooftop.handoff_enabled:
        rungs.append(("ladder-handoff", rooftop.handoff_after))
    rungs.append(("ladder-escalate", rooftop.manager_after))
    for kind, minutes in rungs:
        job_schedule(kind=kind, due_at=now + dt.timedelta(minutes=minutes), now=now, lead=lead,
                     key=f"{kind}:{lead.pk}")

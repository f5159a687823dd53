"""Intake: every payload is stored raw, then parsed; every prospect becomes one customer with
one open lead, an owner, an automatic first answer and a speed-to-lead ladder.

Every channel (ADF over HTTP, ADF in email, JSON, the new-lead form, file imports) goes through
`payload_store` then `payload_process`, and each prospect through `lead_intake`, so duplicates,
assignment and scheduling behave the same whatever the channel.

Concurrency: `lead_intake` locks the rooftop row for its transaction (FOR NO KEY UPDATE: it
excludes other intakes but not the foreign-key checks PostgreSQL makes when any other row that
points at the rooftop is committed, which FOR UPDATE would hold up). Two processes receiving
leads for one rooftop therefore take turns (each turn is a few milliseconds), and two copies of
one inquiry arriving at once cannot both create a customer. The database also refuses a second
open lead for a customer (a partial unique constraint) as a last line of defence.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass

from django.db import transaction

from pursuit.compliance.models import Consent
from pursuit.compliance.services import consent_rows, consents_from_lead
from pursuit.intake import adf
from pursuit.intake.assignment import BatchAssigner, owner_choose
from pursuit.intake.csv_parse import iter_csv
from pursuit.intake.email_parse import parse_email
from pursuit.intake.json_parse import parse_json
from pursuit.intake.models import LeadSource, Payload
from pursuit.intake.parsed import ParsedDocument, ParsedProspect, ParsedVehicle, PayloadError
from pursuit.leads.models import Customer, CustomerEmail, CustomerPhone, Lead, LeadEvent, Vehicle
from pursuit.lib.contacts import Phone, email_normalise, phone_normalise, phone_time_zone
from pursuit.lib.zones import region_time_zone
from pursuit.org.models import Role, Rooftop, User
from pursuit.plans import services as plans
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


def payload_store(
    *,
    rooftop: Rooftop,
    channel: str,
    content: bytes,
    now: dt.datetime,
    source: LeadSource | None = None,
    content_type: str = "",
    name: str = "",
) -> Payload:
    """Store a payload exactly as received, committed before anything parses it."""
    with transaction.atomic():
        return Payload.objects.create(
            rooftop=rooftop,
            source=source,
            channel=channel,
            content=content,
            content_type=content_type[:100],
            name=name[:300],
            received_at=now,
        )


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
    Payload.objects.filter(pk=payload.pk).update(
        status=Payload.Status.FAILED, reason=reason, processed_at=now, attempts=payload.attempts + 1
    )
    payload.status, payload.reason = Payload.Status.FAILED, reason


def payload_process(
    *, payload: Payload, now: dt.datetime, fresh: bool | None = None, actor: User | None = None
) -> list[IntakeResult]:
    """Parse a stored payload and take in each prospect.

    `fresh` (default: true for live channels) schedules the automatic answer and the ladder;
    imports of old leads are historical and schedule nothing. `actor`: the member of staff who
    entered the lead in the app (they own it).

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
            results.append(
                lead_intake(
                    rooftop=payload.rooftop,
                    prospect=prospect,
                    now=now,
                    payload=payload,
                    source=payload.source,
                    fresh=fresh,
                    actor=actor,
                )
            )
        except PayloadError as exc:
            problems.append(prefix + str(exc))
        except Exception as exc:
            log.exception("payload %s: intake failed", payload.pk)
            _fail(
                payload, f"{prefix}intake failed ({type(exc).__name__}: {exc}); kept for re-processing", now
            )
            raise IntakeError(payload.reason) from exc
    if not results:
        reason = "; ".join(problems) or "no prospect could be taken in"
        _fail(payload, reason, now)
        raise PayloadError(reason)
    Payload.objects.filter(pk=payload.pk).update(
        status=Payload.Status.PROCESSED,
        reason="",
        processed_at=now,
        attempts=payload.attempts + 1,
        result=[asdict(r) for r in results],
        warnings=document.warnings + problems,
    )
    payload.status = Payload.Status.PROCESSED
    return results


def payload_receive(
    *,
    rooftop: Rooftop,
    channel: str,
    content: bytes,
    now: dt.datetime,
    source: LeadSource | None = None,
    content_type: str = "",
    name: str = "",
    fresh: bool | None = None,
) -> tuple[Payload, list[IntakeResult]]:
    """Store, then process. Raises like `payload_process`; the payload is stored either way."""
    payload = payload_store(
        rooftop=rooftop,
        channel=channel,
        content=content,
        now=now,
        source=source,
        content_type=content_type,
        name=name,
    )
    return payload, payload_process(payload=payload, now=now, fresh=fresh)


def payload_reprocess(*, payload: Payload, now: dt.datetime) -> list[IntakeResult]:
    """Process a failed payload again (an admin fixed a setting, or the parser learned a quirk)."""
    if payload.status == Payload.Status.PROCESSED:
        raise PayloadError("this payload was already processed")
    return payload_process(payload=payload, now=now)


def csv_import(
    *,
    payload: Payload,
    now: dt.datetime,
    fresh: bool = False,
    batch: int = 1000,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Import a stored CSV file.

    Rows are taken in by chunks of `batch`, one transaction each. Within a chunk, prospects new
    to the rooftop (the great majority of an import) are written with a few bulk inserts; a row
    that matches an existing customer, or an earlier row of the chunk, goes through
    `lead_intake` one by one afterwards, so duplicates behave exactly as on every other channel.
    A bad row is stored as its own failed payload (the header and that row), so an admin sees the
    reason and can re-process it once fixed; the import goes on.
    Returns counts: created, re-inquiry, failed.
    """
    text = adf.decode_bytes(bytes(payload.content))[0]
    counts = {"created": 0, "re-inquiry": 0, "failed": 0}
    rows = iter_csv(io.StringIO(text))
    records: list[list[str]] = []  # the file's records, read once if a row fails
    sources: dict[str, LeadSource | None] = {}  # lead sources by name, for the whole import
    while True:
        chunk = list(itertools.islice(rows, batch))
        if not chunk:
            break
        if chunk[0][0] == 1 and isinstance(chunk[0][1], PayloadError):
            # The header itself is wrong: the file as a whole is kept as failed.
            _fail(payload, chunk[0][1].reason, now)
            raise chunk[0][1]
        with transaction.atomic():
            failures = _import_chunk(payload, chunk, now, fresh, counts, sources)
            if failures and not records:
                records = list(csv.reader(io.StringIO(text)))
            Payload.objects.bulk_create(
                Payload(
                    rooftop=payload.rooftop,
                    source=payload.source,
                    channel=Channel.IMPORT_CSV,
                    content=_csv_row_bytes(records, row),
                    content_type="text/csv",
                    name=f"{payload.name} row {row}"[:300],
                    received_at=now,
                    status=Payload.Status.FAILED,
                    reason=reason,
                    processed_at=now,
                    attempts=1,
                )
                for row, reason in failures
            )
        counts["failed"] += len(failures)
        if progress:
            progress(len(chunk))
    Payload.objects.filter(pk=payload.pk).update(
        status=Payload.Status.PROCESSED, processed_at=now, attempts=payload.attempts + 1, result=[counts]
    )
    return counts


def _import_chunk(
    payload: Payload, chunk: list, now: dt.datetime, fresh: bool, counts: dict, sources: dict
) -> list[tuple[int, str]]:
    """Take in one chunk of parsed CSV rows (see `csv_import`). Returns the failed rows."""
    rooftop = payload.rooftop
    list(Rooftop.objects.select_for_update(no_key=True).filter(pk=rooftop.pk).values_list("pk", flat=True))
    failures: list[tuple[int, str]] = []
    parsed = []
    for row, prospect in chunk:
        if isinstance(prospect, PayloadError):
            failures.append((row, prospect.reason))
        else:
            parsed.append((row, prospect, _contacts(prospect, rooftop.country)))

    # Which rows might be someone we know: any email or number already stored, or seen earlier
    # in this chunk. Those go one by one through lead_intake after the bulk insert.
    emails = {a for _, _, c in parsed for a in c.emails}
    keys = {p.match_key for _, _, c in parsed for p, _, _ in c.phones}
    known_emails = (
        set(
            CustomerEmail.objects.filter(rooftop=rooftop, address__in=emails).values_list(
                "address", flat=True
            )
        )
        if emails
        else set()
    )
    known_keys = (
        set(
            CustomerPhone.objects.filter(rooftop=rooftop, match_key__in=keys).values_list(
                "match_key", flat=True
            )
        )
        if keys
        else set()
    )
    fresh_rows, later = [], []
    for item in parsed:
        contacts = item[2]
        mine = set(contacts.emails) | {p.match_key for p, _, _ in contacts.phones}
        if mine & (known_emails | known_keys):
            later.append(item)
        else:
            fresh_rows.append(item)
        known_emails |= set(contacts.emails)
        known_keys |= {p.match_key for p, _, _ in contacts.phones}

    if fresh_rows:
        _bulk_create_leads(payload, fresh_rows, now, fresh, sources)
        counts["created"] += len(fresh_rows)
    later = _bulk_reinquiries(payload, later, now, fresh, counts, sources)
    for row, prospect, _ in later:
        try:
            with transaction.atomic():
                result = lead_intake(
                    rooftop=rooftop,
                    prospect=prospect,
                    now=now,
                    payload=payload,
                    source=payload.source,
                    fresh=fresh,
                )
            counts[result.status] += 1
        except PayloadError as exc:
            failures.append((row, f"row {row}: {exc.reason}"))
    return failures


def _import_source(payload: Payload, prospect: ParsedProspect, sources: dict) -> LeadSource | None:
    """`_source_for`, remembered by name for the whole import (`sources`)."""
    name = (prospect.source_name or prospect.provider_name).strip().lower()
    if payload.source is not None or not name:
        return payload.source
    if name not in sources:
        sources[name] = _source_for(payload.rooftop, None, prospect)
    return sources[name]


def _bulk_create_leads(payload: Payload, items: list, now: dt.datetime, fresh: bool, sources: dict) -> None:
    """Customers, contacts, leads, vehicles and events for prospects new to the rooftop, in a few
    bulk inserts. Same rows and events as `lead_intake` writes for a new customer."""
    rooftop = payload.rooftop

    def source_for(prospect):
        return _import_source(payload, prospect, sources)

    customers = [_customer_build(rooftop, prospect, contacts, now) for _, prospect, contacts in items]
    Customer.objects.bulk_create(customers)
    emails, phones = [], []
    for customer, (_, _, contacts) in zip(customers, items, strict=True):
        e, p = _contact_rows(customer, rooftop, contacts)
        emails += e
        phones += p
    CustomerEmail.objects.bulk_create(emails)
    CustomerPhone.objects.bulk_create(phones)
    Consent.objects.bulk_create(
        consent
        for customer, (_, prospect, _) in zip(customers, items, strict=True)
        for consent in consent_rows(customer=customer, consents=prospect.consents, at=now)
    )

    assigner = BatchAssigner(rooftop=rooftop, now=now)
    leads, owners = [], []
    for customer, (_, prospect, _) in zip(customers, items, strict=True):
        lead = _lead_build(rooftop, customer, prospect, source_for(prospect), payload, now)
        owner, why = assigner.choose(lead_type=lead.type, source_id=lead.source_id)
        if owner is None:
            lead.flags = ["unassigned"]
        else:
            lead.owner, lead.assigned_at = owner, now
        leads.append(lead)
        owners.append((owner, why))
    assigner.save()
    vehicles, events = [], []
    for lead, (_, prospect, contacts), (owner, why) in zip(leads, items, owners, strict=True):
        v, e = _lead_rows(lead, prospect, contacts, payload, lead.source, now, None)
        vehicles += v
        events += e
        if owner is not None:
            events.append(_assigned_event(lead, owner, why, now))
        else:
            events.append(
                LeadEvent(
                    lead=lead,
                    kind=LeadEvent.Kind.FLAGGED,
                    at=now,
                    data={"flag": "unassigned"},
                    text="Nobody on duty to take this lead: a manager must assign it",
                )
            )
    # Flags set while building the rows (no-contact) must be saved with the lead.
    Lead.objects.bulk_create(leads)
    Vehicle.objects.bulk_create(vehicles)
    LeadEvent.objects.bulk_create(events)
    plans.enrol_new_leads(leads=leads, now=now, fresh=fresh)
    if fresh:
        for lead, (_, _, contacts), (owner, why) in zip(leads, items, owners, strict=True):
            if owner is not None:
                notify(
                    user=owner,
                    lead=lead,
                    kind="assigned",
                    now=now,
                    text=f"New lead: {lead.customer} is yours ({why})",
                )
            _schedule_speed_to_lead(lead, contacts, now)


def _bulk_reinquiries(
    payload: Payload, items: list, now: dt.datetime, fresh: bool, counts: dict, sources: dict
) -> list:
    """Re-inquiries of a chunk in a few queries: rows that match exactly one customer by email or
    valid phone, who has an open lead that no other row of the chunk touches. Writes what
    `lead_intake` writes for them and returns the rows left for `lead_intake`."""
    rooftop = payload.rooftop
    emails = {a for _, _, c in items for a in c.emails}
    keys = {p.match_key for _, _, c in items for p, _, _ in c.phones if p.verified}
    by_email = (
        dict(
            CustomerEmail.objects.filter(rooftop=rooftop, address__in=emails).values_list(
                "address", "customer_id"
            )
        )
        if emails
        else {}
    )
    by_phone = (
        dict(
            CustomerPhone.objects.filter(rooftop=rooftop, verified=True, match_key__in=keys).values_list(
                "match_key", "customer_id"
            )
        )
        if keys
        else {}
    )
    target: dict[int, int] = {}  # item index -> customer id
    uses: dict[int, int] = {}
    for index, (_, _, contacts) in enumerate(items):
        found = {by_email[a] for a in contacts.emails if a in by_email}
        found |= {by_phone[p.match_key] for p, _, _ in contacts.phones if p.match_key in by_phone}
        if len(found) == 1:
            customer_id = found.pop()
            target[index] = customer_id
            uses[customer_id] = uses.get(customer_id, 0) + 1
    leads = {
        lead.customer_id: lead
        for lead in Lead.objects.select_related("customer", "owner", "rooftop").filter(
            customer_id__in=[c for c, n in uses.items() if n == 1], status__in=Lead.OPEN_STATUSES
        )
        # Filtered here, not in SQL: during a large import PostgreSQL's statistics lag behind the
        # growing tables and a condition on the joined customer made it plan a nested loop over
        # every customer (bench/import: 12 s of 25 s).
        if lead.customer.merged_into_id is None
    }
    batch = {i: leads[c] for i, c in target.items() if c in leads}
    if not batch:
        return items
    customer_ids = [lead.customer_id for lead in batch.values()]
    have_emails: dict[int, set[str]] = {c: set() for c in customer_ids}
    for customer_id, address in CustomerEmail.objects.filter(customer_id__in=customer_ids).values_list(
        "customer_id", "address"
    ):
        have_emails[customer_id].add(address)
    have_phones: dict[int, set[str]] = {c: set() for c in customer_ids}
    for customer_id, key in CustomerPhone.objects.filter(customer_id__in=customer_ids).values_list(
        "customer_id", "match_key"
    ):
        have_phones[customer_id].add(key)
    vehicles: dict[int, list[Vehicle]] = {lead.pk: [] for lead in batch.values()}
    for vehicle in Vehicle.objects.filter(lead__in=list(batch.values())):
        vehicles[vehicle.lead_id].append(vehicle)

    email_rows, phone_rows, vehicle_rows, events, changed_leads, announce = [], [], [], [], [], []
    consents: list[Consent] = []
    customer_changes: dict[str, list[Customer]] = {}
    for index, lead in batch.items():
        _, prospect, contacts = items[index]
        customer = lead.customer
        changed, e, p = _customer_fill(
            customer, prospect, contacts, rooftop, have_emails[customer.pk], have_phones[customer.pk]
        )
        email_rows += e
        phone_rows += p
        consents += consent_rows(customer=customer, consents=prospect.consents, at=now)
        for field in changed:
            customer_changes.setdefault(field, []).append(customer)
        source = _import_source(payload, prospect, sources)
        resent, ids_changed, v, event = _reinquiry_rows(
            lead, prospect, payload, source, now, None, vehicles[lead.pk]
        )
        vehicle_rows += v
        events.append(event)
        if ids_changed:
            changed_leads.append(lead)
        if fresh and not resent:
            announce.append((lead, event))
        counts["re-inquiry"] += 1
    CustomerEmail.objects.bulk_create(email_rows)
    CustomerPhone.objects.bulk_create(phone_rows)
    Consent.objects.bulk_create(consents)
    for field, customers in customer_changes.items():
        Customer.objects.bulk_update(customers, [field])
    Lead.objects.bulk_update(changed_leads, ["external_ids"])
    Vehicle.objects.bulk_create(vehicle_rows)
    LeadEvent.objects.bulk_create(events)
    for lead, event in announce:
        _reinquiry_announce(lead, event, now)
    return [item for index, item in enumerate(items) if index not in batch]


def _csv_row_bytes(records: list[list[str]], row: int) -> bytes:
    """The header and data row `row` (rows count like a spreadsheet's: the header is row 1)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(records[0] if records else [])
    if 0 < row - 1 < len(records):
        writer.writerow(records[row - 1])
    return out.getvalue().encode()


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
    (kept as written) matches only together with the same full name: made-up numbers such
    as 555-123-4567 are shared by strangers. Provider ids are never used alone (some providers
    reuse them). Of several candidates, the one with an open lead wins, then the most recent.
    """
    # Two indexed lookups rather than one OR over two joins (which scans every customer).
    ids: set[int] = set()
    if contacts.emails:
        ids.update(
            CustomerEmail.objects.filter(rooftop=rooftop, address__in=contacts.emails).values_list(
                "customer_id", flat=True
            )
        )
    verified = [p.match_key for p, _, _ in contacts.phones if p.verified]
    if verified:
        ids.update(
            CustomerPhone.objects.filter(rooftop=rooftop, verified=True, match_key__in=verified).values_list(
                "customer_id", flat=True
            )
        )
    candidates: list[Customer] = []
    if ids:
        candidates = list(Customer.objects.filter(pk__in=ids, merged_into__isnull=True))
    unverified = [p.match_key for p, _, _ in contacts.phones if not p.verified]
    if unverified and prospect.full_name:
        wanted = _norm_name(prospect.full_name)
        same_number = CustomerPhone.objects.filter(rooftop=rooftop, verified=False, match_key__in=unverified)
        for customer in Customer.objects.filter(
            pk__in=same_number.values("customer_id"), merged_into__isnull=True
        ):
            if _norm_name(customer.full_name) == wanted and customer not in candidates:
                candidates.append(customer)
    if not candidates:
        return None
    open_ids = set(
        Lead.objects.filter(customer__in=candidates, status__in=Lead.OPEN_STATUSES).values_list(
            "customer_id", flat=True
        )
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


def _customer_fill(
    customer: Customer,
    prospect: ParsedProspect,
    contacts: _Contacts,
    rooftop: Rooftop,
    have_emails: set[str],
    have_phones: set[str],
) -> tuple[list[str], list, list]:
    """What a new inquiry adds to a known customer: blanks filled (never overwriting what staff
    may have corrected), and new emails and phones. Returns (changed fields, email rows, phone
    rows); changes `customer` in memory only."""
    changed = []
    for field in ("first_name", "middle_name", "last_name", "preferred_contact"):
        value = getattr(prospect, field)
        if value and not getattr(customer, field):
            setattr(customer, field, value[:100])
            changed.append(field)
    if prospect.address and not prospect.address.is_empty() and not customer.street and not customer.city:
        _address_set(customer, prospect)
        changed += ["street", "apartment", "city", "region", "postal_code", "country"]
    new = _Contacts(
        [a for a in contacts.emails if a not in have_emails],
        [p for p in contacts.phones if p[0].match_key not in have_phones],
    )
    emails, phones = _contact_rows(customer, rooftop, new)
    if not customer.time_zone:
        customer.time_zone = _customer_time_zone(customer, [p for p, _, _ in contacts.phones])
        if customer.time_zone:
            changed.append("time_zone")
    return changed, emails, phones


def _customer_update(
    customer: Customer, prospect: ParsedProspect, contacts: _Contacts, rooftop: Rooftop
) -> None:
    changed, emails, phones = _customer_fill(
        customer,
        prospect,
        contacts,
        rooftop,
        have_emails=set(customer.emails.values_list("address", flat=True)),
        have_phones=set(customer.phones.values_list("match_key", flat=True)),
    )
    CustomerEmail.objects.bulk_create(emails)
    CustomerPhone.objects.bulk_create(phones)
    if changed:
        customer.save(update_fields=changed)


def _address_set(customer: Customer, prospect: ParsedProspect) -> None:
    a = prospect.address
    customer.street, customer.apartment, customer.city = a.street[:200], a.apartment[:100], a.city[:100]
    customer.region, customer.postal_code, customer.country = (
        a.region[:64],
        a.postal_code[:20],
        a.country[:64],
    )


def _customer_build(
    rooftop: Rooftop, prospect: ParsedProspect, contacts: _Contacts, now: dt.datetime
) -> Customer:
    customer = Customer(
        rooftop=rooftop,
        first_name=prospect.first_name[:100],
        middle_name=prospect.middle_name[:100],
        last_name=prospect.last_name[:100],
        preferred_contact=prospect.preferred_contact,
        created_at=now,
    )
    if prospect.address and not prospect.address.is_empty():
        _address_set(customer, prospect)
    customer.time_zone = _customer_time_zone(customer, [p for p, _, _ in contacts.phones])
    return customer


def _contact_rows(customer: Customer, rooftop: Rooftop, contacts: _Contacts) -> tuple[list, list]:
    emails = [CustomerEmail(customer=customer, rooftop=rooftop, address=a) for a in contacts.emails]
    phones = [
        CustomerPhone(
            customer=customer,
            rooftop=rooftop,
            number=p.number,
            match_key=p.match_key,
            verified=p.verified,
            type=kind,
            preferred=preferred,
        )
        for p, kind, preferred in contacts.phones
    ]
    return emails, phones


def _customer_create(
    rooftop: Rooftop, prospect: ParsedProspect, contacts: _Contacts, now: dt.datetime
) -> Customer:
    customer = _customer_build(rooftop, prospect, contacts, now)
    customer.save()
    emails, phones = _contact_rows(customer, rooftop, contacts)
    CustomerEmail.objects.bulk_create(emails)
    CustomerPhone.objects.bulk_create(phones)
    return customer


def _lead_build(
    rooftop: Rooftop,
    customer: Customer,
    prospect: ParsedProspect,
    source: LeadSource | None,
    payload: Payload | None,
    now: dt.datetime,
) -> Lead:
    return Lead(
        rooftop=rooftop,
        customer=customer,
        source=source,
        payload=payload,
        type=prospect.lead_type,
        comments=_comments(prospect),
        timeframe=prospect.timeframe[:200],
        provider=prospect.provider_name[:200],
        external_ids=[list(pair) for pair in prospect.external_ids],
        received_at=prospect.requested_at or now,
        created_at=now,
    )


def _lead_rows(
    lead: Lead,
    prospect: ParsedProspect,
    contacts: _Contacts,
    payload: Payload | None,
    source: LeadSource | None,
    now: dt.datetime,
    actor: User | None,
) -> tuple[list, list]:
    """The new lead's vehicles and its first timeline events; sets its "no-contact" flag."""
    vehicles = [_vehicle_row(lead, v, Vehicle.Role.INTEREST) for v in prospect.vehicles] + [
        _vehicle_row(lead, v, Vehicle.Role.TRADE) for v in prospect.trade_ins
    ]
    events = [
        LeadEvent(
            lead=lead,
            kind=LeadEvent.Kind.ARRIVED,
            at=now,
            actor=actor,
            text=f"{lead.get_type_display()} lead"
            + (f" from {source.name}" if source else "")
            + (f", entered by {actor.display_name}" if actor else ""),
            data=_arrival_data(prospect, payload),
        )
    ]
    if not (contacts.emails or contacts.phones):
        lead.flags = [*lead.flags, "no-contact"]
        events.append(
            LeadEvent(
                lead=lead,
                kind=LeadEvent.Kind.FLAGGED,
                at=now,
                text="No phone or email: find another way to reach this customer",
                data={"flag": "no-contact"},
            )
        )
    return vehicles, events


def _assigned_event(lead: Lead, owner: User, why: str, now: dt.datetime) -> LeadEvent:
    return LeadEvent(
        lead=lead,
        kind=LeadEvent.Kind.ASSIGNED,
        at=now,
        text=f"Assigned to {owner.display_name}",
        data={"owner": owner.pk, "why": why},
    )


def _vehicle_row(lead: Lead, v: ParsedVehicle, role: str) -> Vehicle:
    return Vehicle(
        lead=lead,
        role=role,
        condition=v.status if v.status in ("new", "used") else "",
        year=v.year,
        make=v.make[:60],
        model=v.model[:100],
        trim=v.trim[:200],
        vin=v.vin[:20],
        stock=v.stock[:40],
        price=v.price,
        odometer=v.odometer,
        odometer_units=v.odometer_units[:4],
    )


def _same_vehicle(existing: Vehicle, v: ParsedVehicle) -> bool:
    if existing.vin and v.vin:
        return existing.vin.upper() == v.vin.upper()
    return (existing.year, existing.make.lower(), existing.model.lower()) == (
        v.year,
        v.make.lower(),
        v.model.lower(),
    )


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
    """The customer's comments, then any vehicle comments not already among them (parsers copy
    lines such as "Trade Year: 2015" into the trade's comments)."""
    parts = [prospect.comments.strip()] if prospect.comments.strip() else []
    seen = {line.strip() for line in prospect.comments.splitlines()}
    for v in prospect.vehicles + prospect.trade_ins:
        lines = [
            line for line in v.comments.strip().splitlines() if line.strip() and line.strip() not in seen
        ]
        seen.update(line.strip() for line in lines)
        if lines:
            parts.append("\n".join(lines))
    return "\n".join(parts)


def _arrival_data(prospect: ParsedProspect, payload: Payload | None) -> dict:
    return {
        "payload": payload.pk if payload else None,
        "channel": payload.channel if payload else "",
        "provider": prospect.provider_name,
        "consents": [
            {"channel": c.channel, "granted": c.granted, "evidence": c.evidence} for c in prospect.consents
        ],
        "vehicles": [v.describe() for v in prospect.vehicles],
        "comments": _comments(prospect),
    }


def lead_intake(
    *,
    rooftop: Rooftop,
    prospect: ParsedProspect,
    now: dt.datetime,
    payload: Payload | None = None,
    source: LeadSource | None = None,
    fresh: bool = True,
    actor: User | None = None,
) -> IntakeResult:
    """Take in one prospect: find or create the customer, then either record a re-inquiry on
    the customer's open lead, or create a lead, assign it and (when `fresh`) schedule the
    automatic first answer and the speed-to-lead ladder. One transaction."""
    with transaction.atomic():
        # Serialises intake per rooftop: see the module docstring.
        list(
            Rooftop.objects.select_for_update(no_key=True).filter(pk=rooftop.pk).values_list("pk", flat=True)
        )
        contacts = _contacts(prospect, rooftop.country)
        customer = customer_match(rooftop=rooftop, prospect=prospect, contacts=contacts)
        matched = customer is not None
        if customer is None:
            customer = _customer_create(rooftop, prospect, contacts, now)
        else:
            _customer_update(customer, prospect, contacts, rooftop)
        source = _source_for(rooftop, source, prospect)
        if prospect.consents:
            # Evidence for the consent ledger. A box ticked by staff on the new-lead form is
            # their statement of the customer's written consent; a provider's flag is not.
            consents_from_lead(
                customer=customer,
                lead=None,
                consents=prospect.consents,
                at=now,
                written=actor is not None,
                source="form" if actor is not None else "lead",
                by=actor,
            )

        open_lead = (
            Lead.objects.select_for_update(of=("self",))
            .filter(customer=customer, status__in=Lead.OPEN_STATUSES)
            .select_related("owner")
            .first()
        )
        if open_lead is not None:
            return _reinquiry(open_lead, prospect, payload, source, now, actor, announce=fresh)

        lead = _lead_build(rooftop, customer, prospect, source, payload, now)
        lead.save()
        vehicles, events = _lead_rows(lead, prospect, contacts, payload, source, now, actor)
        Vehicle.objects.bulk_create(vehicles)
        LeadEvent.objects.bulk_create(events)
        if actor is not None and actor.rooftop_id == rooftop.pk:
            _entered_by(lead, actor, now)
        else:
            lead_assign_new(lead=lead, now=now, returning=matched, announce=fresh)
        if fresh and lead.first_attempt_at is None:
            _schedule_speed_to_lead(lead, contacts, now)
        # Every open lead is on a plan: the arrival plan for its type, or long-term follow-up
        # for a historical import.
        if lead.flags:
            Lead.objects.filter(pk=lead.pk).update(flags=lead.flags)
        plans.lead_plan_start(lead=lead, now=now, fresh=fresh)
        return IntakeResult(lead=lead.pk, customer=customer.pk, matched=matched, status="created")


def _entered_by(lead: Lead, actor: User, now: dt.datetime) -> None:
    """A lead a person entered in the app (a phone-up, a walk-in) is theirs, and for a phone-up
    or a walk-in they are talking with the customer right now: that is the first attempt, so
    there is no automatic answer and no ladder."""
    lead.owner, lead.assigned_at = actor, now
    fields = ["owner", "assigned_at"]
    events = [_assigned_event(lead, actor, "entered the lead", now)]
    if lead.type in (Lead.Type.PHONE, Lead.Type.WALK_IN):
        channel = "call" if lead.type == Lead.Type.PHONE else "visit"
        lead.first_attempt_at, lead.status = now, Lead.Status.WORKING
        fields += ["first_attempt_at", "status"]
        events.append(
            LeadEvent(
                lead=lead,
                kind=LeadEvent.Kind.ATTEMPT,
                at=now,
                actor=actor,
                text="Call: talked" if channel == "call" else "In person: talked",
                data={"channel": channel, "outcome": "talked", "note": ""},
            )
        )
    lead.save(update_fields=fields)
    LeadEvent.objects.bulk_create(events)


def _reinquiry_rows(
    lead: Lead,
    prospect: ParsedProspect,
    payload: Payload | None,
    source: LeadSource | None,
    now: dt.datetime,
    actor: User | None,
    vehicles: list[Vehicle],
) -> tuple[bool, bool, list, LeadEvent]:
    """The customer asked again while a lead is open: a hot signal on that lead, not a new one.

    A provider resending the same lead (status="resend", or an id this lead already has) is
    recorded but not announced: it says nothing new about the customer. Returns (resent, ids
    changed, new vehicle rows, the event); changes `lead.external_ids` in memory only.
    """
    external_ids = [list(pair) for pair in prospect.external_ids]
    resent = prospect.status == "resend" or any(pair in lead.external_ids for pair in external_ids)
    new_ids = [pair for pair in external_ids if pair not in lead.external_ids]
    lead.external_ids = lead.external_ids + new_ids
    added = [
        _vehicle_row(lead, v, Vehicle.Role.INTEREST)
        for v in prospect.vehicles
        if not any(_same_vehicle(e, v) for e in vehicles)
    ]
    data = _arrival_data(prospect, payload) | {"source": source.name if source else ""}
    if resent:
        event = LeadEvent(
            lead=lead,
            kind=LeadEvent.Kind.RESENT,
            at=now,
            actor=actor,
            data=data,
            text="The provider sent this lead again",
        )
    else:
        about = ", ".join(v.describe() for v in prospect.vehicles if v.describe()) or "their inquiry"
        text = f"{lead.customer} asked again about {about}" + (f" via {source.name}" if source else "")
        event = LeadEvent(lead=lead, kind=LeadEvent.Kind.REINQUIRY, at=now, actor=actor, text=text, data=data)
    return resent, bool(new_ids), added, event


def _reinquiry_announce(lead: Lead, event: LeadEvent, now: dt.datetime) -> None:
    recipients = [lead.owner] if lead.owner and lead.owner.is_active else _managers(lead.rooftop)
    for user in recipients:
        notify(user=user, lead=lead, kind="re-inquiry", text=f"Hot: {event.text}", now=now)


def _reinquiry(
    lead: Lead,
    prospect: ParsedProspect,
    payload: Payload | None,
    source: LeadSource | None,
    now: dt.datetime,
    actor: User | None,
    announce: bool = True,
) -> IntakeResult:
    resent, ids_changed, vehicles, event = _reinquiry_rows(
        lead, prospect, payload, source, now, actor, list(lead.vehicles.all())
    )
    if ids_changed:
        Lead.objects.filter(pk=lead.pk).update(external_ids=lead.external_ids)
    Vehicle.objects.bulk_create(vehicles)
    event.save()
    if announce and not resent:
        _reinquiry_announce(lead, event, now)
    return IntakeResult(
        lead=lead.pk, customer=lead.customer_id, matched=True, status="re-inquiry", resent=resent
    )


def _managers(rooftop: Rooftop) -> list[User]:
    return list(User.objects.filter(rooftop=rooftop, role__in=(Role.MANAGER, Role.ADMIN), is_active=True))


def lead_assign_new(
    *, lead: Lead, now: dt.datetime, returning: bool = True, announce: bool = True
) -> User | None:
    """Give a new lead its owner, record it on the timeline and tell the owner. Historical
    imports (`announce=False`) are recorded on the timeline without a notification per lead."""
    owner, why = owner_choose(
        rooftop=lead.rooftop,
        lead_type=lead.type,
        source_id=lead.source_id,
        customer=lead.customer,
        now=now,
        returning=returning,
    )
    if owner is None:
        lead.flags = [*lead.flags, "unassigned"]
        LeadEvent.objects.create(
            lead=lead,
            kind=LeadEvent.Kind.FLAGGED,
            at=now,
            data={"flag": "unassigned"},
            text="Nobody on duty to take this lead: a manager must assign it",
        )
        for manager in _managers(lead.rooftop) if announce else []:
            notify(
                user=manager,
                lead=lead,
                kind="unassigned",
                now=now,
                text=f"New lead from {lead.customer} has no owner: nobody is on duty",
            )
        return None
    Lead.objects.filter(pk=lead.pk).update(owner=owner, assigned_at=now)
    lead.owner, lead.assigned_at = owner, now
    _assigned_event(lead, owner, why, now).save()
    if announce:
        notify(
            user=owner,
            lead=lead,
            kind="assigned",
            now=now,
            text=f"New lead: {lead.customer} is yours ({why})",
        )
    return owner


def _schedule_speed_to_lead(lead: Lead, contacts: _Contacts, now: dt.datetime) -> None:
    rooftop = lead.rooftop
    if contacts.emails:
        # The customer asked: the first answer goes at any hour, never held for business hours.
        job_schedule(
            kind="auto-response", due_at=now, now=now, lead=lead, key=f"auto-response:{lead.pk}", priority=0
        )
    else:
        # Text answers come with the compliance gate (issue 4); until then only email answers.
        LeadEvent.objects.create(
            lead=lead,
            kind=LeadEvent.Kind.AUTO_RESPONSE_SKIPPED,
            at=now,
            text="No automatic answer: the customer gave no email address",
        )
    if lead.owner_id is None:
        # Nobody to remind or hand off from: the managers were told at once.
        return
    rungs = [("ladder-remind", rooftop.remind_owner_after)]
    if rooftop.handoff_enabled:
        rungs.append(("ladder-handoff", rooftop.handoff_after))
    rungs.append(("ladder-escalate", rooftop.manager_after))
    for kind, minutes in rungs:
        job_schedule(
            kind=kind, due_at=now + dt.timedelta(minutes=minutes), now=now, lead=lead, key=f"{kind}:{lead.pk}"
        )

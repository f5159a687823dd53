"""Intake service: the corpus end to end, duplicates, re-inquiries, assignment and scheduling."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from pursuit.conftest import CORPUS, FIXTURES, T0, make_user
from pursuit.intake.models import Payload
from pursuit.intake.parsed import PayloadError
from pursuit.intake.services import csv_import, payload_receive, payload_reprocess, payload_store
from pursuit.leads.models import Customer, Lead, LeadEvent
from pursuit.leads.services import customer_merge, lead_status_change
from pursuit.org.models import Role
from pursuit.work.models import Job, Notification

needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/adf-corpus is not here")


def adf(
    first: str,
    last: str,
    email: str = "",
    phone: str = "",
    vehicle: str = "2024 Honda Civic",
    status: str = "new",
    lead_id: str = "",
) -> bytes:
    year, make, model = vehicle.split(" ", 2)
    contact = f'<name part="first">{first}</name><name part="last">{last}</name>'
    contact += f"<email>{email}</email>" if email else ""
    contact += f'<phone type="cellphone">{phone}</phone>' if phone else ""
    ident = f'<id source="Cars.com">{lead_id}</id>' if lead_id else ""
    return (
        f'<?xml version="1.0"?><?adf version="1.0"?><adf><prospect status="{status}">{ident}'
        f"<requestdate>2026-03-10T09:00:00-06:00</requestdate>"
        f'<vehicle interest="buy" status="new"><year>{year}</year><make>{make}</make><model>{model}</model>'
        f"</vehicle><customer><contact>{contact}</contact></customer>"
        f"<vendor><vendorname>Lakeside Honda</vendorname></vendor>"
        f"<provider><name>Cars.com</name></provider></prospect></adf>"
    ).encode()


def receive(rooftop, content: bytes, now=T0, channel="adf-http", **kw):
    return payload_receive(rooftop=rooftop, channel=channel, content=content, now=now, **kw)


# --------------------------------------------------------------------------- the corpus


ACCEPTED = {
    "activix-1.xml": (
        "Test",
        "Activix 2",
        ["test@activix.ca"],
        [("+14382881008", True)],
        "2020 Volvo XC90 R-Design",
    ),
    "adfbuilder-2.xml": ("New", "Guy", [], [("(555)-444-3333", False)], None),
    "approvalgenie-1.xml": ("John", "Test01292019", ["testemail@domain.com"], None, "2023 Hyundai i30"),
    "blinkreply-1.xml": ("Sarah", "M", [], [], "2024 Elantra Hybrid"),
    "cargurus-redacted-1.xml": (
        None,
        None,
        ["redacted@example.com"],
        [("+15195550100", True)],
        "2016 RAM 2500",
    ),
    "fetchauto-1.xml": ("Test", "user", ["test@fetchauto.ca"], [("+17785554474", True)], None),
    "rustadf-2.xml": ("Jane", "Doe", ["jane@example.com"], None, "2024 Honda Civic"),
    "seorylie-4.xml": ("Jane", "Smith", ["jane.smith@example.com"], None, "2024 Honda Accord"),
    "seorylie-5.xml": ("John", "Smith", ["john.smith@example.com"], None, "2025 Toyota Highlander Platinum"),
}
KEPT = {
    "adfbuilder-1.xml": "no customer",
    "rustadf-3.xml": "entit",
    "seorylie-3.xml": "line",
    "seorylie-6.xml": "entit",
}


@needs_corpus
def test_the_whole_corpus_goes_through_intake_as_expected(rooftop, bdc_team):
    outcomes = {}
    for path in sorted(CORPUS.glob("*.xml")):
        try:
            _, results = receive(rooftop, path.read_bytes(), name=path.name)
            outcomes[path.name] = results
        except PayloadError as exc:
            outcomes[path.name] = exc
    # Nothing is dropped: one stored payload per file, failures kept with their reason.
    assert Payload.objects.count() == len(outcomes)
    for name, words in KEPT.items():
        assert isinstance(outcomes[name], PayloadError), name
        payload = Payload.objects.get(name=name)
        assert payload.status == "failed" and words in payload.reason.lower(), (name, payload.reason)
    assert "root:" not in Payload.objects.get(name="seorylie-6.xml").reason  # no /etc/passwd content
    for name, (first, last, emails, phones, vehicle) in ACCEPTED.items():
        result = outcomes[name][0]
        lead = Lead.objects.select_related("customer").get(pk=result.lead)
        customer = lead.customer
        if first is not None:
            assert (customer.first_name, customer.last_name) == (first, last), name
        assert sorted(customer.emails.values_list("address", flat=True)) == sorted(emails), name
        if phones is not None:
            assert sorted(customer.phones.values_list("number", "verified")) == sorted(phones), name
        if vehicle:
            assert any(str(v).startswith(vehicle) for v in lead.vehicles.all()), name
    blink = Lead.objects.get(pk=outcomes["blinkreply-1.xml"][0].lead)
    assert "no-contact" in blink.flags
    assert blink.source.name == "OEM Website"
    seorylie2 = Lead.objects.get(pk=outcomes["seorylie-2.xml"][0].lead)
    assert seorylie2.customer.city == "Springfield" and seorylie2.customer.apartment == "Unit 2B"
    assert ["AutoTrader.com", "AT-12345-2024"] in [pair[-2:] for pair in seorylie2.external_ids] or any(
        "AT-12345-2024" in pair for pair in seorylie2.external_ids
    )

    # rustadf-1 and sendadf-1: one customer (same full name, same written number), a re-inquiry.
    rust, send = outcomes["rustadf-1.xml"][0], outcomes["sendadf-1.xml"][0]
    assert (rust.status, send.status) == ("created", "re-inquiry")
    assert send.customer == rust.customer and send.lead == rust.lead and send.matched
    assert LeadEvent.objects.filter(lead_id=rust.lead, kind="re-inquiry").count() == 1
    # seorylie-1, -2 and -5 share a made-up number but are three people.
    three = {outcomes[f"seorylie-{n}.xml"][0].customer for n in (1, 2, 5)}
    assert len(three) == 3
    # Customers stay unique: one open lead each.
    assert Lead.objects.filter(status="new").values("customer").distinct().count() == Lead.objects.count()


@needs_corpus
def test_a_failed_payload_is_kept_and_can_be_reprocessed(rooftop, bdc_team):
    raw = (CORPUS / "seorylie-3.xml").read_bytes()
    with pytest.raises(PayloadError) as caught:
        receive(rooftop, raw)
    assert caught.value.line is not None
    payload = Payload.objects.get()
    assert payload.status == "failed" and bytes(payload.content) == raw
    # An admin fixes nothing and re-processes: still failed, still kept, attempts counted.
    with pytest.raises(PayloadError):
        payload_reprocess(payload=payload, now=T0)
    payload.refresh_from_db()
    assert payload.attempts == 2 and payload.status == "failed"


# --------------------------------------------------------------------------- duplicates


def test_phones_are_e164_with_the_rooftops_country_and_emails_normalised(rooftop, bdc_team):
    _, [result] = receive(rooftop, adf("Ann", "Lee", " Ann.Lee@Example.COM ", "(312) 266-1234"))
    customer = Customer.objects.get(pk=result.customer)
    assert list(customer.emails.values_list("address", flat=True)) == ["ann.lee@example.com"]
    assert list(customer.phones.values_list("number", "verified", "type")) == [
        ("+13122661234", True, "mobile")
    ]
    assert customer.time_zone == "America/Chicago"  # from the phone, no address given


def test_same_email_attaches_to_the_customer_and_records_a_reinquiry(rooftop, bdc_team, agent):
    _, [first] = receive(rooftop, adf("Ann", "Lee", "ann@example.com"))
    jobs = Job.objects.count()
    _, [again] = receive(
        rooftop,
        adf("Annie", "Lee", "ANN@example.com", vehicle="2025 Honda Pilot"),
        now=T0 + dt.timedelta(hours=3),
    )
    assert again.as_api() == {
        "lead": first.lead,
        "customer": first.customer,
        "matched": True,
        "status": "re-inquiry",
    }
    assert Lead.objects.count() == 1 and Customer.objects.count() == 1
    assert Job.objects.count() == jobs + 1  # only the owner's notification email, no second round
    lead = Lead.objects.get()
    assert sorted(str(v) for v in lead.vehicles.all()) == ["2024 Honda Civic", "2025 Honda Pilot"]
    event = lead.events.get(kind="re-inquiry")
    assert "2025 Honda Pilot" in event.text
    assert Notification.objects.filter(user=lead.owner, kind="re-inquiry").count() == 1


def test_same_valid_phone_matches_but_a_made_up_number_needs_the_same_name(rooftop, bdc_team):
    _, [a] = receive(rooftop, adf("Ann", "Lee", phone="312-266-1234"))
    _, [b] = receive(rooftop, adf("A.", "Lee", phone="+1 312 266 1234"))
    assert b.customer == a.customer and b.status == "re-inquiry"
    _, [c] = receive(rooftop, adf("John", "Doe", phone="555-123-4567"))
    _, [d] = receive(rooftop, adf("Jane", "Roe", phone="555-123-4567"))
    _, [e] = receive(rooftop, adf("john", "doe", phone="(555) 123 4567"))
    assert c.customer != d.customer
    assert e.customer == c.customer and e.status == "re-inquiry"


def test_provider_resend_is_recorded_without_announcing_it(rooftop, bdc_team):
    _, [first] = receive(rooftop, adf("Ann", "Lee", "ann@example.com", lead_id="L-1"))
    _, [resent] = receive(rooftop, adf("Ann", "Lee", "ann@example.com", lead_id="L-1"))
    _, [flagged] = receive(rooftop, adf("Ann", "Lee", "ann@example.com", status="resend"))
    assert resent.lead == flagged.lead == first.lead and resent.resent and flagged.resent
    lead = Lead.objects.get()
    assert (
        lead.events.filter(kind="resent").count() == 2 and not lead.events.filter(kind="re-inquiry").exists()
    )
    assert not Notification.objects.filter(kind="re-inquiry").exists()


def test_provider_ids_alone_never_match_customers(rooftop, bdc_team):
    _, [a] = receive(rooftop, adf("Ann", "Lee", "ann@example.com", lead_id="7"))
    _, [b] = receive(rooftop, adf("Bo", "Chen", "bo@example.com", lead_id="7"))
    assert a.customer != b.customer and b.status == "created"


def test_returning_customer_gets_a_new_lead_and_their_previous_owner(rooftop, bdc_team, agent, agent2):
    _, [first] = receive(rooftop, adf("Ann", "Lee", "ann@example.com"))
    lead = Lead.objects.get(pk=first.lead)
    lead_status_change(lead=lead, user=lead.owner, status="sold", now=T0 + dt.timedelta(days=1))
    receive(rooftop, adf("Zed", "Zee", "zed@example.com"))  # moves the round robin on
    _, [back] = receive(rooftop, adf("Ann", "Lee", "ann@example.com"), now=T0 + dt.timedelta(days=400))
    assert back.status == "created" and back.matched and back.customer == first.customer
    assert Lead.objects.get(pk=back.lead).owner == lead.owner


# --------------------------------------------------------------------------- assignment


def test_round_robin_among_on_duty_team_members(rooftop, bdc_team, agent, agent2, consultant):
    owners = [
        Lead.objects.get(pk=receive(rooftop, adf(f"P{i}", "X", f"p{i}@example.com"))[1][0].lead).owner
        for i in range(4)
    ]
    assert owners == [agent, agent2, agent, agent2]
    agent2.on_duty = False
    agent2.save()
    owners = [
        Lead.objects.get(pk=receive(rooftop, adf(f"Q{i}", "X", f"q{i}@example.com"))[1][0].lead).owner
        for i in range(2)
    ]
    assert owners == [agent, agent]
    lead = Lead.objects.order_by("-id").first()
    assigned = lead.events.get(kind="assigned")
    assert "round robin in BDC" in assigned.data["why"]
    assert Notification.objects.filter(user=agent, kind="assigned").exists()
    assert Job.objects.filter(kind="notify-email", lead=lead).exists()  # and by email


def test_no_one_on_duty_flags_the_lead_and_tells_the_managers(rooftop, manager):
    _, [result] = receive(rooftop, adf("Ann", "Lee", "ann@example.com"))
    lead = Lead.objects.get(pk=result.lead)
    assert lead.owner is None and "unassigned" in lead.flags
    assert Notification.objects.filter(user=manager, kind="unassigned").exists()
    # The customer still gets the automatic answer; there is no ladder without an owner.
    assert list(Job.objects.filter(lead=lead).values_list("kind", flat=True).order_by("kind")) == [
        "auto-response",
        "notify-email",
    ] or set(Job.objects.filter(lead=lead).values_list("kind", flat=True)) == {"auto-response"}


def test_no_rule_falls_back_to_the_least_busy_salesperson(rooftop, agent, consultant):
    _, [r1] = receive(rooftop, adf("Ann", "Lee", "ann@example.com"))
    _, [r2] = receive(rooftop, adf("Bo", "Chen", "bo@example.com"))
    assert {Lead.objects.get(pk=r1.lead).owner, Lead.objects.get(pk=r2.lead).owner} == {agent, consultant}


# --------------------------------------------------------------------------- scheduling


def test_a_fresh_lead_schedules_the_answer_now_and_the_ladder(rooftop, bdc_team):
    _, [result] = receive(rooftop, adf("Ann", "Lee", "ann@example.com"))
    jobs = {j.kind: j.due_at for j in Job.objects.filter(lead_id=result.lead).exclude(kind="notify-email")}
    assert jobs == {
        "auto-response": T0,
        "ladder-remind": T0 + dt.timedelta(minutes=2),
        "ladder-handoff": T0 + dt.timedelta(minutes=5),
        "ladder-escalate": T0 + dt.timedelta(minutes=15),
    }


def test_without_an_email_there_is_no_automatic_answer_and_it_says_so(rooftop, bdc_team):
    _, [result] = receive(rooftop, adf("Ann", "Lee", phone="312-266-1234"))
    assert not Job.objects.filter(lead_id=result.lead, kind="auto-response").exists()
    assert LeadEvent.objects.filter(lead_id=result.lead, kind="auto-response-skipped").exists()


def test_imports_are_historical_unless_fresh(rooftop, bdc_team):
    payload, [result] = receive(rooftop, adf("Ann", "Lee", "ann@example.com"), channel="import-xml")
    assert not Job.objects.filter(lead_id=result.lead).exclude(kind="notify-email").exists()
    payload2, [result2] = receive(
        rooftop, adf("Bo", "Chen", "bo@example.com"), channel="import-xml", fresh=True
    )
    assert Job.objects.filter(lead_id=result2.lead, kind="auto-response").exists()


# --------------------------------------------------------------------------- other channels


def test_json_lead_and_its_errors(rooftop, bdc_team):
    body = {
        "first_name": "Ann",
        "last_name": "Lee",
        "emails": ["ann@example.com"],
        "type": "phone",
        "phones": [{"number": "312-266-1234", "type": "mobile"}],
        "text_opt_in": True,
        "vehicles": [{"year": 2024, "make": "Honda", "model": "CR-V", "condition": "new"}],
    }
    _, [result] = receive(rooftop, json.dumps(body).encode(), channel="json-api")
    lead = Lead.objects.get(pk=result.lead)
    assert lead.type == "phone" and str(lead.vehicles.get()) == "2024 Honda CR-V"
    consents = lead.events.get(kind="arrived").data["consents"]
    assert consents == [{"channel": "text", "granted": True, "evidence": "text_opt_in: True"}]
    with pytest.raises(PayloadError, match="vehicles.0.year"):
        receive(
            rooftop,
            json.dumps(
                {"first_name": "X", "emails": ["x@example.com"], "vehicles": [{"year": "soon"}]}
            ).encode(),
            channel="json-api",
        )
    with pytest.raises(PayloadError, match="not JSON"):
        receive(rooftop, b"{nope", channel="json-api")
    assert Payload.objects.filter(status="failed").count() == 2


def test_email_channel(rooftop, bdc_team):
    _, results = receive(rooftop, (FIXTURES / "base64-attachment.eml").read_bytes(), channel="email-http")
    assert results and results[0].status == "created"


def test_csv_import_keeps_bad_rows_as_their_own_failed_payloads(rooftop, bdc_team):
    content = (
        b"first_name,last_name,email,phone,vehicle_year,vehicle_make,vehicle_model\n"
        b"Ann,Lee,ann@example.com,312-266-1234,2024,Honda,Civic\n"
        b"Bo,,,,2024,Honda,Civic\n"
        b"Ann,Lee,ann@example.com,,2025,Honda,Pilot\n"
        b"Cy,Dee,cy@example.com,,abc,Honda,Civic\n"
    )
    payload = payload_store(rooftop=rooftop, channel="import-csv", content=content, now=T0, name="leads.csv")
    seen = []
    counts = csv_import(payload=payload, now=T0, batch=2, progress=seen.append)
    assert counts == {"created": 1, "re-inquiry": 1, "failed": 2}
    assert sum(seen) == 4
    failed = Payload.objects.filter(status="failed").order_by("id")
    assert [p.name for p in failed] == ["leads.csv row 3", "leads.csv row 5"]
    assert "row 5" in failed[1].reason and "year" in failed[1].reason
    # The failed row is a CSV of its own: fix nothing, re-process, same reason; it stays kept.
    assert bytes(failed[1].content).decode().splitlines()[1].startswith("Cy,Dee")
    with pytest.raises(PayloadError):
        payload_reprocess(payload=failed[1], now=T0)
    assert not Job.objects.exclude(kind="notify-email").exists()  # historical import


# --------------------------------------------------------------------------- merging


def test_merging_two_customers_keeps_every_lead_and_event(rooftop, bdc_team, manager):
    _, [a] = receive(rooftop, adf("Ann", "Lee", "ann@example.com"))
    _, [b] = receive(rooftop, adf("Ann", "Lee-Smith", "annls@example.com", phone="312-266-1234"))
    events_before = LeadEvent.objects.count()
    keep = Customer.objects.get(pk=a.customer)
    customer_merge(keep=keep, merge=Customer.objects.get(pk=b.customer), now=T0, by=manager)
    assert set(keep.emails.values_list("address", flat=True)) == {"ann@example.com", "annls@example.com"}
    assert keep.phones.count() == 1
    leads = Lead.objects.filter(customer=keep)
    assert leads.count() == 2 and leads.filter(status__in=Lead.OPEN_STATUSES).count() == 1
    assert LeadEvent.objects.count() > events_before
    assert Customer.objects.get(pk=b.customer).merged_into == keep
    # The merged customer's contacts now lead to the survivor.
    _, [c] = receive(rooftop, adf("Ann", "Lee-Smith", "annls@example.com"))
    assert c.customer == keep.pk and c.status == "re-inquiry"


def test_a_user_of_another_role_is_not_assigned(rooftop, bdc_team, manager):
    # Managers are never in the round robin fallback.
    make_user(rooftop, "zoe", Role.ADMIN)
    _, [result] = receive(rooftop, adf("Ann", "Lee", "ann@example.com"))
    assert Lead.objects.get(pk=result.lead).owner.role == Role.BDC_AGENT


@pytest.mark.parametrize("batch", [1, 3, 100])
def test_csv_import_dedupes_the_same_whatever_the_chunk_size(rooftop, bdc_team, batch):
    receive(rooftop, adf("Old", "Customer", "old@example.com"), channel="import-xml")
    content = (
        b"first_name,last_name,email,phone,vehicle_year,vehicle_make,vehicle_model\n"
        b"Ann,Lee,ann@example.com,312-266-1234,2024,Honda,Civic\n"
        b"Ann,Lee,ann.work@example.com,(312) 266-1234,2025,Honda,Pilot\n"
        b"Bo,Chen,bo@example.com,,2024,Honda,Accord\n"
        b"Old,Customer,old@example.com,,2023,Honda,Fit\n"
        b"Ann,Lee,ann@example.com,,2024,Honda,Civic\n"
        b"Cy,Dee,cy@example.com,555-123-4567,2024,Honda,HR-V\n"
        b"Di,Eve,di@example.com,555-123-4567,2024,Honda,HR-V\n"
    )
    payload = payload_store(rooftop=rooftop, channel="import-csv", content=content, now=T0, name="d.csv")
    counts = csv_import(payload=payload, now=T0, batch=batch)
    assert counts == {"created": 4, "re-inquiry": 3, "failed": 0}
    assert Customer.objects.count() == 5 and Lead.objects.count() == 5
    ann = Customer.objects.get(first_name="Ann")
    assert set(ann.emails.values_list("address", flat=True)) == {"ann@example.com", "ann.work@example.com"}
    ann_lead = ann.leads.get()
    assert sorted(str(v) for v in ann_lead.vehicles.all()) == ["2024 Honda Civic", "2025 Honda Pilot"]
    assert ann_lead.events.filter(kind="re-inquiry").count() == 2
    old = Customer.objects.get(first_name="Old").leads.get()
    assert sorted(str(v) for v in old.vehicles.all()) == ["2023 Honda Fit", "2024 Honda Civic"]
    assert all(lead.owner_id for lead in Lead.objects.all())
    assert not Notification.objects.filter(kind__in=["assigned", "re-inquiry"]).exists()  # historical


def test_a_walk_in_entered_by_a_consultant_is_theirs_and_already_attempted(rooftop, bdc_team, consultant):
    body = {"first_name": "Wally", "last_name": "Walker", "type": "walk-in", "emails": ["wally@example.com"]}
    payload = payload_store(rooftop=rooftop, channel="form", content=json.dumps(body).encode(), now=T0)
    from pursuit.intake.services import payload_process

    [result] = payload_process(payload=payload, now=T0, actor=consultant)
    lead = Lead.objects.get(pk=result.lead)
    assert lead.owner == consultant and lead.first_attempt_at == T0 and lead.status == "working"
    assert not Job.objects.filter(lead=lead).exists()  # no automatic answer, no ladder
    assert list(lead.events.values_list("kind", flat=True)) == ["arrived", "assigned", "attempt", "plan"]
    assert lead.events.get(kind="plan").text.startswith("Plan started: Walk-in")
    assert "entered by Carl Consultant" in lead.events.get(kind="arrived").text

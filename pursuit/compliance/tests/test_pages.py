"""Compliance in the app: the lead page's contact rules and their actions, the manager's
compliance page (caps and the decision log), the compliance admin (the registry import, the rule
tables) and `pursuit import-dnc`; each as the owner, a colleague, the manager, the outsider and
the admin see them."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from pursuit.compliance.gate import Clearance, decision_record
from pursuit.compliance.models import Consent, Decision, RegistryCopy, RegistryNumber, Suppression
from pursuit.compliance.services import possible_stop_flag, registry_file_import
from pursuit.conftest import make_user
from pursuit.leads.models import Lead
from pursuit.org.models import Role, Rooftop
from pursuit.plans.models import Step
from pursuit.web.tests.conftest import json_lead
from pursuit.web.tests.test_plan_pages import plan_world

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}
# Tuesday 10 March 2026, 20:30 in Miami (EDT): past Florida's 20:00, inside the federal 21:00.
NOW = dt.datetime(2026, 3, 11, 0, 30, tzinfo=dt.UTC)
MIAMI = "+13055550123"


def text_of(response) -> str:
    return response.content.decode()


def flashes(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def squash(html: str) -> str:
    return re.sub(r"\s+", " ", html)


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def lead(rooftop, agent, bdc_team):
    """Agent Alice's lead: a customer with a Florida mobile number and an email address."""
    return json_lead(
        rooftop,
        owner=agent,
        now=NOW,
        first_name="Flo",
        last_name="Rida",
        emails=["flo@example.com"],
        phones=[{"number": MIAMI, "type": "mobile"}],
    )


@pytest.fixture
def outsider_manager(other_rooftop):
    return make_user(other_rooftop, "otto", Role.MANAGER, name="Otto Outside")


def decision(lead, rule="quiet-hours:FL", verdict="defer", at=NOW, detail="Florida allows calls 8:00-20:00"):
    until = at + dt.timedelta(hours=12) if verdict == "defer" else None
    return decision_record(
        lead.customer,
        Clearance(verdict, rule, detail, until=until),
        channel="call",
        purpose="marketing",
        at=at,
        lead=lead,
    )


# --------------------------------------------------------------------------- the lead page


def test_lead_page_shows_each_channel_in_the_customers_time(client, agent, lead):
    client.force_login(agent)
    response = client.get(reverse("lead", args=[lead.pk]))
    assert response.status_code == 200
    page = squash(text_of(response))
    assert "Contact rules" in page
    assert 'Customer\'s time: <strong class="local-now">Tue Mar 10, 8:30 PM EDT</strong>' in page
    rules = response.context["rules"]
    call, text, email = rules.channels
    assert call.answer.verdict == "defer" and call.answer.rule == "quiet-hours:FL"
    assert "Next allowed <strong>Wed Mar 11, 8:00 AM EDT</strong>" in page
    assert text.answer.verdict == "defer"
    assert email.answer.allowed and "May email now" in page
    assert call.address == MIAMI and "inquired 2026-03-11" in rules.ebr
    # The arrival's text opt-in is not there (json_lead gives none): no consent yet.
    assert call.consent is None and "none recorded" in page
    # Looking never writes to the decision log.
    assert not Decision.objects.exists()


def test_lead_page_says_a_call_step_is_not_allowed_now_and_when(client, agent, rooftop, bdc_team):
    plan_world(rooftop)
    lead = json_lead(
        rooftop, owner=agent, now=NOW, first_name="Flo", phones=[{"number": MIAMI, "type": "mobile"}]
    )
    client.force_login(agent)
    response = client.get(reverse("lead", args=[lead.pk]))
    panel = response.context["plan_panel"]
    first_call = next(row for row in panel.plans[0].to_come if row.step.channel == "call")
    assert first_call.gate is not None and first_call.gate.verdict == "defer"
    assert first_call.gate_local.hour == 8
    section = squash(text_of(response)).split('id="plan-panel"')[1]
    assert "Not allowed now</span> next allowed <strong>Wed Mar 11, 8:00 AM EDT</strong>" in section
    # The automatic email is allowed: no note on it.
    email = next(row for row in panel.plans[0].to_come if row.step.channel == "email")
    assert email.gate is None


def test_lead_page_queries_do_not_grow_with_decisions_and_steps(client, agent, lead):
    client.force_login(agent)
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("lead", args=[lead.pk]))
    for n in range(30):
        decision(lead, at=NOW - dt.timedelta(minutes=n))
    with CaptureQueriesContext(connection) as many:
        response = client.get(reverse("lead", args=[lead.pk]))
    assert len(many.captured_queries) == len(few.captured_queries)
    assert response.context["rules"].decisions_total == 30


def test_decision_log_on_the_lead_is_newest_first(client, agent, lead):
    decision(
        lead, rule="cap:FL", at=NOW - dt.timedelta(hours=2), detail="3 sales calls and texts in 24 hours"
    )
    decision(lead, rule="quiet-hours:FL", at=NOW - dt.timedelta(hours=1))
    client.force_login(agent)
    response = client.get(reverse("lead", args=[lead.pk]))
    page = text_of(response)
    log = page.split('id="decision-log"')[1]
    assert "Decision log (2)" in log
    assert log.index("quiet-hours:FL") < log.index("cap:FL")
    assert "3 sales calls and texts in 24 hours" in log


def test_owner_records_a_consent_and_it_shows_on_the_lead(client, agent, lead):
    client.force_login(agent)
    response = client.post(
        reverse("lead-consent", args=[lead.pk]),
        {"channel": "text", "purpose": "marketing", "written": "on", "evidence": "  signed the  text form "},
        **HX,
    )
    assert response.status_code == 200
    consent = Consent.objects.get(customer=lead.customer, source="staff")
    assert (consent.channel, consent.purpose, consent.granted, consent.written) == (
        "text",
        "marketing",
        True,
        True,
    )
    assert consent.by == agent and consent.lead == lead
    assert consent.evidence == "signed the text form"
    page = squash(text_of(response))
    assert "Consent to texts recorded (in writing)." in page
    assert "signed the text form" in page
    rules = response.context["rules"]
    assert rules.channels[1].consent == consent


def test_consent_needs_its_evidence(client, agent, lead):
    client.force_login(agent)
    response = client.post(
        reverse("lead-consent", args=[lead.pk]),
        {"channel": "call", "purpose": "marketing", "evidence": "   "},
        **HX,
    )
    assert response.status_code == 422
    assert "Say how the customer gave consent" in text_of(response)
    assert not Consent.objects.filter(source="staff").exists()
    # Without htmx: the same refusal as a message, and back to the lead.
    response = client.post(reverse("lead-consent", args=[lead.pk]), {"channel": "pigeon", "evidence": "x"})
    assert response.status_code == 302 and "pigeon" in " ".join(flashes(response))


def test_only_the_owner_or_a_manager_records_consent_or_stops(client, agent2, manager, lead):
    client.force_login(agent2)
    page = text_of(client.get(reverse("lead", args=[lead.pk])))
    assert "Contact rules" in page and "Record consent" not in page and "Do not contact</button>" not in page
    data = {"channel": "call", "purpose": "marketing", "evidence": "said yes"}
    assert client.post(reverse("lead-consent", args=[lead.pk]), data, **HX).status_code == 403
    assert client.post(reverse("lead-dnc", args=[lead.pk]), {"confirm": "on"}).status_code == 403
    assert not Consent.objects.filter(source="staff").exists()
    lead.customer.refresh_from_db()
    assert not lead.customer.do_not_contact
    client.force_login(manager)
    assert "Record consent" in text_of(client.get(reverse("lead", args=[lead.pk])))
    assert client.post(reverse("lead-consent", args=[lead.pk]), data, **HX).status_code == 200


def test_do_not_contact_needs_a_confirmation_then_stops_everything(client, agent, rooftop, bdc_team):
    plan_world(rooftop)
    lead = json_lead(
        rooftop,
        owner=agent,
        now=NOW,
        first_name="Dee",
        emails=["dee@example.com"],
        phones=[{"number": MIAMI, "type": "mobile"}],
    )
    assert Step.objects.filter(lead=lead, status="pending").exists()
    client.force_login(agent)
    url = reverse("lead-dnc", args=[lead.pk])
    response = client.post(url, {"note": "asked on the phone"}, **HX)
    assert response.status_code == 422 and "Tick the box to confirm" in text_of(response)
    lead.customer.refresh_from_db()
    assert not lead.customer.do_not_contact

    response = client.post(url, {"confirm": "on", "note": "asked on the phone"}, **HX)
    assert response.status_code == 200
    assert "will not be contacted again" in text_of(response)
    lead.refresh_from_db()
    lead.customer.refresh_from_db()
    assert lead.customer.do_not_contact and lead.status == Lead.Status.CLOSED
    assert not Step.objects.filter(lead=lead, status="pending").exists()
    listed = set(Suppression.objects.filter(group=rooftop.group).values_list("value", flat=True))
    assert listed == {MIAMI, "dee@example.com"}
    page = squash(text_of(response))
    assert "<strong>Do not contact</strong>" in page and "Mark “do not contact”" not in page
    assert all(not ch.answer.allowed for ch in response.context["rules"].channels)


def test_a_possible_stop_is_confirmed_from_the_lead(client, agent, lead):
    possible_stop_flag(
        customer=lead.customer, channel="text", phrase="stop texting me", text="pls stop texting me", at=NOW
    )
    flag = Decision.objects.get(rule="possible-stop")
    client.force_login(agent)
    page = squash(text_of(client.get(reverse("lead", args=[lead.pk]))))
    assert "Possible stop request" in page and "stop texting me" in page
    assert reverse("lead-stop-confirm", args=[lead.pk, flag.pk]) in page

    response = client.post(
        reverse("lead-stop-confirm", args=[lead.pk, flag.pk]), {"note": "called back, confirmed"}, **HX
    )
    assert response.status_code == 200
    assert "Stop confirmed" in text_of(response)
    lead.customer.refresh_from_db()
    # The rooftop stops every channel on a stop (opt_out_everywhere): the customer is done.
    assert lead.customer.do_not_contact
    refusal = Consent.objects.get(customer=lead.customer, channel="text", granted=False)
    assert refusal.source == "staff"
    assert refusal.evidence == (
        "stop request confirmed by Alice Agent: the customer wrote “stop texting me” (called back, confirmed)"
    )
    assert refusal.by == agent
    assert response.context["rules"].flags == []
    assert "Confirm stop request" not in text_of(response)


def test_a_flag_of_another_customer_is_not_found(client, agent, lead, rooftop):
    other = json_lead(rooftop, owner=agent, first_name="Other", emails=["other@example.com"])
    possible_stop_flag(customer=other.customer, channel="text", phrase="stop", text="stop it", at=NOW)
    flag = Decision.objects.get(rule="possible-stop")
    client.force_login(agent)
    assert client.post(reverse("lead-stop-confirm", args=[lead.pk, flag.pk]), {}).status_code == 404
    other.customer.refresh_from_db()
    assert not other.customer.do_not_contact


def test_outsider_sees_nothing_of_the_lead_or_its_decisions(client, outsider, outsider_manager, lead):
    decision(lead)
    possible_stop_flag(customer=lead.customer, channel="text", phrase="stop", text="stop", at=NOW)
    flag = Decision.objects.get(rule="possible-stop")
    for user in (outsider, outsider_manager):
        client.force_login(user)
        assert client.get(reverse("lead", args=[lead.pk])).status_code == 404
        data = {"channel": "call", "purpose": "marketing", "evidence": "x", "confirm": "on"}
        assert client.post(reverse("lead-consent", args=[lead.pk]), data).status_code == 404
        assert client.post(reverse("lead-dnc", args=[lead.pk]), data).status_code == 404
        assert client.post(reverse("lead-stop-confirm", args=[lead.pk, flag.pk]), data).status_code == 404
    # The other rooftop's manager has a compliance page of their own, without our decisions.
    page = text_of(client.get(reverse("compliance")))
    assert "Flo Rida" not in page and "0 decisions" in page
    assert client.get(reverse("compliance"), {"rule": "possible-stop"}).status_code == 200
    lead.customer.refresh_from_db()
    assert not lead.customer.do_not_contact and not Consent.objects.filter(source="staff").exists()


# --------------------------------------------------------------------------- the compliance page


def test_compliance_page_is_for_managers(client, agent, consultant, manager, rooftop):
    url = reverse("compliance")
    assert client.get(url).status_code == 302  # to the login page
    for user in (agent, consultant):
        client.force_login(user)
        assert client.get(url).status_code == 403
        assert (
            client.post(
                url, {"cap_calls_texts_24h": 1, "cap_touches_day": 1, "cap_touches_week": 1}
            ).status_code
            == 403
        )
        assert "Compliance</a>" not in text_of(client.get(reverse("leads")))
    rooftop.refresh_from_db()
    assert rooftop.cap_calls_texts_24h == 3
    client.force_login(manager)
    page = text_of(client.get(url))
    assert "Caps and settings" in page and "Decision log" in page
    assert 'href="/compliance/" aria-current="page">Compliance</a>' in page


def caps(**values) -> dict:
    data = {
        "cap_calls_texts_24h": "3",
        "cap_touches_day": "5",
        "cap_touches_week": "15",
        "opt_out_everywhere": "on",
    }
    return {k: v for k, v in (data | values).items() if v is not None}


def test_manager_edits_the_caps(client, manager, rooftop):
    client.force_login(manager)
    response = client.post(
        reverse("compliance"), caps(cap_calls_texts_24h="2", cap_touches_week="10", texas_registered="on")
    )
    assert response.status_code == 302 and response["Location"] == reverse("compliance")
    assert flashes(response) == ["Caps and settings saved."]
    rooftop.refresh_from_db()
    assert (rooftop.cap_calls_texts_24h, rooftop.cap_touches_day, rooftop.cap_touches_week) == (2, 5, 10)
    assert rooftop.texas_registered and rooftop.opt_out_everywhere
    response = client.post(
        reverse("compliance"),
        caps(cap_calls_texts_24h="2", cap_touches_week="10", texas_registered="on"),
        follow=True,
    )
    assert "Nothing changed: the settings are as they were." in text_of(response)
    # Unticking a flag turns it off.
    client.post(reverse("compliance"), caps(opt_out_everywhere=None))
    rooftop.refresh_from_db()
    assert not rooftop.opt_out_everywhere and not rooftop.texas_registered


@pytest.mark.parametrize(
    "values,message",
    [
        ({"cap_calls_texts_24h": "0"}, "At least 1"),
        ({"cap_calls_texts_24h": "4"}, "At most 3: the strictest state rule"),
        ({"cap_calls_texts_24h": "three"}, "Enter a whole number."),
        ({"cap_calls_texts_24h": None}, "Enter a number."),
        ({"cap_touches_day": "0"}, "At least 1"),
        ({"cap_touches_week": "0"}, "At least 1"),
        (
            {"cap_touches_day": "6", "cap_touches_week": "5"},
            "The weekly cap cannot be lower than the daily cap.",
        ),
    ],
)
def test_caps_form_refuses_bad_values(client, manager, rooftop, values, message):
    client.force_login(manager)
    response = client.post(reverse("compliance"), caps(**values))
    assert response.status_code == 422
    assert message in text_of(response)
    rooftop.refresh_from_db()
    assert (rooftop.cap_calls_texts_24h, rooftop.cap_touches_day, rooftop.cap_touches_week) == (3, 5, 15)


def test_compliance_page_lists_and_filters_the_rooftops_decisions(client, manager, lead):
    for n in range(55):
        decision(lead, at=NOW - dt.timedelta(minutes=n))
    decision(
        lead, rule="dnc-registry", verdict="deny", at=NOW + dt.timedelta(minutes=1), detail="on the registry"
    )
    client.force_login(manager)
    response = client.get(reverse("compliance"))
    page = text_of(response)
    assert "56 decisions" in page
    rows = response.context["decisions"]
    assert rows[0].rule == "dnc-registry"  # newest first
    assert f'href="{reverse("lead", args=[lead.pk])}"' in page
    assert rows.has_next()
    assert client.get(reverse("compliance"), {"page": 2}).context["decisions"].number == 2
    assert client.get(reverse("compliance"), {"page": "many"}).status_code == 200

    only = client.get(reverse("compliance"), {"rule": "dnc-registry"}).context["decisions"]
    assert [d.rule for d in only] == ["dnc-registry"]
    denied = client.get(reverse("compliance"), {"verdict": "deny"}).context["decisions"]
    assert [d.verdict for d in denied] == ["deny"]
    both = client.get(reverse("compliance"), {"rule": "quiet-hours:FL", "verdict": "deny"})
    assert both.context["decisions"].paginator.count == 0 and "matching the filter" in text_of(both)
    # A rule nobody has is ignored, never an error.
    assert (
        client.get(reverse("compliance"), {"rule": "nonsense", "verdict": "x"})
        .context["decisions"]
        .paginator.count
        == 56
    )


def test_compliance_page_queries_stay_flat(client, manager, lead):
    client.force_login(manager)
    decision(lead)
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("compliance"))
    for n in range(40):
        decision(lead, rule=f"cap:{n % 3}", at=NOW - dt.timedelta(minutes=n))
    with CaptureQueriesContext(connection) as many:
        client.get(reverse("compliance"))
    assert len(many.captured_queries) == len(few.captured_queries)


def test_compliance_page_warns_about_a_missing_or_old_registry(client, manager, rooftop):
    client.force_login(manager)
    assert "No US do-not-call registry copy has been imported" in text_of(client.get(reverse("compliance")))
    registry_file_import(lines=["3125550143"], copied_on=dt.date(2026, 1, 20), at=NOW, today=NOW.date())
    page = text_of(client.get(reverse("compliance")))
    assert "is 49 days old" in page and 'id="registry-warning"' in page
    registry_file_import(lines=["3125550143"], copied_on=dt.date(2026, 3, 1), at=NOW, today=NOW.date())
    page = text_of(client.get(reverse("compliance")))
    assert 'id="registry-warning"' not in page and "9 days old" in page


# --------------------------------------------------------------------------- the admin


def upload(text: str, name: str = "dnc.txt") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/plain")


def test_admin_imports_a_do_not_call_file_and_reports_the_bad_lines(admin_client, rooftop):
    url = reverse("admin:compliance_registrycopy_import")
    page = text_of(admin_client.get(url))
    assert "Import a do-not-call file" in page and 'type="file"' in page
    assert "No US do-not-call registry copy has been imported" in page
    response = admin_client.post(
        url,
        {
            "file": upload("AreaCode,PhoneNumber\n312,5550143\n312-555-0144\n3125550145\r\n"),
            "copied_on": "2026-03-09",
            "country": "US",
        },
    )
    assert response.status_code == 200
    page = squash(text_of(response))
    assert "<strong>2</strong> numbers imported from dnc.txt" in page
    assert "1 bad line" in page and "<td>3</td><td>not a phone number: &#x27;312-555-0144&#x27;</td>" in page
    copy = RegistryCopy.objects.get()
    assert (copy.country, copy.copied_on, copy.numbers, copy.file_name) == (
        "US",
        dt.date(2026, 3, 9),
        2,
        "dnc.txt",
    )
    assert copy.by.username == "admin"
    assert set(RegistryNumber.objects.values_list("number", flat=True)) == {"+13125550143", "+13125550145"}


@pytest.mark.parametrize(
    "data,message",
    [
        (
            {"file": "no numbers\n312-555-0144\nnope\n", "copied_on": "2026-03-09"},
            "the file has no telephone number",
        ),
        ({"file": "3125550199\n", "copied_on": "2026-03-12"}, "is in the future"),
        ({"file": "3125550199\n", "copied_on": "yesterday"}, "Enter a date such as 2026-11-23."),
        ({"copied_on": "2026-03-09"}, "This field is required."),
        ({"file": "\xff\xfe3125550199\n", "copied_on": "2026-03-09"}, "the file has no telephone number"),
    ],
)
def test_admin_import_refuses_a_bad_file_and_keeps_the_registry(admin_client, data, message):
    registry_file_import(lines=["3125550143"], copied_on=dt.date(2026, 3, 1), at=NOW, today=NOW.date())
    form = {"country": "US", "copied_on": data["copied_on"]}
    if "file" in data:
        form["file"] = upload(data["file"])
    response = admin_client.post(reverse("admin:compliance_registrycopy_import"), form)
    assert response.status_code == 422
    assert message in text_of(response)
    assert list(RegistryNumber.objects.values_list("number", flat=True)) == ["+13125550143"]
    assert RegistryCopy.objects.count() == 1


def test_admin_import_needs_the_permission(client, rooftop):
    staff = make_user(rooftop, "stan", Role.ADMIN, name="Stan Staff", is_staff=True)
    client.force_login(staff)
    assert client.get(reverse("admin:compliance_registrycopy_import")).status_code == 403
    client.force_login(make_user(rooftop, "nina", Role.BDC_AGENT))
    response = client.get(reverse("admin:compliance_registrycopy_import"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_admin_registry_copies_list_warns_and_offers_the_import(admin_client, rooftop):
    registry_file_import(lines=["3125550143"], copied_on=dt.date(2026, 1, 1), at=NOW, today=NOW.date())
    page = text_of(admin_client.get(reverse("admin:compliance_registrycopy_changelist")))
    assert "is 68 days old" in page
    assert reverse("admin:compliance_registrycopy_import") in page
    assert reverse("admin:compliance_rule_tables") in page


def test_admin_shows_the_state_rule_tables_with_their_review_dates(admin_client, admin_user, rooftop):
    index = text_of(admin_client.get(reverse("admin:index")))
    assert "State rule tables" in index and reverse("admin:compliance_rule_tables") in index
    assert "State rule tables" in text_of(admin_client.get(reverse("admin:app_list", args=["compliance"])))
    page = squash(text_of(admin_client.get(reverse("admin:compliance_rule_tables"))))
    assert "reviewed on <strong>2026-11-23</strong>" in page
    florida = page.split('id="rule-US-FL"')[1].split("</tr>")[0]
    assert "Mon–Sun 8:00–20:00" in florida and "<td>3</td>" in florida and "required" in florida
    texas = page.split('id="rule-US-TX"')[1].split("</tr>")[0]
    assert "Mon–Sat 9:00–21:00" in texas and "Sun 12:00–21:00" in texas and "required for text" in texas
    alabama = page.split('id="rule-US-AL"')[1].split("</tr>")[0]
    assert "<td>yes</td>" in alabama and "the state&#x27;s legal holidays" in alabama
    assert "Verify:</strong> closing hour 20:00 or 21:00" in page.split('id="rule-US-CT"')[1]
    assert "review it" not in page
    # A year and more later, every entry is flagged for review.
    with time_machine.travel(dt.datetime(2028, 1, 10, 12, tzinfo=dt.UTC), tick=False):
        admin_client.force_login(admin_user)  # the first session has expired by then
        page = text_of(admin_client.get(reverse("admin:compliance_rule_tables")))
    assert 'class="stale"' in page and "days ago: review it" in page


def test_admin_shows_decisions_and_touches_read_only(admin_client, lead):
    decision(lead)
    for name in ("decision", "touch", "consent"):
        assert admin_client.get(reverse(f"admin:compliance_{name}_changelist")).status_code == 200
        assert admin_client.get(reverse(f"admin:compliance_{name}_add")).status_code == 403
    obj = Decision.objects.get()
    page = text_of(admin_client.get(reverse("admin:compliance_decision_change", args=[obj.pk])))
    assert "quiet-hours:FL" in page and 'name="_save"' not in page


def test_admin_adds_a_number_to_the_internal_list(admin_client, rooftop):
    url = reverse("admin:compliance_suppression_add")
    data = {
        "group": rooftop.group.pk,
        "kind": "phone",
        "value": "(312) 555-0142",
        "note": "letter of 3 March",
    }
    response = admin_client.post(url, data)
    assert response.status_code == 302
    entry = Suppression.objects.get()
    assert (entry.value, entry.source, entry.by.username) == ("+13125550142", "staff (admin)", "admin")
    response = admin_client.post(url, data)
    assert response.status_code == 200 and "already exists" in text_of(response)
    response = admin_client.post(url, data | {"value": "not a number"})
    assert "This is not a phone number" in text_of(response)
    assert Suppression.objects.count() == 1


# --------------------------------------------------------------------------- pursuit import-dnc


def run(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command("import_dnc", *args, stdout=out, stderr=out)
    return out.getvalue()


def test_import_dnc_command_imports_and_lists_the_bad_lines(tmp_path, db):
    path = tmp_path / "dnc.txt"
    bad = [f"bad line {n}" for n in range(25)]
    path.write_text("\n".join(["312,5550143", "3125550144", *bad]) + "\n", encoding="utf-8")
    out = run(str(path), "--date", "2026-03-01")
    assert "Imported 2 numbers: the US registry copy of 2026-03-01." in out
    assert "25 bad lines left out:" in out
    assert "line 3: not a phone number: 'bad line 0'" in out
    assert "line 22: not a phone number: 'bad line 19'" in out and "bad line 20'" not in out
    assert "… and 5 more" in out
    assert RegistryCopy.objects.get().file_name == "dnc.txt"
    path.write_text("416,5550143\n", encoding="utf-8")  # Toronto: the CRTC's list
    out = run(str(path), "--date", "2026-01-01", "--country", "ca")
    assert "Imported 1 number: the CA registry copy" in out
    assert "69 days old" in out  # the command counts days in UTC: it is March 11 there


@pytest.mark.parametrize(
    "args,message",
    [
        (["--date", "2026-13-01"], "is not a date"),
        (["--date", "2026-03-12"], "is in the future"),
    ],
)
def test_import_dnc_command_refuses_bad_arguments(tmp_path, db, args, message):
    path = tmp_path / "dnc.txt"
    path.write_text("3125550143\n", encoding="utf-8")
    with pytest.raises(CommandError, match=message):
        run(str(path), *args)
    assert not RegistryCopy.objects.exists()


def test_import_dnc_command_refuses_a_missing_or_empty_file(tmp_path, db):
    with pytest.raises(CommandError, match="no such file"):
        run(str(tmp_path / "missing.txt"), "--date", "2026-03-01")
    path = tmp_path / "wrong.csv"
    path.write_text("name,email\nAnn,ann@example.com\n", encoding="utf-8")
    with pytest.raises(CommandError, match="no telephone number"):
        run(str(path), "--date", "2026-03-01")
    assert not RegistryCopy.objects.exists()


def test_rooftop_is_untouched_by_other_rooftops_managers(client, outsider_manager, rooftop):
    client.force_login(outsider_manager)
    client.post(reverse("compliance"), caps(cap_calls_texts_24h="1"))
    rooftop.refresh_from_db()
    assert rooftop.cap_calls_texts_24h == 3
    assert Rooftop.objects.get(name="Faraway Ford").cap_calls_texts_24h == 1

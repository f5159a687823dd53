"""The admin: every page renders, and the admin's own tools (re-process, merge, tokens, retry,
template and business-hours validation) do what a dealership admin expects."""

from __future__ import annotations

import json

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.contrib.messages import get_messages
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from pursuit.conftest import FIXTURES, T0
from pursuit.intake.models import LeadSource, Payload, token_hash
from pursuit.intake.services import payload_receive
from pursuit.leads.models import Customer, Lead, LeadEvent, Vehicle
from pursuit.org.models import Holiday, User
from pursuit.outreach.models import OutboundEmail, OutboxEmail, ResponseTemplate
from pursuit.plans.models import Incentive
from pursuit.work.models import Job
from pursuit.work.services import run_due_once

ADF = (FIXTURES / "namespaced-optin-trade.xml").read_bytes()
MODELS = sorted(admin.site._registry, key=lambda m: m._meta.label)


def url(model_or_obj, view: str, *args) -> str:
    opts = model_or_obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


def json_lead(first: str, last: str, email: str, phone: str = "") -> bytes:
    body = {
        "first_name": first,
        "last_name": last,
        "emails": [email],
        "vehicles": [{"year": 2026, "make": "Honda", "model": "CR-V", "trim": "EX-L"}],
    }
    if phone:
        body["phones"] = [{"number": phone, "type": "mobile"}]
    return json.dumps(body).encode()


def receive(rooftop, content: bytes, channel: str = Payload.Channel.JSON_API, source=None, fresh=True):
    payload, results = payload_receive(
        rooftop=rooftop, channel=channel, content=content, now=T0, source=source, fresh=fresh
    )
    return payload, Lead.objects.get(pk=results[0].lead)


def texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def form_data(response) -> dict:
    """The admin change form's current values, as the browser would post them back."""
    data: dict = {}

    def add(form):
        for bound in form:
            value = bound.field.prepare_value(bound.value())
            if value is None:
                continue
            if isinstance(value, bool):
                if value:
                    data[bound.html_name] = "on"
            elif isinstance(value, list | tuple):
                data[bound.html_name] = [str(v) for v in value]
            else:
                data[bound.html_name] = str(value)

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        add(inline.formset.management_form)
        for form in inline.formset.forms:
            add(form)
    return data


@pytest.fixture
def world(rooftop, manager, bdc_team, consultant, source_token, other_rooftop, outsider):
    """At least one row of every model the admin shows, made the way the app makes them."""
    source, _ = source_token
    Holiday.objects.create(rooftop=rooftop, date=T0.date(), name="Founders' Day")
    Group.objects.create(name="Receptionists")
    ResponseTemplate.objects.create(rooftop=rooftop)
    Incentive.objects.create(rooftop=rooftop, title="0.9% APR on Civics", make="Honda", created_at=T0)
    receive(rooftop, ADF, channel=Payload.Channel.ADF_HTTP, source=source)
    _, lead = receive(rooftop, json_lead("Ann", "Lee", "ann@example.com", "(312) 555-0142"))
    run_due_once(now=T0, limit=50)  # sends the automatic answers: OutboundEmail rows
    OutboxEmail.objects.create(
        from_email="a@example.com",
        to="b@example.com",
        subject="Hi",
        body="Hello",
        message="Subject: Hi\n\nHello",
    )
    Payload.objects.create(
        rooftop=rooftop,
        source=source,
        channel=Payload.Channel.ADF_HTTP,
        content=b"<adf>",
        received_at=T0,
        status=Payload.Status.FAILED,
        reason="the XML is not well-formed",
    )
    from pursuit.compliance.gate import Clearance, decision_record
    from pursuit.compliance.services import registry_import, suppress

    suppress(group=rooftop.group, kind="phone", value="+13125550199", source="staff", at=T0)
    registry_import(lines=["3125550198"], copied_on=T0.date(), at=T0)
    decision_record(
        lead.customer,
        Clearance("defer", "quiet-hours:IL", "too late", until=T0),
        channel="call",
        purpose="marketing",
        at=T0,
        lead=lead,
    )
    return lead


# --------------------------------------------------------------------------- every page


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m._meta.label)
def test_admin_pages_render(admin_client, world, model):
    model_admin = admin.site._registry[model]
    assert admin_client.get(url(model, "changelist")).status_code == 200
    if model_admin.search_fields:
        assert admin_client.get(url(model, "changelist"), {"q": "312 555 0142"}).status_code == 200
        assert admin_client.get(url(model, "changelist"), {"q": "ann"}).status_code == 200
    obj = model._default_manager.order_by("pk").first()
    assert obj is not None, f"the fixture made no {model._meta.label}"
    assert admin_client.get(url(model, "change", obj.pk)).status_code == 200
    request = RequestFactory().get("/")
    request.user = User.objects.get(username="admin")
    if model_admin.has_add_permission(request):
        assert admin_client.get(url(model, "add")).status_code == 200


def test_admin_index_lists_every_app(admin_client, world):
    page = admin_client.get("/admin/").content.decode()
    for label in ("Rooftops", "Customers", "Leads", "Payloads", "Lead sources", "Jobs", "Response templates"):
        assert label in page


def test_times_are_shown_in_the_dealership_zone(admin_client, world):
    # T0 is 15:00 UTC on Tuesday 10 March 2026: 10:00 in Chicago (daylight time began on the 8th).
    page = admin_client.get(url(LeadEvent, "changelist")).content.decode()
    assert "Tue Mar 10 2026, 10:00" in page


def test_customer_search_finds_a_phone_written_any_way(admin_client, world):
    response = admin_client.get(url(Customer, "changelist"), {"q": "(312) 555-0142"})
    assert [c.first_name for c in response.context["cl"].result_list] == ["Ann"]


def test_non_staff_cannot_use_the_admin(client, agent, manager):
    for user in (agent, manager):
        client.force_login(user)
        for path in ("/admin/", url(Lead, "changelist"), url(Payload, "changelist")):
            response = client.get(path)
            assert response.status_code == 302 and "/admin/login/" in response["Location"]


# --------------------------------------------------------------------------- payloads


@pytest.fixture
def failed_payload(rooftop, bdc_team, source_token):
    source, _ = source_token
    return Payload.objects.create(
        rooftop=rooftop,
        source=source,
        channel=Payload.Channel.ADF_HTTP,
        content=ADF,
        content_type="application/xml",
        received_at=T0,
        status=Payload.Status.FAILED,
        reason="intake failed (OperationalError: database is locked)",
        attempts=1,
    )


def test_failed_payloads_are_the_default_list(admin_client, failed_payload, rooftop):
    done, _ = receive(rooftop, json_lead("Bo", "Ray", "bo@example.com"))
    shown = list(admin_client.get(url(Payload, "changelist")).context["cl"].result_list)
    assert shown == [failed_payload]
    everything = admin_client.get(url(Payload, "changelist"), {"status": "all"}).context["cl"].result_list
    assert {p.pk for p in everything} == {failed_payload.pk, done.pk}
    page = admin_client.get(url(Payload, "changelist")).content.decode()
    assert "database is locked" in page  # the reason is in the list


def test_reprocess_action_turns_a_failed_payload_into_leads(admin_client, failed_payload):
    response = admin_client.post(
        url(Payload, "changelist"),
        {"action": "reprocess", "_selected_action": [failed_payload.pk]},
        follow=True,
    )
    assert response.status_code == 200
    failed_payload.refresh_from_db()
    assert failed_payload.status == Payload.Status.PROCESSED and failed_payload.reason == ""
    lead = Lead.objects.get(payload=failed_payload)
    assert lead.customer.last_name == "Tremblay"
    assert any(
        f"Payload {failed_payload.pk} processed" in t and f"lead {lead.pk}" in t for t in texts(response)
    )


def test_reprocess_reports_each_payload_and_never_raises(admin_client, failed_payload, rooftop):
    broken = Payload.objects.create(
        rooftop=rooftop,
        channel=Payload.Channel.ADF_HTTP,
        content=b"<adf><prospect>",
        received_at=T0,
        status=Payload.Status.FAILED,
        reason="old",
    )
    response = admin_client.post(
        url(Payload, "changelist"),
        {"action": "reprocess", "_selected_action": [broken.pk, failed_payload.pk]},
        follow=True,
    )
    assert response.status_code == 200
    messages = texts(response)
    assert any(f"Payload {broken.pk} still fails" in t and "not well-formed" in t for t in messages)
    assert any(f"Payload {failed_payload.pk} processed" in t for t in messages)
    broken.refresh_from_db()
    assert broken.status == Payload.Status.FAILED and broken.attempts == 1


def test_reprocess_button_on_the_change_page(admin_client, failed_payload):
    change = url(Payload, "change", failed_payload.pk)
    page = admin_client.get(change).content.decode()
    button = reverse("admin:intake_payload_reprocess", args=[failed_payload.pk])
    assert f'formaction="{button}"' in page
    assert admin_client.get(button).status_code == 405
    response = admin_client.post(button)
    assert response.status_code == 302 and response["Location"] == change
    failed_payload.refresh_from_db()
    assert failed_payload.status == Payload.Status.PROCESSED
    # Already processed: a second press reports, it does not raise.
    response = admin_client.post(button, follow=True)
    assert any("already processed" in t for t in texts(response))


def test_payload_content_is_shown_as_escaped_text(admin_client, rooftop):
    evil = b"<adf><prospect><comments><script>alert('x')</script></comments></prospect></adf>"
    payload = Payload.objects.create(
        rooftop=rooftop,
        channel=Payload.Channel.ADF_HTTP,
        content=evil,
        received_at=T0,
        status=Payload.Status.FAILED,
        reason="no customer",
    )
    page = admin_client.get(url(Payload, "change", payload.pk)).content.decode()
    assert "<script>alert(" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "<pre" in page


# --------------------------------------------------------------------------- customers


def test_merge_action_merges_via_the_confirmation_page(admin_client, rooftop, bdc_team):
    _, first = receive(rooftop, json_lead("Ann", "Lee", "ann@example.com"))
    _, second = receive(rooftop, json_lead("Ann", "Lee", "ann.lee@work.example", "(312) 555-0142"))
    keep, merge = second.customer, first.customer
    selected = {"action": "merge_customers", "_selected_action": [keep.pk, merge.pk]}
    confirm = admin_client.post(url(Customer, "changelist"), selected)
    assert confirm.status_code == 200
    page = confirm.content.decode()
    assert "Merge customers" in page and "ann.lee@work.example" in page and 'name="keep"' in page
    response = admin_client.post(
        url(Customer, "changelist"), {**selected, "post": "yes", "keep": keep.pk}, follow=True
    )
    assert response.status_code == 200
    merge.refresh_from_db()
    assert merge.merged_into == keep
    assert set(keep.emails.values_list("address", flat=True)) == {"ann@example.com", "ann.lee@work.example"}
    assert Lead.objects.filter(customer=keep, status__in=Lead.OPEN_STATUSES).count() == 1
    assert any("was merged into" in t for t in texts(response))


def test_merge_needs_exactly_two_customers_of_one_rooftop(admin_client, rooftop, other_rooftop):
    _, lead = receive(rooftop, json_lead("Ann", "Lee", "ann@example.com"))
    _, far = receive(other_rooftop, json_lead("Ann", "Lee", "ann@example.com"))
    changelist = url(Customer, "changelist")
    response = admin_client.post(
        changelist, {"action": "merge_customers", "_selected_action": [lead.customer_id]}, follow=True
    )
    assert any("exactly two" in t for t in texts(response))
    response = admin_client.post(
        changelist,
        {
            "action": "merge_customers",
            "post": "yes",
            "keep": lead.customer_id,
            "_selected_action": [lead.customer_id, far.customer_id],
        },
        follow=True,
    )
    assert any("different rooftops" in t for t in texts(response))
    assert not Customer.objects.filter(merged_into__isnull=False).exists()


def test_merge_of_an_already_merged_customer_is_refused(admin_client, rooftop):
    _, a = receive(rooftop, json_lead("Ann", "Lee", "ann@example.com"))
    _, b = receive(rooftop, json_lead("Ann", "Lee", "ann2@example.com"))
    _, c = receive(rooftop, json_lead("Ann", "Lee", "ann3@example.com"))
    Customer.objects.filter(pk=b.customer_id).update(merged_into=c.customer_id)
    response = admin_client.post(
        url(Customer, "changelist"),
        {
            "action": "merge_customers",
            "post": "yes",
            "keep": a.customer_id,
            "_selected_action": [a.customer_id, b.customer_id],
        },
        follow=True,
    )
    assert any("already merged" in t for t in texts(response))


# --------------------------------------------------------------------------- leads


def test_status_change_in_the_admin_goes_on_the_timeline(admin_client, rooftop, bdc_team, agent2):
    _, lead = receive(rooftop, json_lead("Ann", "Lee", "ann@example.com"))
    change = url(Lead, "change", lead.pk)
    data = form_data(admin_client.get(change))
    data.update(status="lost", lost_reason="Bought elsewhere", owner=str(agent2.pk))
    response = admin_client.post(change, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    lead.refresh_from_db()
    assert (lead.status, lead.lost_reason, lead.owner) == ("lost", "Bought elsewhere", agent2)
    kinds = list(lead.events.values_list("kind", flat=True))
    assert LeadEvent.Kind.STATUS in kinds and kinds.count(LeadEvent.Kind.ASSIGNED) == 2


def test_lead_cannot_be_reopened_beside_another_open_lead(admin_client, rooftop, bdc_team, agent):
    from pursuit.leads.services import lead_status_change

    _, old = receive(rooftop, json_lead("Ann", "Lee", "ann@example.com"))
    lead_status_change(lead=old, user=agent, status="lost", now=T0, reason="Timing")
    _, new = receive(rooftop, json_lead("Ann", "Lee", "ann@example.com"))
    assert new.pk != old.pk
    change = url(Lead, "change", old.pk)
    data = form_data(admin_client.get(change))
    data["status"] = "working"
    response = admin_client.post(change, data)
    assert response.status_code == 200
    assert "already has an open lead" in response.content.decode()
    old.refresh_from_db()
    assert old.status == "lost"


# --------------------------------------------------------------------------- sources


def test_new_source_shows_its_token_once(admin_client, rooftop):
    response = admin_client.post(
        url(LeadSource, "add"),
        {"rooftop": rooftop.pk, "name": "Website", "lead_type": "internet", "active": "on"},
        follow=True,
    )
    assert response.status_code == 200
    source = LeadSource.objects.get(name="Website")
    shown = [t for t in texts(response) if "pst_" in t]
    assert len(shown) == 1
    token = shown[0].split("<code>")[1].split("</code>")[0]
    assert token_hash(token) == source.token_hash
    # Never again: the change page and the list show only the hint.
    for page in (url(LeadSource, "change", source.pk), url(LeadSource, "changelist")):
        content = admin_client.get(page).content.decode()
        assert token not in content and source.token_hint in content


def test_issue_new_token_action(admin_client, source_token):
    source, old = source_token
    response = admin_client.post(
        url(LeadSource, "changelist"),
        {"action": "issue_new_token", "_selected_action": [source.pk]},
        follow=True,
    )
    source.refresh_from_db()
    token = [t for t in texts(response) if "pst_" in t][0].split("<code>")[1].split("</code>")[0]
    assert token != old and token_hash(token) == source.token_hash


# --------------------------------------------------------------------------- jobs, templates, rooftops


def test_retry_now_makes_failed_jobs_due(admin_client, world):
    failed = Job.objects.create(
        kind="notify-email",
        due_at=T0,
        created_at=T0,
        status=Job.Status.FAILED,
        attempts=6,
        last_error="SMTPServerDisconnected",
        data={"notification": 0},
    )
    done = Job.objects.filter(status=Job.Status.DONE).first()
    response = admin_client.post(
        url(Job, "changelist"), {"action": "retry_now", "_selected_action": [failed.pk, done.pk]}, follow=True
    )
    failed.refresh_from_db()
    done.refresh_from_db()
    assert failed.status == Job.Status.PENDING and failed.due_at > T0
    assert done.status == Job.Status.DONE
    assert any("1 job(s) will run" in t for t in texts(response))
    assert any("had not failed" in t for t in texts(response))


def test_response_template_is_checked_when_saved(admin_client, world, rooftop):
    template = ResponseTemplate.objects.get(rooftop=rooftop)
    change = url(ResponseTemplate, "change", template.pk)
    page = admin_client.get(change).content.decode()
    assert "customer.first_name" in page and "rooftop.address" in page  # merge fields in the help text
    assert "Subject:" in page  # the preview
    data = {
        "rooftop": rooftop.pk,
        "kind": template.kind,
        "subject": "Hi {{ customer.frist_name }}",
        "body": "Hello {% if vehicle %}",
    }
    response = admin_client.post(change, data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "frist_name" in str(errors["subject"]) and "body" in errors
    template.refresh_from_db()
    assert "frist_name" not in template.subject
    data.update(subject="Your {{ vehicle or 'inquiry' }}", body="Hi {{ customer.first_name or 'there' }}")
    assert admin_client.post(change, data).status_code == 302
    template.refresh_from_db()
    assert template.subject == "Your {{ vehicle or 'inquiry' }}"


@pytest.mark.parametrize(
    ("hours", "words"),
    [
        ('{"mon": [["09:00", "20:00"]', "not valid JSON"),
        ('{"sun": null}', "sun: expected a list"),
        ('{"mon": ["09:00-20:00"]}', "is not a pair"),
        ('{"monday": []}', "Unknown day"),
        ('{"mon": [["20:00", "09:00"]]}', "is not before"),
    ],
)
def test_business_hours_errors_are_readable(admin_client, rooftop, hours, words):
    change = url(rooftop, "change", rooftop.pk)
    data = form_data(admin_client.get(change))
    data["business_hours"] = hours
    response = admin_client.post(change, data)
    assert response.status_code == 200
    assert words in str(response.context["adminform"].form.errors["business_hours"])


def test_business_hours_saved_as_json(admin_client, rooftop):
    change = url(rooftop, "change", rooftop.pk)
    data = form_data(admin_client.get(change))
    data["business_hours"] = '{"mon": [["08:00", "12:00"], ["13:00", "19:00"]], "sun": []}'
    response = admin_client.post(change, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    rooftop.refresh_from_db()
    assert rooftop.business_hours == {"mon": [["08:00", "12:00"], ["13:00", "19:00"]], "sun": []}


def test_outbound_email_is_read_only(admin_client, world):
    email = OutboundEmail.objects.first()
    assert admin_client.post(url(OutboundEmail, "delete", email.pk), {"post": "yes"}).status_code == 403
    assert admin_client.get(url(OutboundEmail, "add")).status_code == 403
    event = LeadEvent.objects.first()
    assert admin_client.post(url(LeadEvent, "change", event.pk), {"text": "rewritten"}).status_code == 403


# --------------------------------------------------------------------------- staff and customers


def test_add_user_with_dealership_fields(admin_client, rooftop):
    response = admin_client.post(
        url(User, "add"),
        {
            "username": "frank",
            "usable_password": "true",
            "password1": "a-long-pass-phrase",
            "password2": "a-long-pass-phrase",
            "first_name": "Frank",
            "last_name": "Ortiz",
            "email": "frank@example.com",
            "rooftop": rooftop.pk,
            "role": "consultant",
            "direct_line": "(312) 555-0177",
            "on_duty": "on",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    frank = User.objects.get(username="frank")
    assert (frank.rooftop, frank.role, frank.direct_line, frank.on_duty) == (
        rooftop,
        "consultant",
        "+13125550177",
        True,
    )
    assert frank.check_password("a-long-pass-phrase")


def test_team_members_must_work_at_the_rooftop(admin_client, bdc_team, outsider):
    change = url(bdc_team, "change", bdc_team.pk)
    data = form_data(admin_client.get(change))
    data["members"] = [*data["members"], str(outsider.pk)]
    response = admin_client.post(change, data)
    assert response.status_code == 200
    assert "Not staff of Lakeside Honda" in str(response.context["adminform"].form.errors["members"])


def test_customer_phone_added_in_the_admin_is_normalised(admin_client, rooftop):
    _, lead = receive(rooftop, json_lead("Ann", "Lee", "ann@example.com", "(312) 555-0142"))
    customer = lead.customer
    change = url(customer, "change", customer.pk)
    data = form_data(admin_client.get(change))
    total = int(data["phones-TOTAL_FORMS"])
    data.update(
        {
            "phones-TOTAL_FORMS": str(total + 1),
            f"phones-{total}-number": "773 555 0199",
            f"phones-{total}-type": "work",
            f"phones-{total}-customer": str(customer.pk),
        }
    )
    response = admin_client.post(change, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    added = customer.phones.get(type="work")
    assert (added.number, added.match_key, added.verified, added.rooftop) == (
        "+17735550199",
        "+17735550199",
        True,
        rooftop,
    )
    # The same number twice is refused, not a database error.
    data = form_data(admin_client.get(change))
    total = int(data["phones-TOTAL_FORMS"])
    data.update(
        {
            "phones-TOTAL_FORMS": str(total + 1),
            f"phones-{total}-number": "(773) 555-0199",
            f"phones-{total}-type": "home",
            f"phones-{total}-customer": str(customer.pk),
        }
    )
    response = admin_client.post(change, data)
    assert response.status_code == 200
    assert "listed twice" in response.content.decode()


def test_lost_needs_a_reason(admin_client, rooftop, bdc_team):
    _, lead = receive(rooftop, json_lead("Ann", "Lee", "ann@example.com"))
    change = url(Lead, "change", lead.pk)
    data = form_data(admin_client.get(change))
    data["status"] = "lost"
    response = admin_client.post(change, data)
    assert response.status_code == 200
    assert "lost_reason" in response.context["adminform"].form.errors


@pytest.mark.parametrize(
    "model", [Customer, Lead, LeadEvent, Payload, Job, Vehicle], ids=lambda m: m._meta.label
)
def test_changelists_stay_flat_as_rows_grow(admin_client, rooftop, bdc_team, model):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            params = {"status": "all"} if model is Payload else {}
            assert admin_client.get(url(model, "changelist"), params).status_code == 200
        return len(captured)

    receive(rooftop, json_lead("Ann", "Lee", "ann@example.com", "(312) 555-0142"))
    few = queries()
    for n in range(5):
        receive(rooftop, json_lead(f"Person{n}", "Doe", f"p{n}@example.com", f"(773) 555-01{n:02d}"))
    assert queries() == few

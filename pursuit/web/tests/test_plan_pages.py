"""The plan pages: a manager's plans (list, detail with its preview, editor, YAML export and
import), incentives and re-engagement, the coverage check, the lead page's plan panel and its
actions, and the plans admin; each as the manager, the agent and the outsider see them."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.contrib import admin
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from pursuit.conftest import T0, make_user
from pursuit.leads.services import lead_status_change
from pursuit.org.models import Role
from pursuit.plans.files import SKIP_CONDITIONS, plans_dump
from pursuit.plans.models import (
    Enrolment,
    Incentive,
    MessageTemplate,
    Plan,
    PlanStep,
    PlanVersion,
    Step,
    Transition,
)
from pursuit.plans.services import callback_add, coverage_gaps, enrol, visit_log
from pursuit.plans.tests.test_plans import make_plan
from pursuit.web.forms import SKIP_IF
from pursuit.web.tests.conftest import json_lead

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}
NOW = T0 + dt.timedelta(minutes=5)  # Tuesday 10:05 in Chicago


def text_of(response) -> str:
    return response.content.decode()


def flashes(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def plan_world(rooftop) -> dict:
    """A rooftop's plans as a dealership has them: arrival, long-term, sold, an objection plan and
    a re-engagement plan, with templates and scripts that use merge fields."""
    hello = MessageTemplate.objects.create(
        rooftop=rooftop,
        key="hello",
        name="Hello",
        channel="email",
        subject="About the {{ vehicle }}",
        body="Hi {{ customer.first_name }}",
    )
    offer = MessageTemplate.objects.create(
        rooftop=rooftop,
        key="offer",
        name="Offer",
        channel="email",
        subject="News: {{ incentive.title }}",
        body="{{ incentive.title }} on the {{ vehicle }}",
    )
    call = {"window": "business-hours", "channel": "call", "action": "task"}
    new = make_plan(
        rooftop,
        "new-internet",
        [
            call
            | {
                "name": "First call",
                "counted_from": "enrolment",
                "voicemail": True,
                "script": "Hi {{ customer.first_name }}, this is {{ owner.first_name }} at {{ rooftop.name }}.",
            },
            {
                "name": "Intro email",
                "counted_from": "enrolment",
                "window": "any",
                "channel": "email",
                "action": "send",
                "template": hello,
                "skip_if": ["replied"],
            },
            call | {"name": "Second call", "amount": 1, "unit": "business-days", "skip_if": ["talked"]},
        ],
        then="long-term",
    )
    long_term = make_plan(
        rooftop,
        "long-term",
        [
            {
                "name": "Monthly email",
                "amount": 30,
                "unit": "days",
                "channel": "email",
                "action": "send",
                "template": hello,
                "repeat": True,
            }
        ],
    )
    sold = make_plan(rooftop, "sold", [call | {"name": "Thank you", "amount": 1, "unit": "days"}])
    price = make_plan(
        rooftop,
        "objection-price",
        [
            call
            | {
                "name": "Price call",
                "amount": 1,
                "unit": "days",
                "script": "Walk {{ customer.first_name }} through the numbers on the {{ vehicle }}.",
            }
        ],
    )
    again = make_plan(
        rooftop,
        "re-engagement",
        [
            {
                "name": "Offer email",
                "counted_from": "enrolment",
                "window": "any",
                "channel": "email",
                "action": "send",
                "template": offer,
            }
        ],
    )
    for event, condition, plan in [
        ("arrived", "", new),
        ("plan-finished", "", long_term),
        ("sold", "", sold),
        ("visit-no-sale", "price", price),
        ("re-engage", "", again),
    ]:
        Transition.objects.create(rooftop=rooftop, event=event, condition=condition, plan=plan)
    return {"new": new, "long-term": long_term, "sold": sold, "price": price, "re-engagement": again}


@pytest.fixture
def plans(rooftop):
    return plan_world(rooftop)


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def lead(rooftop, agent, plans):
    return json_lead(
        rooftop,
        owner=agent,
        first_name="Pat",
        last_name="Buyer",
        vehicles=[{"year": 2024, "make": "Honda", "model": "Civic", "condition": "new"}],
    )


@pytest.fixture
def outsider_manager(other_rooftop):
    return make_user(other_rooftop, "otto", Role.MANAGER, name="Otto Outside")


# --------------------------------------------------------------------------- access


def manager_pages(plans, lead, incentive) -> list[str]:
    plan = plans["new"]
    return [
        reverse("plans"),
        reverse("plan", args=[plan.pk]),
        reverse("plan", args=[plan.pk]) + f"?lead={lead.pk}",
        reverse("plan-new"),
        reverse("plan-edit", args=[plan.pk]),
        reverse("plans-export"),
        reverse("incentives"),
        reverse("incentive", args=[incentive.pk]),
        reverse("coverage"),
    ]


@pytest.fixture
def incentive(rooftop, manager):
    return Incentive.objects.create(
        rooftop=rooftop,
        title="0.9% APR on 2024 Civics",
        make="Honda",
        model="Civic",
        year_from=2024,
        created_at=T0,
    )


def test_the_pages_need_login(client, plans, lead, incentive):
    for url in manager_pages(plans, lead, incentive):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), url
    response = client.post(reverse("lead-callback", args=[lead.pk]), {"point": "x"})
    assert response.status_code == 302 and not Step.objects.filter(plan_step__isnull=True).exists()


def test_every_manager_page_renders(client, manager, plans, lead, incentive):
    client.force_login(manager)
    for url in manager_pages(plans, lead, incentive):
        response = client.get(url)
        assert response.status_code == 200, url


def test_agents_and_consultants_are_refused(client, agent, consultant, plans, lead, incentive):
    for person in (agent, consultant):
        client.force_login(person)
        for url in manager_pages(plans, lead, incentive):
            assert client.get(url).status_code == 403, url
        for url, data in [
            (reverse("plan-new"), {"name": "Mine"}),
            (reverse("plan-edit", args=[plans["new"].pk]), {"name": "Mine"}),
            (reverse("plans-import"), {}),
            (reverse("incentives"), {"title": "x", "make": "Honda"}),
            (reverse("incentive-reengage", args=[incentive.pk]), {"lead": [lead.pk]}),
            (reverse("coverage-repair", args=[lead.pk]), {}),
            (reverse("lead-plan-move", args=[lead.pk]), {"plan": plans["price"].pk}),
        ]:
            assert client.post(url, data).status_code == 403, url
    assert Plan.objects.count() == 5 and Incentive.objects.count() == 1
    assert not Enrolment.objects.filter(lead=lead, version__plan=plans["price"]).exists()


def test_outsiders_get_404_on_everything_of_another_rooftop(
    client, outsider, outsider_manager, plans, lead, incentive
):
    objects = [
        ("get", reverse("plan", args=[plans["new"].pk]), {}),
        ("get", reverse("plan-edit", args=[plans["new"].pk]), {}),
        ("post", reverse("plan-edit", args=[plans["new"].pk]), {"name": "Hijacked"}),
        ("get", reverse("incentive", args=[incentive.pk]), {}),
        ("post", reverse("incentive-reengage", args=[incentive.pk]), {"lead": [lead.pk]}),
        ("post", reverse("coverage-repair", args=[lead.pk]), {}),
        ("post", reverse("lead-callback", args=[lead.pk]), {"point": "x"}),
        ("post", reverse("lead-visit", args=[lead.pk]), {"objection": "price"}),
        ("post", reverse("lead-plan-move", args=[lead.pk]), {"plan": plans["price"].pk}),
    ]
    step = Step.objects.filter(lead=lead).first()
    objects.append(("post", reverse("lead-callback-done", args=[lead.pk, step.pk]), {}))
    for person in (outsider, outsider_manager):
        client.force_login(person)
        for method, url, data in objects:
            assert getattr(client, method)(url, data).status_code == 404, (person, url)
    # A manager of another rooftop sees their own (empty) lists, nothing of this rooftop.
    for url in (reverse("plans"), reverse("incentives"), reverse("coverage")):
        page = text_of(client.get(url))
        assert "New Internet" not in page and "Civics" not in page and "Pat Buyer" not in page
    export = text_of(client.get(reverse("plans-export")))
    assert "new-internet" not in export and "hello" not in export
    # Another rooftop's lead cannot be previewed either.
    Plan.objects.create(rooftop=outsider_manager.rooftop, key="theirs", name="Theirs")
    theirs = Plan.objects.get(key="theirs")
    page = text_of(client.get(reverse("plan", args=[theirs.pk]), {"lead": lead.pk}))
    assert "Pat" not in page and f"no lead #{lead.pk}" in page
    assert Plan.objects.get(pk=plans["new"].pk).name == "New Internet"
    assert lead.steps.filter(plan_step__isnull=True).count() == 0


def test_the_nav_shows_plans_incentives_and_coverage_to_managers_only(client, manager, agent):
    client.force_login(manager)
    page = text_of(client.get(reverse("leads")))
    for label in ("Plans", "Incentives", "Coverage"):
        assert f">{label}</a>" in page
    client.force_login(agent)
    page = text_of(client.get(reverse("leads")))
    assert ">Plans</a>" not in page and ">Coverage</a>" not in page


# --------------------------------------------------------------------------- plan list and page


def test_plan_list_shows_versions_steps_leads_and_what_leads_in(client, manager, plans, lead, rooftop):
    enrol(lead=json_lead(rooftop, first_name="Sol", emails=["sol@example.com"]), plan=plans["sold"], now=T0)
    client.force_login(manager)
    response = client.get(reverse("plans"))
    plans_shown = {p.key: p for p in response.context["plans"]}
    new = plans_shown["new-internet"]
    assert (new.current_number, new.n_steps, new.n_active) == (1, 3, 1)
    assert plans_shown["sold"].n_active == 1 and plans_shown["long-term"].n_steps == 1
    page = text_of(response)
    assert "A lead arrives" in page and "Visit, no sale: Price" in page
    assert "Re-engaged for an incentive" in page
    assert new.leads_in == ["A lead arrives"]
    assert [p.key for p in plans_shown["long-term"].after] == ["new-internet"]  # its `then`
    assert "Export YAML" in page and 'name="file"' in page


def test_plan_page_shows_steps_versions_and_a_preview_for_a_sample_customer(client, manager, plans):
    client.force_login(manager)
    response = client.get(reverse("plan", args=[plans["new"].pk]))
    page = text_of(response)
    assert response.context["page"].version.number == 1
    for expected in (
        "First call",
        "At enrolment",
        "1 business day after the previous step",
        "Rooftop business hours",
        "automatic",
        "Hello",
        "replied",
        "talked",
        "for the lead's owner",
        "v1",
        "Long Term",  # then
    ):
        assert expected in page, expected
    preview = response.context["page"].preview
    assert len(preview) == 3
    # Tuesday 10:05 in Chicago; the second call one business day later, with weekday names.
    assert "Tue Mar 10, 10:05 AM" in page and "Wed Mar 11, 10:05 AM" in page
    assert "Hi Ann, this is Sam at Demo Motors." in page  # the sample customer
    assert "“About the 2026 Honda Accord EX-L”" in page


def test_preview_with_a_real_lead_uses_its_fields_and_time_zone(client, manager, plans, rooftop):
    lead = json_lead(
        rooftop,
        first_name="Cal",
        emails=["cal@example.com"],
        phones=[{"number": "+1 415 555 0100", "type": "mobile"}],
        vehicles=[{"year": 2025, "make": "Honda", "model": "Pilot"}],
    )
    assert lead.customer.time_zone == "America/Los_Angeles"
    PlanStep.objects.filter(version__plan=plans["new"], name="First call").update(window="customer-day")
    client.force_login(manager)
    response = client.get(reverse("plan", args=[plans["new"].pk]), {"lead": lead.pk})
    page = text_of(response)
    assert response.context["page"].preview_lead == lead
    assert "Hi Cal," in page and "“About the 2025 Honda Pilot”" in page
    # 10:05 in Chicago is 08:05 in California: the first call waits for 9:00 there (11:00 here).
    first = response.context["page"].preview[0]
    assert first.due_at == dt.datetime(2026, 3, 10, 16, 0, tzinfo=dt.UTC)
    assert "Tue Mar 10, 11:00 AM" in page and "Tue 9:00 AM for them" in page
    assert "is not a lead number" in text_of(
        client.get(reverse("plan", args=[plans["new"].pk]), {"lead": "x"})
    )


def test_an_older_version_can_be_looked_at(client, manager, plans):
    v2 = PlanVersion.objects.create(
        plan=plans["new"], number=2, created_at=NOW, created_by=manager, note="shorter"
    )
    PlanStep.objects.create(version=v2, position=1, name="Only call", channel="call", action="task")
    client.force_login(manager)
    current = client.get(reverse("plan", args=[plans["new"].pk]))
    assert [s.name for s, _ in current.context["page"].steps] == ["Only call"]
    assert "shorter" in text_of(current) and "Maria Manager" in text_of(current)
    old = client.get(reverse("plan", args=[plans["new"].pk]), {"version": 1})
    assert [s.name for s, _ in old.context["page"].steps] == ["First call", "Intro email", "Second call"]
    assert "not the current one" in text_of(old)


# --------------------------------------------------------------------------- editing


def edit_data(response) -> dict:
    """The edit page's current values, as the browser would post them back."""
    data: dict = {}

    def add(form):
        for bound in form:
            value = bound.field.prepare_value(bound.value())
            if value is None or value is False:
                continue
            if value is True:
                data[bound.html_name] = "on"
            elif isinstance(value, list | tuple):
                data[bound.html_name] = [str(v) for v in value]
            else:
                data[bound.html_name] = str(value)

    add(response.context["form"])
    steps = response.context["steps"]
    add(steps.management_form)
    for form in steps.forms:
        add(form)
    return data


def add_step(data: dict, **fields) -> None:
    n = int(data["steps-TOTAL_FORMS"])
    defaults = {"amount": "0", "unit": "minutes", "counted_from": "previous", "window": "business-hours"}
    for name, value in (defaults | fields).items():
        data[f"steps-{n}-{name}"] = value
    data["steps-TOTAL_FORMS"] = str(n + 1)


def test_editing_makes_version_2_and_an_enrolled_lead_keeps_version_1(client, manager, plans, lead, rooftop):
    url = reverse("plan-edit", args=[plans["new"].pk])
    client.force_login(manager)
    page = client.get(url)
    assert "Leads already enrolled keep their version" in text_of(page)
    assert "1 lead on version 1 now" in text_of(page)
    data = edit_data(page)
    data["steps-1-DELETE"] = "on"  # no intro email any more
    data["steps-2-ORDER"] = "1"  # the second call first...
    data["steps-0-ORDER"] = "2"
    add_step(data, name="Video walk-around", channel="video", action="task", ORDER="3")
    data["note"] = "video instead of email"
    response = client.post(url, data)
    assert response.status_code == 302, response.context and response.context["steps"].errors
    assert "Saved as version 2" in flashes(response)[0]
    v2 = plans["new"].current
    assert v2.number == 2 and v2.note == "video instead of email" and v2.created_by == manager
    assert list(v2.steps.values_list("position", "name")) == [
        (1, "Second call"),
        (2, "First call"),
        (3, "Video walk-around"),
    ]
    # The enrolled lead keeps version 1's steps; a new lead gets version 2's.
    assert Enrolment.objects.get(lead=lead).version.number == 1
    assert list(Step.objects.filter(lead=lead).values_list("plan_step__name", flat=True)) == [
        "First call",
        "Intro email",
        "Second call",
    ]
    later = json_lead(rooftop, first_name="Lou", emails=["lou@example.com"])
    assert Enrolment.objects.get(lead=later).version == v2
    assert list(
        Step.objects.filter(lead=later)
        .order_by("plan_step__position")
        .values_list("plan_step__name", flat=True)
    ) == [
        "Second call",
        "First call",
        "Video walk-around",
    ]
    detail = text_of(client.get(reverse("plan", args=[plans["new"].pk])))
    assert "video instead of email" in detail and "Video walk-around" in detail


def test_saving_unchanged_steps_makes_no_version(client, manager, plans):
    url = reverse("plan-edit", args=[plans["new"].pk])
    client.force_login(manager)
    data = edit_data(client.get(url))
    data["description"] = "For leads from the web"
    response = client.post(url, data)
    assert response.status_code == 302 and "keeps its version" in flashes(response)[0]
    plan = Plan.objects.get(pk=plans["new"].pk)
    assert plan.description == "For leads from the web" and plan.versions.count() == 1


def test_the_editor_refuses_steps_that_cannot_work(client, manager, plans):
    url = reverse("plan-edit", args=[plans["new"].pk])
    client.force_login(manager)
    data = edit_data(client.get(url))
    data["steps-1-template"] = ""  # an automatic email without a template
    data["steps-0-script"] = "Hi {{ customer.nickname }}"  # no such merge field
    data["steps-2-voicemail"] = "on"
    data["steps-2-channel"] = "email"  # a voicemail by email
    response = client.post(url, data)
    assert response.status_code == 422
    page = text_of(response)
    assert "An automatic send needs a template." in page
    assert "This script does not work" in page and "nickname" in page
    assert "A voicemail is only for calls." in page
    data = edit_data(client.get(url))
    data |= {"steps-0-repeat": "on", "steps-0-amount": "3", "steps-0-counted_from": "previous"}
    response = client.post(url, data)
    assert response.status_code == 422 and "Only the last step can repeat." in text_of(response)
    data = edit_data(client.get(url))
    data |= {"steps-2-repeat": "on", "steps-2-amount": "30", "steps-2-unit": "days"}
    response = client.post(url, data)
    assert response.status_code == 422 and "the plan never ends" in text_of(response)
    assert plans["new"].versions.count() == 1
    data = edit_data(client.get(url))
    for i in range(3):
        data[f"steps-{i}-DELETE"] = "on"
    response = client.post(url, data)
    assert response.status_code == 422 and "A plan needs at least one step" in text_of(response)
    assert plans["new"].versions.count() == 1


def test_a_new_plan_is_created_with_version_1(client, manager, plans, lead):
    client.force_login(manager)
    page = client.get(reverse("plan-new"))
    data = edit_data(page) | {"name": "Trade value", "then": "long-term", "active": "on"}
    data |= {"steps-0-name": "Appraisal call", "steps-0-channel": "call", "steps-0-action": "task"}
    data |= {"steps-0-script": "Offer {{ customer.first_name }} a free appraisal of the {{ trade }}."}
    add_step(
        data,
        name="Appraisal email",
        channel="email",
        action="send",
        template=str(plans["new"].current.steps.get(position=2).template_id),
        amount="2",
        unit="days",
    )
    response = client.post(reverse("plan-new"), data)
    assert response.status_code == 302
    plan = Plan.objects.get(key="trade-value")
    assert response["Location"] == reverse("plan", args=[plan.pk])
    assert plan.then == "long-term" and plan.current.number == 1
    assert list(plan.current.steps.values_list("name", flat=True)) == ["Appraisal call", "Appraisal email"]
    # The key is unique in the rooftop.
    response = client.post(reverse("plan-new"), data)
    assert response.status_code == 422 and "already has a plan with the key" in text_of(response)
    # Enrolled from the lead page by a manager.
    response = client.post(reverse("lead-plan-move", args=[lead.pk]), {"plan": plan.pk}, **HX)
    assert response.status_code == 200 and "Moved to Trade value." in text_of(response)
    assert "Offer Pat a free appraisal of the" in text_of(response)


# --------------------------------------------------------------------------- YAML


def test_export_downloads_the_rooftops_plans_as_yaml(client, manager, plans):
    client.force_login(manager)
    response = client.get(reverse("plans-export"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/yaml")
    assert response["Content-Disposition"] == 'attachment; filename="lakeside-honda-plans-2026-03-10.yaml"'
    text = response.content.decode()
    assert text == plans_dump(rooftop=manager.rooftop)
    assert "new-internet" in text and "About the {{ vehicle }}" in text


def test_import_loads_a_file_and_lists_every_problem_of_a_bad_one(client, manager, plans, lead):
    client.force_login(manager)
    text = client.get(reverse("plans-export")).content.decode()
    changed = text.replace("name: Second call", "name: Second call, with a smile")
    assert changed != text
    upload = SimpleUploadedFile("plans.yaml", changed.encode(), content_type="application/yaml")
    response = client.post(reverse("plans-import"), {"file": upload})
    assert response.status_code == 302, text_of(response)
    assert "1 plan(s) got a new version" in flashes(response)[0]
    assert plans["new"].current.number == 2
    assert Enrolment.objects.get(lead=lead).version.number == 1

    bad = "plans:\n  - key: broken\n    name: Broken\n    steps: []\ntransitions:\n  - {event: teleported, plan: nowhere}\n"
    upload = SimpleUploadedFile("bad.yaml", bad.encode(), content_type="application/yaml")
    response = client.post(reverse("plans-import"), {"file": upload})
    assert response.status_code == 422
    page = text_of(response)
    assert "Nothing was imported" in page
    assert "at least one step" in page and "teleported" in page and "nowhere" in page
    assert not Plan.objects.filter(key="broken").exists()
    upload = SimpleUploadedFile("latin1.yaml", "plans: café".encode("latin-1"))
    response = client.post(reverse("plans-import"), {"file": upload})
    assert response.status_code == 422 and "not UTF-8" in text_of(response)


# --------------------------------------------------------------------------- incentives


def test_incentive_candidates_and_re_engagement(client, manager, rooftop, plans, lead, consultant):
    visit_log(lead=lead, by=consultant, objection="payment", now=T0)
    pilot = json_lead(
        rooftop,
        first_name="Pia",
        emails=["pia@example.com"],
        vehicles=[{"year": 2024, "make": "Honda", "model": "Pilot"}],
    )
    client.force_login(manager)
    assert client.get(reverse("incentives")).status_code == 200
    response = client.post(
        reverse("incentives"),
        {
            "title": "0.9% APR on 2024 Civics",
            "kind": "incentive",
            "make": "Honda",
            "model": "civic",
            "year_from": 2024,
        },
    )
    incentive = Incentive.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("incentive", args=[incentive.pk])
    assert incentive.created_by == manager and incentive.rooftop == rooftop
    page = client.get(reverse("incentive", args=[incentive.pk]))
    assert [(lead_.pk, why) for lead_, why, _ in page.context["rows"]] == [(lead.pk, "Monthly payment")]
    html = text_of(page)
    assert "Pat Buyer" in html and "2024 Honda Civic" in html and "Alice Agent" in html
    assert "Monthly payment" in html and "Pia" not in html and "Re-engage selected" in html

    response = client.post(reverse("incentive-reengage", args=[incentive.pk]), {"lead": [lead.pk, pilot.pk]})
    assert response.status_code == 302
    assert flashes(response) == ["2 customers re-engaged about “0.9% APR on 2024 Civics”."]
    enrolment = Enrolment.objects.get(lead=lead, status="active", primary=True)
    assert enrolment.version.plan == plans["re-engagement"] and enrolment.incentive == incentive
    assert "already re-engaged" in text_of(client.get(reverse("incentive", args=[incentive.pk])))
    # The lead page shows the subject the customer will get, with the incentive in it.
    assert "“News: 0.9% APR on 2024 Civics”" in text_of(client.get(reverse("lead", args=[lead.pk])))

    response = client.post(reverse("incentive-reengage", args=[incentive.pk]), {})
    assert flashes(response) == ["Choose at least one customer to re-engage."]


def test_incentive_errors_are_messages_never_exception_pages(client, manager, rooftop, plans, lead):
    client.force_login(manager)
    response = client.post(reverse("incentives"), {"title": "Price drop", "kind": "price-drop"})
    assert response.status_code == 422
    assert "give its stock number" in text_of(response) and Incentive.objects.count() == 0
    incentive = Incentive.objects.create(rooftop=rooftop, title="Civic deal", make="Honda", created_at=T0)
    Transition.objects.filter(event="re-engage").delete()
    page = text_of(client.get(reverse("incentive", args=[incentive.pk])))
    assert "no re-engagement plan" in page
    response = client.post(reverse("incentive-reengage", args=[incentive.pk]), {"lead": [lead.pk]})
    assert response.status_code == 302
    assert flashes(response) == [
        "Nobody was re-engaged: the rooftop has no re-engagement plan (transition for the event re-engage)."
    ]
    # A re-engagement plan without steps: refused for the whole list, nobody half-enrolled.
    empty = Plan.objects.create(rooftop=rooftop, key="empty", name="Empty")
    Transition.objects.create(rooftop=rooftop, event="re-engage", plan=empty)
    response = client.post(reverse("incentive-reengage", args=[incentive.pk]), {"lead": [lead.pk]})
    assert flashes(response)[-1] == (
        "Nobody was re-engaged: the rooftop has no re-engagement plan (transition for the event re-engage)."
    )
    assert Enrolment.objects.get(lead=lead, status="active").version.plan == plans["new"]


# --------------------------------------------------------------------------- coverage


def test_coverage_lists_a_gap_and_puts_it_back_on_a_plan(client, manager, plans, lead):
    client.force_login(manager)
    assert "No gaps" in text_of(client.get(reverse("coverage")))
    Step.objects.filter(lead=lead).update(status="cancelled")
    page = client.get(reverse("coverage"))
    assert list(page.context["gaps"]) == [lead]
    html = text_of(page)
    assert f'href="{reverse("lead", args=[lead.pk])}"' in html and "New Internet" in html
    assert "Put back on a plan" in html
    response = client.post(reverse("coverage-repair", args=[lead.pk]), **HX)
    assert response.status_code == 200
    assert "is on Long Term again" in text_of(response) and "No gaps" in text_of(response)
    assert not coverage_gaps(rooftop=lead.rooftop).exists()
    response = client.post(reverse("coverage-repair", args=[lead.pk]))
    assert response.status_code == 302 and flashes(response) == ["Pat Buyer already has a next step."]


def test_coverage_repair_without_a_plan_says_why(client, manager, plans, lead):
    Step.objects.filter(lead=lead).update(status="cancelled")
    Transition.objects.filter(event="plan-finished").delete()
    client.force_login(manager)
    response = client.post(reverse("coverage-repair", args=[lead.pk]), **HX)
    assert response.status_code == 422 and "has no plan for it" in text_of(response)


# --------------------------------------------------------------------------- the lead page


def test_lead_page_shows_the_plan_panel(client, agent, plans, lead):
    client.force_login(agent)
    response = client.get(reverse("lead", args=[lead.pk]))
    page = text_of(response)
    assert 'id="plan-panel"' in page and "New Internet" in page and "v1" in page
    panel = response.context["plan_panel"]
    [current] = panel.plans
    assert [row.step.title for row in current.to_come] == ["First call", "Intro email", "Second call"]
    assert panel.next.title == "First call" and current.to_come[0].next and current.to_come[0].overdue
    assert not current.to_come[2].overdue
    assert "Hi Pat, this is Alice at Lakeside Honda." in page  # the script, merged
    assert "“About the 2024 Honda Civic”" in page  # the automatic email's subject
    assert "Tue Mar 10, 10:00 AM" in page and "Wed Mar 11, 10:00 AM" in page  # rooftop time, weekday
    assert "overdue" in page and "voicemail if no answer" in page
    assert "Move to plan" not in page  # managers only
    # A done step shows with its outcome.
    client.post(reverse("lead-attempt", args=[lead.pk]), {"channel": "call", "outcome": "no-answer"})
    page = text_of(client.get(reverse("lead", args=[lead.pk])))
    assert "Done (1)" in page and "no-answer" in page


def test_an_imported_lead_shows_the_steps_not_written_yet(client, manager, plans, lead):
    # An import writes each lead's first step only; the next is written when it ends.
    Step.objects.filter(lead=lead, plan_step__position__gt=1).delete()
    client.force_login(manager)
    response = client.get(reverse("lead", args=[lead.pk]))
    [current] = response.context["plan_panel"].plans
    assert [row.step.title for row in current.to_come] == ["First call"]
    assert [s.name for s in current.later] == ["Intro email", "Second call"]
    assert "Intro email (email, automatic) · Second call (call)" in text_of(response)


def test_forgot_to_say_adds_a_callback_at_the_top_and_done_closes_it(client, agent, plans, lead):
    client.force_login(agent)
    url = reverse("lead-callback", args=[lead.pk])
    response = client.post(url, {"point": "the 0.9% APR ends Friday"}, **HX)
    assert response.status_code == 200
    page = text_of(response)
    assert page.startswith('\n  <section id="lead-live"') or 'id="lead-live"' in page[:200]
    assert "Callback added at the top of your list." in page
    assert page.index("the 0.9% APR ends Friday") < page.index("First call")
    callback = Step.objects.get(lead=lead, plan_step__isnull=True)
    assert (
        callback.priority == 0
        and callback.assignee == agent
        and callback.script == "the 0.9% APR ends Friday"
    )
    assert response.context["plan_panel"].callbacks[0].step == callback
    response = client.post(url, {"point": "  "}, **HX)
    assert response.status_code == 422 and "flash-error" in text_of(response)
    response = client.post(reverse("lead-callback-done", args=[lead.pk, callback.pk]), {}, **HX)
    assert response.status_code == 200 and "Callback done." in text_of(response)
    callback.refresh_from_db()
    assert callback.status == "done" and "Call back now" not in text_of(response)
    # A plan step is not a callback.
    plan_step = Step.objects.filter(lead=lead, plan_step__isnull=False).first()
    assert client.post(reverse("lead-callback-done", args=[lead.pk, plan_step.pk])).status_code == 404


def test_a_visit_without_sale_moves_the_lead_to_its_objections_plan(client, consultant, plans, lead):
    client.force_login(consultant)
    response = client.post(
        reverse("lead-visit", args=[lead.pk]), {"objection": "price", "note": "wants $500 off"}, **HX
    )
    assert response.status_code == 200
    page = text_of(response)
    assert "Visit logged: Objection Price started." in page
    assert "Walk Pat through the numbers on the 2024 Honda Civic." in page
    assert "Visit, no sale: Price. wants $500 off" in page  # the timeline moved too
    enrolment = Enrolment.objects.get(lead=lead, status="active")
    assert enrolment.version.plan == plans["price"]
    assert [p.enrolment for p in response.context["plan_panel"].plans] == [enrolment]
    assert "Earlier plans (1)" in page
    # No plan for this objection: logged, the plan stays.
    response = client.post(reverse("lead-visit", args=[lead.pk]), {"objection": "credit"}, **HX)
    assert "No plan answers this objection" in text_of(response)
    assert Enrolment.objects.get(lead=lead, status="active") == enrolment
    response = client.post(reverse("lead-visit", args=[lead.pk]), {"objection": "astrology"}, **HX)
    assert response.status_code == 422


def test_plan_errors_on_the_lead_page_are_shown_not_raised(client, manager, plans, lead, rooftop):
    lead_status_change(lead=lead, user=manager, status="lost", reason="not interested", now=T0)
    client.force_login(manager)
    response = client.post(reverse("lead-visit", args=[lead.pk]), {"objection": "price"}, **HX)
    assert response.status_code == 422 and "the lead is closed" in text_of(response)
    assert not lead.events.filter(text__startswith="Visit, no sale").exists()
    assert "No plan: the lead is lost." in text_of(response)
    response = client.post(reverse("lead-visit", args=[lead.pk]), {"objection": "price"})
    assert response.status_code == 302 and flashes(response) == ["the lead is closed"]
    # An attempt whose transition names a plan without steps: the rule is ignored, the lead stays
    # on its plan, and the attempt is logged.
    other = json_lead(rooftop, first_name="Ola", emails=["ola@example.com"], owner=manager)
    Transition.objects.create(
        rooftop=rooftop, event="call-talked", plan=Plan.objects.create(rooftop=rooftop, key="x", name="X")
    )
    response = client.post(
        reverse("lead-attempt", args=[other.pk]), {"channel": "call", "outcome": "talked"}, **HX
    )
    assert response.status_code == 200 and other.events.filter(kind="attempt").exists()


def test_managers_move_a_lead_to_another_plan(client, manager, agent, plans, lead, other_rooftop):
    client.force_login(manager)
    page = text_of(client.get(reverse("lead", args=[lead.pk])))
    assert "Move to plan" in page
    response = client.post(reverse("lead-plan-move", args=[lead.pk]), {"plan": plans["sold"].pk}, **HX)
    assert response.status_code == 200 and "Moved to Sold." in text_of(response)
    assert Enrolment.objects.get(lead=lead, status="active").version.plan == plans["sold"]
    theirs = Plan.objects.create(rooftop=other_rooftop, key="theirs", name="Theirs")
    response = client.post(reverse("lead-plan-move", args=[lead.pk]), {"plan": theirs.pk}, **HX)
    assert response.status_code == 422
    client.force_login(agent)
    assert (
        client.post(reverse("lead-plan-move", args=[lead.pk]), {"plan": plans["new"].pk}, **HX).status_code
        == 403
    )


# --------------------------------------------------------------------------- queries stay flat


def test_plan_list_query_count_is_flat(client, manager, rooftop, plans, django_assert_max_num_queries):
    client.force_login(manager)
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("plans"))
    for n in range(10):
        plan = make_plan(rooftop, f"extra-{n}", [{"name": f"Step {i}", "channel": "call"} for i in range(8)])
        Transition.objects.create(rooftop=rooftop, event="visit-no-sale", condition=f"c{n}", plan=plan)
        enrol(lead=json_lead(rooftop, first_name=f"L{n}", emails=[f"l{n}@example.com"]), plan=plan, now=T0)
        v2 = PlanVersion.objects.create(plan=plan, number=2, created_at=T0)
        PlanStep.objects.create(version=v2, position=1, name="Only step", channel="call")
    # session, user, unread count, plans with their counts, transitions, templates count
    with django_assert_max_num_queries(7):
        response = client.get(reverse("plans"))
    assert len(response.context["plans"]) == 15
    with CaptureQueriesContext(connection) as many:
        client.get(reverse("plans"))
    assert len(many.captured_queries) == len(few.captured_queries)


def test_lead_page_query_count_is_flat_as_steps_grow(
    client, manager, rooftop, plans, lead, django_assert_max_num_queries
):
    client.force_login(manager)
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("lead", args=[lead.pk]))
    long_plan = make_plan(
        rooftop,
        "long-plan",
        [
            {
                "name": f"Call {i}",
                "amount": i,
                "unit": "days",
                "channel": "call",
                "script": "Hi {{ customer.first_name }} about the {{ vehicle }} and the {{ trade }}",
            }
            for i in range(15)
        ]
        + [
            {
                "name": f"Email {i}",
                "channel": "email",
                "action": "send",
                "template": MessageTemplate.objects.get(key="hello"),
            }
            for i in range(10)
        ],
    )
    enrol(lead=lead, plan=long_plan, now=NOW)
    for n in range(5):
        callback_add(lead=lead, by=manager, point=f"point {n}", now=NOW)
    enrol(lead=lead, plan=plans["price"], now=NOW)
    enrol(lead=lead, plan=long_plan, now=NOW)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(reverse("lead", args=[lead.pk]))
    assert len(response.context["plan_panel"].plans[0].to_come) == 25
    assert len(response.context["plan_panel"].earlier) == 3


# --------------------------------------------------------------------------- admin


def admin_url(model_or_obj, view: str, *args) -> str:
    opts = model_or_obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


PLAN_MODELS = [m for m in admin.site._registry if m._meta.app_label == "plans"]


def test_every_plans_model_has_an_admin():
    assert {m.__name__ for m in PLAN_MODELS} == {
        "MessageTemplate",
        "Plan",
        "PlanVersion",
        "Enrolment",
        "Step",
        "Transition",
        "Incentive",
    }


@pytest.mark.parametrize("model", PLAN_MODELS, ids=lambda m: m.__name__)
def test_plans_admin_pages_render(admin_client, plans, lead, incentive, model):
    callback_add(lead=lead, by=lead.owner, point="x", now=NOW)
    Enrolment.objects.filter(lead=lead).update(incentive=incentive)
    assert admin_client.get(admin_url(model, "changelist")).status_code == 200
    assert admin_client.get(admin_url(model, "changelist"), {"q": "pat"}).status_code == 200
    for obj in model._default_manager.order_by("pk")[:3]:
        assert admin_client.get(admin_url(model, "change", obj.pk)).status_code == 200
    model_admin = admin.site._registry[model]
    for name in getattr(model_admin, "list_filter", []):
        if isinstance(name, str) and "__" not in name:
            assert admin_client.get(admin_url(model, "changelist"), {f"{name}__exact": "x"}).status_code in (
                200,
                302,
            )
    if model in (Enrolment, Step):
        assert admin_client.get(admin_url(model, "add")).status_code == 403
    else:
        assert admin_client.get(admin_url(model, "add")).status_code == 200


def test_a_version_in_use_has_read_only_steps_and_is_copied_to_change(admin_client, plans, lead):
    v1 = plans["new"].current
    page = admin_client.get(admin_url(v1, "change", v1.pk))
    [inline] = page.context["inline_admin_formsets"]
    assert not inline.has_change_permission and not inline.has_add_permission
    data = form_data(page) | {"note": "the March version"}
    assert admin_client.post(admin_url(v1, "change", v1.pk), data).status_code == 302
    v1.refresh_from_db()
    assert v1.note == "the March version"
    assert "Copy as a new version" in text_of(page) or "keep its steps" in text_of(page)
    response = admin_client.post(
        admin_url(PlanVersion, "changelist"),
        {"action": "copy_as_new_version", "_selected_action": [v1.pk]},
        follow=True,
    )
    assert response.status_code == 200
    v2 = plans["new"].current
    assert v2.number == 2 and v2.note == "copied from v1"
    assert list(v2.steps.values_list("name", flat=True)) == ["First call", "Intro email", "Second call"]
    [inline] = admin_client.get(admin_url(v2, "change", v2.pk)).context["inline_admin_formsets"]
    assert inline.has_change_permission
    # Edited while no lead uses it: a send without a template is refused.
    page = admin_client.get(admin_url(v2, "change", v2.pk))
    data = form_data(page)
    data["steps-1-template"] = ""
    response = admin_client.post(admin_url(v2, "change", v2.pk), data)
    assert response.status_code == 200 and "An automatic send needs a template." in text_of(response)
    data = form_data(page)
    data["steps-2-name"] = "Second call, friendlier"
    response = admin_client.post(admin_url(v2, "change", v2.pk), data)
    assert response.status_code == 302
    assert v2.steps.get(position=3).name == "Second call, friendlier"
    assert v1.steps.get(position=3).name == "Second call"


def form_data(response) -> dict:
    data: dict = {}

    def add(form):
        for bound in form:
            value = bound.field.prepare_value(bound.value())
            if value is None or value is False:
                continue
            if value is True:
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


def test_message_templates_are_checked_with_plan_merge_fields(admin_client, rooftop, plans):
    base = {"rooftop": rooftop.pk, "key": "k", "name": "N", "channel": "email", "purpose": "marketing"}
    response = admin_client.post(
        admin_url(MessageTemplate, "add"), base | {"subject": "Hi {{ customer.nickname }}", "body": "x"}
    )
    assert response.status_code == 200 and "This template does not work" in text_of(response)
    response = admin_client.post(admin_url(MessageTemplate, "add"), base | {"subject": "", "body": "x"})
    assert "An email template needs a subject." in text_of(response)
    good = "{{ incentive.title }} for your {{ trade }}"
    response = admin_client.post(admin_url(MessageTemplate, "add"), base | {"subject": good, "body": good})
    assert response.status_code == 302
    template = MessageTemplate.objects.get(key="k")
    page = text_of(admin_client.get(admin_url(template, "change", template.pk)))
    assert "0.9% APR for 60 months for your" in page  # the preview, with a sample incentive
    hello = MessageTemplate.objects.get(key="hello")
    assert "New Internet" in text_of(admin_client.get(admin_url(hello, "change", hello.pk)))  # used by


def test_transitions_admin_checks_events_conditions_and_rooftops(admin_client, rooftop, other_rooftop, plans):
    theirs = Plan.objects.create(rooftop=other_rooftop, key="theirs", name="Theirs")
    data = {"rooftop": rooftop.pk, "event": "visit-no-sale", "condition": "astrology", "plan": theirs.pk}
    response = admin_client.post(admin_url(Transition, "add"), data)
    page = text_of(response)
    assert response.status_code == 200 and "One of: price" in page and "another rooftop" in page
    empty = Plan.objects.create(rooftop=rooftop, key="empty", name="Empty")
    data |= {"condition": "trade", "plan": empty.pk}
    assert "has no steps yet" in text_of(admin_client.post(admin_url(Transition, "add"), data))
    data |= {"plan": plans["price"].pk}
    assert admin_client.post(admin_url(Transition, "add"), data).status_code == 302


def test_every_skip_condition_has_words_for_the_editor():
    assert list(SKIP_IF) == list(SKIP_CONDITIONS)
    assert all(label != condition for condition, label in SKIP_IF.items())

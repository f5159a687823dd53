"""Plan files: the shipped defaults, the round trip, versioning on import, and bad files that
are refused with their place named and nothing written."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml

from pursuit.conftest import T0
from pursuit.leads.models import Customer, CustomerEmail, CustomerPhone, Lead, Vehicle
from pursuit.outreach.services import plan_merge_fields, template_render
from pursuit.plans import services
from pursuit.plans.files import (
    DEFAULTS,
    EVENTS,
    SKIP_CONDITIONS,
    PlanFileError,
    plans_dump,
    plans_install_defaults,
    plans_load,
)
from pursuit.plans.models import MessageTemplate, Plan, PlanStep, PlanVersion, Step, Transition

OBJECTION_PLANS = {
    "price": "unsold-price",
    "trade": "unsold-trade",
    "payment": "unsold-payment",
    "credit": "unsold-credit",
    "spouse": "unsold-spouse",
    "timing": "unsold-timing",
    "shopping": "unsold-shopping",
}
PLANS = {
    "new-internet",
    "phone-up",
    "walk-in",
    "unsold-visit",
    *OBJECTION_PLANS.values(),
    "appointment",
    "no-show",
    "missing-prospect",
    "long-term",
    "sold",
    "bought-elsewhere",
    "re-engagement",
}
# The events that move a lead to another plan, and where; the others keep the current plan.
MOVES = {
    ("arrived", ""): "new-internet",
    ("arrived", "internet"): "new-internet",
    ("arrived", "phone"): "phone-up",
    ("arrived", "walk-in"): "walk-in",
    ("arrived", "referral"): "phone-up",
    ("arrived", "other"): "new-internet",
    ("appointment-set", ""): "appointment",
    ("appointment-missed", ""): "no-show",
    ("visit-no-sale", ""): "unsold-visit",
    **{("visit-no-sale", objection): plan for objection, plan in OBJECTION_PLANS.items()},
    ("sold", ""): "sold",
    ("bought-elsewhere", ""): "bought-elsewhere",
    ("gone-silent", ""): "missing-prospect",
    ("plan-finished", ""): "long-term",
    ("re-engage", ""): "re-engagement",
}
KEEP_PLAN = {
    "call-no-answer",
    "call-voicemail",
    "call-talked",
    "call-bad-number",
    "appointment-shown",
    "reply-received",
    "opted-out",
    "deceased",
}

SMALL = """
templates:
  - key: hello
    name: Hello
    channel: email
    subject: "Hello {{ customer.first_name }}"
    body: |
      Hi {{ customer.first_name or 'there' }}, about the {{ vehicle or 'car' }}.
plans:
  - key: quick
    name: Quick
    then: slow
    steps:
      - name: Say hello
        after: 0 minutes
        from: enrolment
        window: any
        channel: email
        action: send
        template: hello
      - name: Call
        after: 2 hours
        window: customer-day
        channel: call
        voicemail: true
        skip_if: [talked]
        script: Call {{ customer.first_name }}.
  - key: slow
    name: Slow
    steps:
      - name: Monthly
        after: 30 days
        channel: call
        repeat: true
transitions:
  - {event: arrived, plan: quick}
  - {event: plan-finished, plan: slow}
"""


def steps_of(plan: Plan, number: int | None = None) -> list[PlanStep]:
    version = plan.versions.get(number=number) if number else plan.current
    return list(version.steps.order_by("position"))


def nothing_written(rooftop) -> bool:
    return not (
        MessageTemplate.objects.filter(rooftop=rooftop).exists()
        or Plan.objects.filter(rooftop=rooftop).exists()
        or PlanVersion.objects.filter(plan__rooftop=rooftop).exists()
        or Transition.objects.filter(rooftop=rooftop).exists()
    )


# --------------------------------------------------------------------------- the defaults


@pytest.fixture
def defaults(rooftop, manager):
    return plans_install_defaults(rooftop=rooftop, now=T0, by=manager)


def test_defaults_load_and_create_every_plan_template_and_transition(rooftop, defaults):
    plans = {p.key: p for p in Plan.objects.filter(rooftop=rooftop)}
    assert set(plans) == PLANS
    assert defaults == {
        "templates": MessageTemplate.objects.filter(rooftop=rooftop).count(),
        "plans": len(PLANS),
        "versions": len(PLANS),
        "transitions": len(MOVES),
    }
    rules = {(t.event, t.condition): t.plan.key for t in Transition.objects.filter(rooftop=rooftop)}
    assert rules == MOVES
    # Every event is either mapped or deliberately keeps the current plan.
    assert {event for event, _ in MOVES} | KEEP_PLAN == set(EVENTS)
    for plan in plans.values():
        assert plan.current.number == 1 and plan.current.note == "imported"
        assert steps_of(plan), plan.key
        if plan.then:
            assert plan.then in plans


def test_new_internet_plan_is_speed_first(rooftop, defaults):
    plan = Plan.objects.get(rooftop=rooftop, key="new-internet")
    steps = steps_of(plan)
    calls = [s for s in steps if s.channel == "call"]
    assert len(calls) >= 6
    # Six calls within the first four days (offsets are from the previous step's due time).
    elapsed, early_calls = dt.timedelta(0), 0
    unit = {"minutes": "minutes", "hours": "hours", "days": "days", "business-days": "days"}
    for step in steps:
        base = dt.timedelta(0) if step.counted_from == "enrolment" else elapsed
        elapsed = base + dt.timedelta(**{unit[step.unit]: step.amount})
        if step.channel == "call" and elapsed <= dt.timedelta(days=4):
            early_calls += 1
    assert early_calls >= 6
    assert [c.voicemail for c in calls[:2]] == [True, True]
    assert not any(c.voicemail for c in calls[2:])
    assert {s.channel for s in steps} >= {"call", "email", "text"}
    first = steps[0]
    assert (first.channel, first.action, first.window, first.amount) == ("email", "send", "any", 0)
    assert all(s.window == "customer-day" for s in steps if s.channel in ("call", "text"))
    assert plan.then == "long-term"


def test_defaults_send_no_automatic_marketing_texts_and_use_the_right_windows(rooftop, defaults):
    steps = PlanStep.objects.filter(version__plan__rooftop=rooftop)
    # Automatic marketing texts need written consent most leads lack: only the appointment's
    # confirmation and reminder go out by themselves.
    automatic = steps.filter(channel="text", action="send")
    assert automatic.exists() and not automatic.exclude(template__purpose="transactional").exists()
    assert not steps.filter(channel__in=["call", "text"]).exclude(window="customer-day").exists()
    # "any" only for an answer or a confirmation the customer is waiting for.
    for step in steps.filter(window="any"):
        assert (step.channel, step.action, step.amount) == ("email", "send", 0), step.name


def test_defaults_long_term_plans_repeat_and_appointment_is_transactional(rooftop, defaults):
    for key in ("long-term", "sold", "bought-elsewhere"):
        plan = Plan.objects.get(rooftop=rooftop, key=key)
        *rest, last = steps_of(plan)
        assert last.repeat and last.amount > 0 and not any(s.repeat for s in rest), key
        assert plan.then == ""
    appointment = Plan.objects.get(rooftop=rooftop, key="appointment")
    assert appointment.kind == Plan.Kind.TRANSACTIONAL
    confirmation = steps_of(appointment)[0]
    assert (confirmation.action, confirmation.amount, confirmation.template.purpose) == (
        "send",
        0,
        "transactional",
    )
    missing = steps_of(Plan.objects.get(rooftop=rooftop, key="missing-prospect"))
    assert missing[0].channel == "call" and "let you down" in missing[0].script
    assert missing[1].channel == "email"
    re_engagement = steps_of(Plan.objects.get(rooftop=rooftop, key="re-engagement"))
    assert all("incentive.title" in s.template.subject + s.template.body for s in re_engagement if s.template)


def test_default_templates_render_with_a_real_leads_fields(rooftop, defaults, agent):
    customer = Customer.objects.create(rooftop=rooftop, first_name="Ann", last_name="Lee", created_at=T0)
    lead = Lead.objects.create(
        rooftop=rooftop, customer=customer, owner=agent, received_at=T0, created_at=T0, type="internet"
    )
    Vehicle.objects.create(lead=lead, year=2026, make="Honda", model="Accord")
    bare = Lead.objects.create(
        rooftop=rooftop,
        customer=Customer.objects.create(rooftop=rooftop, created_at=T0),
        received_at=T0,
        created_at=T0,
    )
    for fields in (plan_merge_fields(lead), plan_merge_fields(bare)):
        for template in MessageTemplate.objects.filter(rooftop=rooftop):
            for source in (template.subject, template.body):
                out = template_render(source, fields)
                assert "{" not in out and "Undefined" not in out, template.key
            assert template_render(template.body, fields).strip()


def test_a_new_internet_lead_is_enrolled_in_the_default_plan(rooftop, defaults, agent):
    customer = Customer.objects.create(rooftop=rooftop, first_name="Ann", created_at=T0)
    CustomerEmail.objects.create(customer=customer, rooftop=rooftop, address="ann@example.com")
    CustomerPhone.objects.create(
        customer=customer, rooftop=rooftop, number="+13125550199", match_key="+13125550199", type="mobile"
    )
    lead = Lead.objects.create(
        rooftop=rooftop, customer=customer, owner=agent, received_at=T0, created_at=T0, type="internet"
    )
    enrolment = services.lead_plan_start(lead=lead, now=T0)
    assert enrolment.version.plan.key == "new-internet"
    steps = list(Step.objects.filter(enrolment=enrolment).order_by("due_at", "id"))
    assert len(steps) == len(steps_of(enrolment.version.plan))
    assert steps[0].due_at == T0 and steps[0].action == "send"


# --------------------------------------------------------------------------- round trip, versions


def test_round_trip_dump_load_dump_is_identical(rooftop, other_rooftop, defaults):
    text = plans_dump(rooftop=rooftop)
    counts = plans_load(rooftop=other_rooftop, text=text, now=T0)
    assert counts["plans"] == len(PLANS) and counts["versions"] == len(PLANS)
    assert plans_dump(rooftop=other_rooftop) == text
    # The dump is plain YAML with every plan in it.
    assert {p["key"] for p in yaml.safe_load(text)["plans"]} == PLANS


def test_loading_the_same_file_twice_makes_no_new_version(rooftop, manager):
    first = plans_load(rooftop=rooftop, text=SMALL, now=T0, by=manager)
    assert first == {"templates": 1, "plans": 2, "versions": 2, "transitions": 2}
    again = plans_load(rooftop=rooftop, text=SMALL, now=T0 + dt.timedelta(days=1))
    assert again == {"templates": 1, "plans": 2, "versions": 0, "transitions": 2}
    assert PlanVersion.objects.filter(plan__rooftop=rooftop).count() == 2
    assert Transition.objects.filter(rooftop=rooftop).count() == 2
    # The defaults too: installing twice changes nothing.
    plans_install_defaults(rooftop=rooftop, now=T0)
    assert plans_install_defaults(rooftop=rooftop, now=T0)["versions"] == 0


def test_changing_one_step_makes_version_two_and_keeps_version_one(rooftop, manager):
    plans_load(rooftop=rooftop, text=SMALL, now=T0)
    quick = Plan.objects.get(rooftop=rooftop, key="quick")
    before = [(s.pk, s.name, s.amount, s.unit) for s in steps_of(quick)]

    later = T0 + dt.timedelta(days=3)
    edited = SMALL.replace("after: 2 hours", "after: 3 hours").replace("name: Quick", "name: Quicker")
    counts = plans_load(rooftop=rooftop, text=edited, now=later, by=manager)
    assert counts["versions"] == 1

    quick.refresh_from_db()
    assert quick.name == "Quicker"
    v2 = quick.current
    assert (v2.number, v2.created_at, v2.created_by, v2.note) == (2, later, manager, "imported")
    assert [(s.amount, s.unit) for s in steps_of(quick, 2)] == [(0, "minutes"), (3, "hours")]
    assert [(s.pk, s.name, s.amount, s.unit) for s in steps_of(quick, 1)] == before
    # The plan that did not change has no second version.
    assert Plan.objects.get(rooftop=rooftop, key="slow").versions.count() == 1


def test_import_updates_templates_and_transitions_in_place(rooftop):
    plans_load(rooftop=rooftop, text=SMALL, now=T0)
    edited = SMALL.replace("Hello {{ customer.first_name }}", "Hi {{ customer.first_name }}").replace(
        "{event: arrived, plan: quick}", "{event: arrived, plan: slow}"
    )
    plans_load(rooftop=rooftop, text=edited, now=T0)
    assert MessageTemplate.objects.get(rooftop=rooftop, key="hello").subject == "Hi {{ customer.first_name }}"
    assert Transition.objects.get(rooftop=rooftop, event="arrived", condition="").plan.key == "slow"
    assert MessageTemplate.objects.filter(rooftop=rooftop).count() == 1


def test_steps_may_use_a_template_already_in_the_rooftop(rooftop, other_rooftop):
    plans_load(rooftop=rooftop, text=SMALL, now=T0)
    only_plans = """
plans:
  - key: another
    name: Another
    steps:
      - {name: Hello again, after: 1 day, channel: email, action: send, template: hello}
"""
    plans_load(rooftop=rooftop, text=only_plans, now=T0)
    step = steps_of(Plan.objects.get(rooftop=rooftop, key="another"))[0]
    assert step.template.key == "hello" and step.template.rooftop == rooftop
    # Another rooftop's templates are not this rooftop's.
    with pytest.raises(PlanFileError, match="template 'hello' is neither in the file nor in the rooftop"):
        plans_load(rooftop=other_rooftop, text=only_plans, now=T0)


def test_skip_conditions_are_stored_in_canonical_order(rooftop):
    text = SMALL.replace("skip_if: [talked]", "skip_if: [talked, replied, talked]")
    plans_load(rooftop=rooftop, text=text, now=T0)
    call = steps_of(Plan.objects.get(rooftop=rooftop, key="quick"))[1]
    assert call.skip_if == ["replied", "talked"]
    assert set(call.skip_if) <= set(SKIP_CONDITIONS)
    # The same conditions in another order are the same steps: no new version.
    again = SMALL.replace("skip_if: [talked]", "skip_if: [replied, talked]")
    assert plans_load(rooftop=rooftop, text=again, now=T0)["versions"] == 0


# --------------------------------------------------------------------------- bad files


BAD = [
    (
        "unknown unit",
        SMALL.replace("after: 2 hours", "after: 2 weeks"),
        "plans[quick] step 2 'Call': unknown unit 'weeks' in after '2 weeks'",
    ),
    (
        "missing template",
        SMALL.replace("template: hello", "template: goodbye"),
        "plans[quick] step 1 'Say hello': template 'goodbye' is neither in the file nor in the rooftop",
    ),
    (
        "send step without template",
        SMALL.replace("        template: hello\n", ""),
        "plans[quick] step 1 'Say hello': a send step needs a template",
    ),
    (
        "template that does not render",
        SMALL.replace("Hi {{ customer.first_name or 'there' }}", "Hi {{ customer.nickname }}"),
        "templates[hello]: body does not render: 'dict object' has no attribute 'nickname'",
    ),
    (
        "template with a syntax error",
        SMALL.replace(
            'subject: "Hello {{ customer.first_name }}"', 'subject: "Hello {{ customer.first_name "'
        ),
        "templates[hello]: subject does not render",
    ),
    (
        "script that does not render",
        SMALL.replace("script: Call {{ customer.first_name }}.", "script: Call {{ customer.phone.number }}."),
        "plans[quick] step 2 'Call': script does not render",
    ),
    (
        "unknown event",
        SMALL.replace("{event: arrived, plan: quick}", "{event: arrival, plan: quick}"),
        "transitions[1]: unknown event 'arrival'",
    ),
    (
        "unknown condition",
        SMALL.replace(
            "{event: arrived, plan: quick}", "{event: arrived, condition: carrier-pigeon, plan: quick}"
        ),
        "transitions[1]: condition 'carrier-pigeon' of 'arrived' is not one of",
    ),
    (
        "condition on an event that takes none",
        SMALL.replace(
            "{event: plan-finished, plan: slow}", "{event: plan-finished, condition: price, plan: slow}"
        ),
        "transitions[2]: event 'plan-finished' takes no condition, got 'price'",
    ),
    (
        "transition to an unknown plan",
        SMALL.replace("{event: arrived, plan: quick}", "{event: arrived, plan: fast}"),
        "transitions[1]: plan 'fast' is neither in the file nor in the rooftop",
    ),
    (
        "unknown then",
        SMALL.replace("then: slow", "then: slowest"),
        "plans[quick]: then 'slowest' is neither a plan in the file nor in the rooftop",
    ),
    (
        "send by call",
        SMALL.replace(
            "        channel: email\n        action: send", "        channel: call\n        action: send"
        ),
        "plans[quick] step 1 'Say hello': a send step's channel must be email or text, not 'call'",
    ),
    (
        "template of another channel",
        SMALL.replace(
            "        channel: email\n        action: send", "        channel: text\n        action: send"
        ),
        "plans[quick] step 1 'Say hello': template 'hello' is an email template; this step sends by text",
    ),
    (
        "unknown channel",
        SMALL.replace("channel: call\n        voicemail", "channel: pigeon\n        voicemail"),
        "plans[quick] step 2 'Call': channel 'pigeon' is not one of",
    ),
    (
        "unknown window",
        SMALL.replace("window: customer-day", "window: night"),
        "plans[quick] step 2 'Call': window 'night' is not one of",
    ),
    (
        "unknown skip condition",
        SMALL.replace("skip_if: [talked]", "skip_if: [rained]"),
        "plans[quick] step 2 'Call': skip_if 'rained' is not one of",
    ),
    (
        "unknown role",
        SMALL.replace("voicemail: true", "voicemail: true\n        role: intern"),
        "plans[quick] step 2 'Call': role 'intern' is not one of",
    ),
    (
        "voicemail given as text",
        SMALL.replace("voicemail: true", "voicemail: 'yes'"),
        "plans[quick] step 2 'Call': voicemail must be true or false",
    ),
    (
        "malformed after",
        SMALL.replace("after: 2 hours", "after: soon"),
        "plans[quick] step 2 'Call': after 'soon' must read '<number> <unit>'",
    ),
    (
        "a repeat that is not the last step",
        SMALL.replace(
            "        script: Call {{ customer.first_name }}.\n",
            "        repeat: true\n        script: Call {{ customer.first_name }}.\n"
            "      - {name: After, after: 1 day, channel: call}\n",
        ),
        "plans[quick] step 2 'Call': only the last step can repeat",
    ),
    (
        "unknown field",
        SMALL.replace("voicemail: true", "voicemail: true\n        colour: red"),
        "plans[quick] step 2 'Call': unknown field 'colour'",
    ),
    (
        "plan without steps",
        SMALL.replace(
            "    steps:\n      - name: Monthly\n        after: 30 days\n        channel: call\n        repeat: true\n",
            "    steps: []\n",
        ),
        "plans[slow]: a plan needs at least one step",
    ),
    (
        "email template without subject",
        SMALL.replace('    subject: "Hello {{ customer.first_name }}"\n', ""),
        "templates[hello]: an email template needs a subject",
    ),
    (
        "duplicate plan",
        SMALL.replace(
            "transitions:", SMALL[SMALL.index("  - key: slow") : SMALL.index("transitions:")] + "transitions:"
        ),
        "plans: key 'slow' appears twice",
    ),
    (
        "duplicate transition",
        SMALL.replace("transitions:\n", "transitions:\n  - {event: arrived, condition: '', plan: slow}\n"),
        "transitions: event 'arrived' with condition '' appears twice",
    ),
    ("not YAML", "plans: [unclosed", "not valid YAML"),
    ("not a mapping", "- just\n- a list\n", "a plan file is a mapping"),
]


@pytest.mark.parametrize("text,message", [(t, m) for _, t, m in BAD], ids=[name for name, _, _ in BAD])
def test_bad_files_name_the_place_and_write_nothing(rooftop, text, message):
    with pytest.raises(PlanFileError) as caught:
        plans_load(rooftop=rooftop, text=text, now=T0)
    assert any(message in problem for problem in caught.value.problems), caught.value.problems
    assert nothing_written(rooftop)


def test_every_problem_is_reported_at_once(rooftop):
    text = SMALL.replace("after: 2 hours", "after: 2 weeks").replace("then: slow", "then: slowest")
    with pytest.raises(PlanFileError) as caught:
        plans_load(rooftop=rooftop, text=text, now=T0)
    assert len(caught.value.problems) == 2
    assert str(caught.value) == "\n".join(caught.value.problems)


def test_a_bad_import_leaves_the_rooftop_as_it_was(rooftop):
    plans_load(rooftop=rooftop, text=SMALL, now=T0)
    before = plans_dump(rooftop=rooftop)
    bad = SMALL.replace("name: Quick", "name: Renamed").replace(
        "{event: arrived, plan: quick}", "{event: nope, plan: quick}"
    )
    with pytest.raises(PlanFileError):
        plans_load(rooftop=rooftop, text=bad, now=T0)
    assert plans_dump(rooftop=rooftop) == before
    assert PlanVersion.objects.filter(plan__rooftop=rooftop).count() == 2


def test_a_template_used_by_steps_keeps_its_channel(rooftop):
    plans_load(rooftop=rooftop, text=SMALL, now=T0)
    as_text = """
templates:
  - {key: hello, name: Hello, channel: text, body: "Hi {{ customer.first_name }}"}
"""
    with pytest.raises(PlanFileError, match=r"templates\[hello\]: is an email template used by plan steps"):
        plans_load(rooftop=rooftop, text=as_text, now=T0)
    assert MessageTemplate.objects.get(rooftop=rooftop, key="hello").channel == "email"


def test_python_tags_are_refused(rooftop, tmp_path):
    marker = tmp_path / "pwned"
    for tag in (
        f'!!python/object/apply:os.system ["touch {marker}"]',
        "!!python/object:pursuit.plans.models.Plan {key: x}",
        "!!python/name:os.system",
    ):
        text = f"plans:\n  - key: evil\n    name: {tag}\n    steps: []\n"
        with pytest.raises(PlanFileError, match="YAML tags such as !!python"):
            plans_load(rooftop=rooftop, text=text, now=T0)
    assert not marker.exists()
    assert nothing_written(rooftop)


def test_an_empty_rooftop_dumps_a_loadable_file(rooftop, other_rooftop):
    text = plans_dump(rooftop=rooftop)
    assert yaml.safe_load(text) == {"templates": [], "plans": [], "transitions": []}
    assert plans_load(rooftop=other_rooftop, text=text, now=T0) == {
        "templates": 0,
        "plans": 0,
        "versions": 0,
        "transitions": 0,
    }


def test_defaults_file_is_plain_safe_yaml():
    data = yaml.safe_load(DEFAULTS.read_text(encoding="utf-8"))
    assert set(data) == {"templates", "plans", "transitions"}


def test_a_field_written_twice_is_refused(rooftop):
    text = SMALL.replace("after: 2 hours", "after: 2 hours\n        after: 3 hours")
    line = text.splitlines().index("        after: 3 hours") + 1
    with pytest.raises(PlanFileError, match=f"line {line}: the field 'after' is written twice"):
        plans_load(rooftop=rooftop, text=text, now=T0)
    assert nothing_written(rooftop)


def test_an_alias_bomb_is_cheap_to_refuse(rooftop):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    text = (
        "\n".join(lines)
        + "\nplans:\n  - {key: bomb, name: Bomb, steps: [{name: x, after: 1 day, channel: *a9}]}\n"
    )
    with pytest.raises(PlanFileError) as caught:
        plans_load(rooftop=rooftop, text=text, now=T0)
    assert "channel a list is not one of" in str(caught.value)
    assert len(str(caught.value)) < 2000


def test_conditions_match_lead_types_and_objections():
    from pursuit.plans.files import CONDITIONS

    assert set(CONDITIONS["arrived"]) == {"", *Lead.Type.values}
    assert set(CONDITIONS["visit-no-sale"]) == {"", *services.OBJECTIONS}


def test_the_docs_show_every_default_plan_and_step():
    docs = (DEFAULTS.parents[2] / "docs" / "plans.md").read_text(encoding="utf-8")
    for plan in yaml.safe_load(DEFAULTS.read_text(encoding="utf-8"))["plans"]:
        section = docs.split(f"(`{plan['key']}`)\n", 1)[1].split("\n### ", 1)[0]
        rows = [line for line in section.splitlines() if line.startswith("| ") and line[2].isdigit()]
        assert [row.split(" | ")[1] for row in rows] == [step["name"] for step in plan["steps"]], plan["key"]

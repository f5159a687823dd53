"""Plans: schedules in the rooftop's hours and the customer's day, enrolment on arrival, steps
done by attempts, automatic emails by the worker, transitions, and no lead without a next step."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.core import mail

from pursuit.conftest import T0
from pursuit.intake.services import payload_receive
from pursuit.intake.tests.test_intake import adf
from pursuit.leads.models import Lead
from pursuit.leads.services import attempt_log, lead_status_change
from pursuit.plans.models import Enrolment, MessageTemplate, Plan, PlanStep, PlanVersion, Step, Transition
from pursuit.plans.services import coverage_gaps, enrol, lead_ensure_plan, next_step
from pursuit.work.services import run_due_once

CHI = ZoneInfo("America/Chicago")


def make_plan(rooftop, key, steps, kind="primary", then=""):
    plan = Plan.objects.create(
        rooftop=rooftop, key=key, name=key.replace("-", " ").title(), kind=kind, then=then
    )
    version = PlanVersion.objects.create(plan=plan, number=1, created_at=T0)
    for position, step in enumerate(steps, start=1):
        PlanStep.objects.create(version=version, position=position, **step)
    return plan


@pytest.fixture
def plans(rooftop):
    hello = MessageTemplate.objects.create(
        rooftop=rooftop,
        key="hello",
        name="Hello",
        channel="email",
        subject="About the {{ vehicle }}",
        body="Hi {{ customer.first_name }}",
    )
    new = make_plan(
        rooftop,
        "new-internet",
        [
            {
                "name": "First call",
                "amount": 0,
                "unit": "minutes",
                "counted_from": "enrolment",
                "window": "customer-day",
                "channel": "call",
                "action": "task",
                "voicemail": True,
            },
            {
                "name": "Intro email",
                "amount": 0,
                "unit": "minutes",
                "counted_from": "enrolment",
                "window": "any",
                "channel": "email",
                "action": "send",
                "template": hello,
                "skip_if": ["replied"],
            },
            {
                "name": "Second call",
                "amount": 1,
                "unit": "business-days",
                "window": "customer-day",
                "channel": "call",
                "action": "task",
                "skip_if": ["talked"],
            },
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
                "window": "business-hours",
                "channel": "email",
                "action": "send",
                "template": hello,
                "repeat": True,
            },
        ],
    )
    sold = make_plan(
        rooftop,
        "sold",
        [
            {
                "name": "Thank you",
                "amount": 1,
                "unit": "days",
                "window": "business-hours",
                "channel": "call",
                "action": "task",
            },
        ],
    )
    price = make_plan(
        rooftop,
        "objection-price",
        [
            {
                "name": "Price call",
                "amount": 1,
                "unit": "days",
                "window": "business-hours",
                "channel": "call",
                "action": "task",
            },
        ],
    )
    for event, condition, plan in [
        ("arrived", "", new),
        ("plan-finished", "", long_term),
        ("sold", "", sold),
        ("visit-no-sale", "price", price),
    ]:
        Transition.objects.create(rooftop=rooftop, event=event, condition=condition, plan=plan)
    return {"new": new, "long-term": long_term, "sold": sold, "price": price}


def new_lead(rooftop, now=T0, **kw) -> Lead:
    _, [result] = payload_receive(
        rooftop=rooftop,
        channel="adf-http",
        now=now,
        content=adf(kw.pop("first", "Ann"), "Lee", kw.pop("email", "ann@example.com"), **kw),
    )
    return Lead.objects.get(pk=result.lead)


def open_steps(lead):
    return list(
        Step.objects.filter(lead=lead, status__in=Step.OPEN)
        .order_by("due_at", "id")
        .values_list("plan_step__name", "due_at")
    )


def test_a_new_lead_is_enrolled_with_its_schedule(rooftop, bdc_team, plans):
    lead = new_lead(rooftop)  # T0 = Tuesday 10:00 in Chicago (daylight time)
    steps = open_steps(lead)
    assert [name for name, _ in steps] == ["First call", "Intro email", "Second call"]
    assert steps[0][1] == T0 and steps[1][1] == T0
    assert steps[2][1] == dt.datetime(2026, 3, 11, 10, 0, tzinfo=CHI)  # one business day later
    assert lead.events.filter(kind="plan", text__startswith="Plan started: New Internet").exists()


def test_calls_wait_for_the_customers_day_and_the_rooftops_hours(rooftop, bdc_team, plans):
    late = dt.datetime(2026, 3, 10, 21, 30, tzinfo=CHI)  # after closing
    lead = new_lead(rooftop, now=late)
    first_call = dict(open_steps(lead))["First call"]
    assert first_call == dt.datetime(2026, 3, 11, 9, 0, tzinfo=CHI)
    # A Californian customer: 09:00 in Chicago is 07:00 for them, too early; 11:00 Chicago is 09:00.
    lead2 = new_lead(rooftop, now=late, first="Cal", email="cal@example.com", phone="+1 415 555 0100")
    lead2.customer.time_zone = "America/Los_Angeles"
    lead2.customer.save()
    Step.objects.filter(lead=lead2).delete()
    Enrolment.objects.filter(lead=lead2).delete()
    enrol(lead=lead2, plan=plans["new"], now=late)
    assert dict(open_steps(lead2))["First call"] == dt.datetime(2026, 3, 11, 11, 0, tzinfo=CHI)


def test_a_call_attempt_completes_the_due_call_and_talking_skips_the_next(rooftop, bdc_team, agent, plans):
    lead = new_lead(rooftop)
    attempt_log(
        lead=lead, user=lead.owner, channel="call", outcome="talked", now=T0 + dt.timedelta(minutes=3)
    )
    assert Step.objects.get(lead=lead, plan_step__name="First call").status == "done"
    assert [name for name, _ in open_steps(lead)] == ["Intro email", "Second call"]


def test_the_worker_sends_automatic_steps_once_and_the_plan_moves_on(rooftop, bdc_team, plans, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    lead = new_lead(rooftop)
    while run_due_once(now=T0):
        pass
    intro = Step.objects.get(lead=lead, plan_step__name="Intro email")
    assert intro.status == "done"
    sent = [m for m in mail.outbox if m.subject == "About the 2024 Honda Civic"]
    assert (
        len(sent) == 1 and sent[0].extra_headers["Message-ID"] == f"<step.{intro.pk}@lakesidehonda.example>"
    )
    # Crash after sending, before recording: claimed again, nothing sent twice.
    Step.objects.filter(pk=intro.pk).update(status="claimed", claimed_until=T0, claimed_by="dead")
    run_due_once(now=T0 + dt.timedelta(minutes=5))
    assert len([m for m in mail.outbox if m.subject == "About the 2024 Honda Civic"]) == 1
    # A crash after the record but before the batch closed also lost the timeline entry: it is
    # written from the record, once.
    lead.events.filter(kind="step", data__step=intro.pk).delete()
    Step.objects.filter(pk=intro.pk).update(status="claimed", claimed_until=T0, claimed_by="dead")
    run_due_once(now=T0 + dt.timedelta(minutes=10))
    intro.refresh_from_db()
    assert intro.status == "done" and intro.outcome == "sent (recorded after a restart)"
    assert lead.events.filter(kind="step", data__step=intro.pk).count() == 1
    assert len([m for m in mail.outbox if m.subject == "About the 2024 Honda Civic"]) == 1


def test_the_last_step_hands_over_to_long_term_follow_up_which_repeats(rooftop, bdc_team, plans, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    lead = new_lead(rooftop)
    for step in Step.objects.filter(lead=lead, action="task"):
        attempt_log(lead=lead, user=lead.owner, channel="call", outcome="no-answer", now=step.due_at)
    run_due_once(now=T0 + dt.timedelta(days=2))
    assert next_step(lead).plan_step.name == "Monthly email"
    monthly = next_step(lead)
    run_due_once(now=monthly.due_at)
    again = next_step(lead)
    assert again.plan_step.name == "Monthly email" and again.occurrence == 1 and again.due_at > monthly.due_at


def test_sold_moves_to_the_sold_plan_and_lost_stops_everything(rooftop, bdc_team, manager, plans):
    lead = new_lead(rooftop)
    lead_status_change(lead=lead, user=manager, status="sold", now=T0 + dt.timedelta(days=1))
    assert [name for name, _ in open_steps(lead)] == ["Thank you"]
    other = new_lead(rooftop, first="Bo", email="bo@example.com")
    lead_status_change(lead=other, user=manager, status="lost", reason="not interested", now=T0)
    assert open_steps(other) == []
    assert not coverage_gaps(rooftop=rooftop).exists()  # closed leads need no next step


def test_one_primary_plan_at_a_time(rooftop, bdc_team, plans):
    lead = new_lead(rooftop)
    enrol(lead=lead, plan=plans["price"], now=T0, reason="visit-no-sale: price")
    assert Enrolment.objects.filter(lead=lead, status="active", primary=True).count() == 1
    assert [name for name, _ in open_steps(lead)] == ["Price call"]


def test_editing_a_plan_does_not_change_enrolled_leads(rooftop, bdc_team, plans):
    lead = new_lead(rooftop)
    v2 = PlanVersion.objects.create(plan=plans["new"], number=2, created_at=T0)
    PlanStep.objects.create(version=v2, position=1, name="Only call", channel="call", action="task")
    assert [name for name, _ in open_steps(lead)] == ["First call", "Intro email", "Second call"]
    later = new_lead(rooftop, first="Bo", email="bo@example.com")
    assert [name for name, _ in open_steps(later)] == ["Only call"]


def test_coverage_finds_and_repairs_a_lead_without_a_next_step(rooftop, bdc_team, plans):
    lead = new_lead(rooftop)
    Step.objects.filter(lead=lead).update(status="cancelled")
    assert list(coverage_gaps(rooftop=rooftop)) == [lead]
    lead_ensure_plan(lead=lead, now=T0)
    assert not coverage_gaps(rooftop=rooftop).exists()
    assert next_step(lead).plan_step.name == "Monthly email"


def test_historical_imports_go_to_long_term_follow_up(rooftop, bdc_team, plans):
    _, [result] = payload_receive(
        rooftop=rooftop, channel="import-xml", content=adf("Old", "Lead", "o@example.com"), now=T0
    )
    assert [name for name, _ in open_steps(Lead.objects.get(pk=result.lead))] == ["Monthly email"]


def test_a_bulk_csv_import_enrols_every_lead(rooftop, bdc_team, plans):
    from pursuit.intake.services import csv_import, payload_store

    rows = "".join(f"P{i},Lee,p{i}@example.com\n" for i in range(20))
    payload = payload_store(
        rooftop=rooftop,
        channel="import-csv",
        now=T0,
        name="x.csv",
        content=("first_name,last_name,email\n" + rows).encode(),
    )
    csv_import(payload=payload, now=T0)
    assert Lead.objects.count() == 20 and not coverage_gaps(rooftop=rooftop).exists()


def test_check_coverage_command_and_the_daily_job(rooftop, bdc_team, manager, plans):
    from io import StringIO

    from django.core.management import call_command

    from pursuit.work.models import Notification
    from pursuit.work.services import daily_jobs_schedule

    lead = new_lead(rooftop)
    Step.objects.filter(lead=lead).update(status="cancelled")
    out = StringIO()
    with pytest.raises(SystemExit):
        call_command("check_coverage", stdout=out)
    assert f"lead {lead.pk}" in out.getvalue() and "1 open leads without a next step" in out.getvalue()
    daily_jobs_schedule(now=T0)
    daily_jobs_schedule(now=T0)  # idempotent: one job per day
    while run_due_once(now=T0):
        pass
    assert not coverage_gaps().exists()
    assert Notification.objects.filter(user=manager, kind="coverage").exists()


def test_forgot_to_say_is_a_callback_at_the_top_that_does_not_touch_the_plan(rooftop, bdc_team, plans):
    from pursuit.plans.services import callback_add, callback_done

    lead = new_lead(rooftop)
    attempt_log(
        lead=lead, user=lead.owner, channel="call", outcome="talked", now=T0 + dt.timedelta(minutes=2)
    )
    before = open_steps(lead)
    attempts = lead.events.filter(kind="attempt").count()
    callback = callback_add(
        lead=lead, by=lead.owner, point="the 0.9% APR ends Friday", now=T0 + dt.timedelta(minutes=3)
    )
    assert (
        callback.priority == 0
        and callback.due_at == T0 + dt.timedelta(minutes=3)
        and callback.assignee == lead.owner
    )
    callback_done(step=callback, by=lead.owner, now=T0 + dt.timedelta(minutes=4), note="told them")
    assert open_steps(lead) == before
    assert lead.events.filter(kind="attempt").count() == attempts
    # Still a call: the caps count it.
    from pursuit.compliance.models import Touch

    assert Touch.objects.filter(customer=lead.customer, channel="call", what="Called back").count() == 1


def test_a_visit_without_sale_starts_the_plan_for_its_objection(rooftop, bdc_team, consultant, plans):
    from pursuit.plans.services import visit_log

    lead = new_lead(rooftop)
    visit_log(lead=lead, by=consultant, objection="price", now=T0 + dt.timedelta(days=1))
    assert [name for name, _ in open_steps(lead)] == ["Price call"]
    assert lead.events.filter(text__startswith="Visit, no sale: Price").exists()


def test_re_engagement_finds_matching_unsold_prospects_and_mentions_the_incentive(
    rooftop, bdc_team, manager, plans, settings
):
    from pursuit.plans.models import Incentive
    from pursuit.plans.services import reengage, reengage_candidates, visit_log

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    offer = MessageTemplate.objects.create(
        rooftop=rooftop,
        key="offer",
        name="Offer",
        channel="email",
        subject="News: {{ incentive.title }}",
        body="{{ incentive.title }}",
    )
    plan = make_plan(
        rooftop,
        "re-engagement",
        [
            {
                "name": "Offer email",
                "amount": 0,
                "unit": "minutes",
                "counted_from": "enrolment",
                "window": "any",
                "channel": "email",
                "action": "send",
                "template": offer,
            }
        ],
    )
    Transition.objects.create(rooftop=rooftop, event="re-engage", plan=plan)
    civic = new_lead(rooftop)
    visit_log(lead=civic, by=manager, objection="payment", now=T0)
    new_lead(rooftop, first="Bo", email="bo@example.com", vehicle="2024 Honda Pilot")
    incentive = Incentive.objects.create(
        rooftop=rooftop,
        title="0.9% APR on 2024 Civics",
        make="Honda",
        model="Civic",
        year_from=2024,
        created_at=T0,
    )
    candidates = reengage_candidates(incentive=incentive)
    assert [(lead.pk, why) for lead, why in candidates] == [(civic.pk, "Monthly payment")]
    assert reengage(incentive=incentive, leads=[civic], by=manager, now=T0 + dt.timedelta(days=2)) == 1
    while run_due_once(now=T0 + dt.timedelta(days=2)):
        pass
    assert any(m.subject == "News: 0.9% APR on 2024 Civics" for m in mail.outbox)


def test_an_import_writes_the_first_step_and_each_next_one_when_the_previous_ends(rooftop, bdc_team):
    from pursuit.intake.services import csv_import, payload_store
    from pursuit.plans.files import plans_install_defaults
    from pursuit.plans.services import step_finish

    plans_install_defaults(rooftop=rooftop, now=T0)
    payload = payload_store(
        rooftop=rooftop,
        channel="import-csv",
        now=T0,
        name="x.csv",
        content=b"first_name,last_name,email\nAnn,Lee,ann@example.com\nBo,Chen,bo@example.com\n",
    )
    csv_import(payload=payload, now=T0)
    lead = Lead.objects.get(customer__first_name="Ann")
    [first] = Step.objects.filter(lead=lead)
    assert first.enrolment.version.plan.key == "long-term"
    step_finish(step=first, now=first.due_at)
    following = next_step(lead)
    assert following.plan_step.position == 2 and following.due_at > first.due_at
    assert Step.objects.filter(lead=lead).count() == 2


def test_the_worker_moves_imported_plans_on_one_step_at_a_time(rooftop, bdc_team, settings):
    """Imports write only the first step; the worker's batch must write each next one."""
    from pursuit.intake.services import csv_import, payload_store
    from pursuit.plans.files import plans_install_defaults

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    plans_install_defaults(rooftop=rooftop, now=T0)
    rows = "".join(f"P{i},Lee,p{i}@example.com\n" for i in range(7))
    payload = payload_store(
        rooftop=rooftop,
        channel="import-csv",
        now=T0,
        name="x.csv",
        content=f"first_name,last_name,email\n{rows}".encode(),
    )
    csv_import(payload=payload, now=T0)
    firsts = list(Step.objects.filter(lead__rooftop=rooftop).select_related("plan_step"))
    assert len(firsts) == 7 and {s.plan_step.position for s in firsts} == {1}
    # Turn the first steps into due automatic emails, then run them in batches of 3.
    template = MessageTemplate.objects.filter(rooftop=rooftop, channel="email").first()
    PlanStep.objects.filter(pk=firsts[0].plan_step_id).update(
        action="send", channel="email", template=template, skip_if=[]
    )
    Step.objects.filter(pk__in=[s.pk for s in firsts]).update(action="send", channel="email", due_at=T0)
    while run_due_once(now=T0, limit=3):
        pass
    assert len(mail.outbox) == 7 and len({m.extra_headers["Message-ID"] for m in mail.outbox}) == 7
    for step in firsts:
        step.refresh_from_db()
        assert step.status == "done" and step.outcome == "sent"
        following = next_step(step.lead)
        assert following.plan_step.position == 2 and following.due_at > T0
        address = f"{step.lead.customer.first_name.lower()}@example.com"
        assert step.lead.events.filter(kind="step", text__contains=f"emailed to {address}").count() == 1


def test_a_step_a_person_closed_while_the_worker_held_it_stays_closed(rooftop, bdc_team, plans, settings):
    from pursuit.plans.services import _Finished, _steps_close

    lead = new_lead(rooftop)
    intro = Step.objects.get(lead=lead, plan_step__name="Intro email")
    Step.objects.filter(pk=intro.pk).update(status="claimed", claimed_by="w1", claimed_until=T0)
    Step.objects.filter(pk=intro.pk).update(status="cancelled", outcome="plan stopped by maria")
    intro.refresh_from_db()
    _steps_close([_Finished(intro, "done", "sent to x")], now=T0, worker="w1")
    intro.refresh_from_db()
    assert intro.status == "cancelled" and intro.outcome == "plan stopped by maria"


def test_stop_conditions_deceased_do_not_contact_and_one_channel(rooftop, bdc_team, manager, plans):
    from pursuit.plans.services import customer_opt_out, customer_stop

    lead = new_lead(rooftop)
    customer_opt_out(customer=lead.customer, channel="email", now=T0, by=manager)
    assert [name for name, _ in open_steps(lead)] == ["First call", "Second call"]  # the email step is gone
    assert lead.events.filter(text__contains="opted out of email").exists()
    customer_stop(customer=lead.customer, reason="deceased", now=T0, by=manager)
    lead.refresh_from_db()
    assert lead.status == "closed" and open_steps(lead) == [] and not coverage_gaps().exists()
    other = new_lead(rooftop, first="Bo", email="bo@example.com")
    for channel in ("call", "email", "text"):
        customer_opt_out(customer=other.customer, channel=channel, now=T0)
    other.refresh_from_db()
    assert other.status == "closed" and other.customer.do_not_contact


def test_a_warm_prospect_who_goes_silent_gets_the_truth_seeking_plan_once(rooftop, bdc_team, plans):
    from pursuit.plans.services import silence_check_run

    missing = make_plan(
        rooftop,
        "missing-prospect",
        [
            {
                "name": "Honest call",
                "amount": 0,
                "unit": "minutes",
                "counted_from": "enrolment",
                "window": "any",
                "channel": "call",
                "action": "task",
            }
        ],
    )
    Transition.objects.create(rooftop=rooftop, event="gone-silent", plan=missing)
    lead = new_lead(rooftop)
    cold = new_lead(rooftop, first="Cy", email="cy@example.com")  # never talked: not warm
    attempt_log(lead=lead, user=lead.owner, channel="call", outcome="talked", now=T0)
    silence_check_run(None, now=T0 + dt.timedelta(days=6))
    assert next_step(lead).plan_step.name != "Honest call"
    silence_check_run(None, now=T0 + dt.timedelta(days=8))
    assert next_step(lead).plan_step.name == "Honest call"
    assert not Step.objects.filter(lead=cold, plan_step__name="Honest call").exists()
    step_count = Step.objects.filter(lead=lead).count()
    silence_check_run(None, now=T0 + dt.timedelta(days=9))
    assert Step.objects.filter(lead=lead).count() == step_count  # once per silence

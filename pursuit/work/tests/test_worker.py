"""The worker: the automatic first answer, the speed-to-lead ladder with a moved clock,
retries, leases, and real worker processes (two of them on PostgreSQL) never sending twice."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
import urllib.parse
from collections import Counter

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import connection

from pursuit.conftest import T0
from pursuit.intake.services import payload_receive
from pursuit.intake.tests.test_intake import adf
from pursuit.leads.models import Lead, LeadEvent
from pursuit.leads.services import attempt_log
from pursuit.outreach.models import OutboundEmail, ResponseTemplate
from pursuit.work.models import Job, Notification
from pursuit.work.services import BACKOFF, job_run, jobs_claim, run_due_once

MIN = dt.timedelta(minutes=1)


@pytest.fixture
def locmem(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    return mail.outbox


def new_lead(rooftop, first="Ann", last="Lee", email="ann@example.com", now=T0, **kw) -> Lead:
    _, [result] = payload_receive(
        rooftop=rooftop, channel="adf-http", content=adf(first, last, email, **kw), now=now
    )
    return Lead.objects.select_related("owner").get(pk=result.lead)


def run_until_idle(now) -> None:
    while run_due_once(now=now):
        pass


def kinds(lead) -> list[str]:
    return list(lead.events.order_by("at", "id").values_list("kind", flat=True))


# --------------------------------------------------------------------------- the first answer


def test_the_automatic_answer_goes_from_the_owner_at_once(rooftop, bdc_team, agent, locmem):
    lead = new_lead(rooftop)
    run_until_idle(T0 + dt.timedelta(seconds=1))
    answer = next(m for m in locmem if m.to == ["ann@example.com"])
    assert answer.from_email == "Alice Agent <sales@lakesidehonda.example>"
    assert answer.reply_to == ["alice@example.com"]
    assert answer.subject == "2024 Honda Civic at Lakeside Honda"
    assert "Hi Ann," in answer.body and "Alice Agent" in answer.body and "(312) 555-0111" in answer.body
    assert "(312) 555-0100" in answer.body and "100 Lake St, Chicago, IL 60601" in answer.body
    assert answer.extra_headers["Message-ID"] == f"<auto-response.{lead.pk}@lakesidehonda.example>"
    lead.refresh_from_db()
    # Speed to lead, honestly: the automatic answer has its own time; no human attempt yet.
    assert lead.auto_response_at == T0 + dt.timedelta(seconds=1)
    assert lead.first_attempt_at is None and lead.first_response_seconds() is None
    assert OutboundEmail.objects.get(lead=lead, kind="auto-response").status == "sent"
    assert "auto-response" in kinds(lead)


def test_the_first_answer_is_not_held_for_business_hours(rooftop, bdc_team, locmem):
    three_am_sunday = dt.datetime(2026, 3, 8, 9, 0, tzinfo=dt.UTC)  # 03:00 in Chicago, a Sunday
    lead = new_lead(rooftop, now=three_am_sunday)
    run_until_idle(three_am_sunday)
    lead.refresh_from_db()
    assert lead.auto_response_at == three_am_sunday


def test_a_rooftop_template_with_merge_fields(rooftop, bdc_team, locmem):
    ResponseTemplate.objects.create(
        rooftop=rooftop,
        subject="Re: {{ vehicle }} for {{ customer.first_name }}",
        body="{{ owner.name }} / {{ owner.phone }} / {{ rooftop.name }} / {{ customer.nickname }}.",
    )
    new_lead(rooftop)
    run_until_idle(T0)
    answer = next(m for m in locmem if m.to == ["ann@example.com"])
    assert answer.subject == "Re: 2024 Honda Civic for Ann"
    assert answer.body == "Alice Agent / (312) 555-0111 / Lakeside Honda / ."


@pytest.mark.parametrize(
    "escape",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ customer.__class__ }}",
        "{{ customer.clear() }}",
        "{% for x in range(10**9) %}{% endfor %}x",
    ],
)
def test_a_template_cannot_leave_the_sandbox_and_the_customer_still_gets_an_answer(
    rooftop, bdc_team, locmem, escape
):
    ResponseTemplate.objects.create(rooftop=rooftop, subject="Hello", body=escape)
    lead = new_lead(rooftop)
    run_until_idle(T0)
    answer = next(m for m in locmem if m.to == ["ann@example.com"])
    assert "Hi Ann," in answer.body and "class" not in answer.body
    assert "template does not render" in lead.events.get(kind="auto-response").text


def test_a_crash_after_sending_does_not_send_again(rooftop, bdc_team, locmem):
    lead = new_lead(rooftop)
    run_until_idle(T0)
    sent = len(locmem)
    # As if a worker died after the mail server accepted the message but before the job was
    # marked done: the job is claimed with a lease that has run out.
    job = Job.objects.get(lead=lead, kind="auto-response")
    Job.objects.filter(pk=job.pk).update(status="claimed", claimed_until=T0 + MIN, claimed_by="dead:1")
    assert run_due_once(now=T0 + 3 * MIN) >= 1
    assert len(locmem) == sent
    assert Job.objects.get(pk=job.pk).status == "done"
    assert lead.events.filter(kind="auto-response").count() == 1


def test_a_closed_lead_gets_no_automatic_answer(rooftop, bdc_team, locmem):
    lead = new_lead(rooftop)
    Lead.objects.filter(pk=lead.pk).update(status="lost")
    run_until_idle(T0)
    assert not [m for m in locmem if m.to == ["ann@example.com"]]
    assert "auto-response-skipped" in kinds(lead)


# --------------------------------------------------------------------------- the ladder


def test_the_ladder_climbs_with_the_clock(rooftop, bdc_team, agent, agent2, manager, locmem):
    lead = new_lead(rooftop)
    run_until_idle(T0)
    run_until_idle(T0 + MIN + dt.timedelta(seconds=59))
    assert "reminder" not in kinds(lead)
    run_until_idle(T0 + 2 * MIN)
    assert "reminder" in kinds(lead)
    assert Notification.objects.filter(user=agent, kind="reminder", lead=lead).exists()
    run_until_idle(T0 + 5 * MIN)
    lead.refresh_from_db()
    assert lead.owner == agent2 and "handed-off" in kinds(lead)
    assert Notification.objects.filter(user=agent2, kind="assigned", lead=lead).exists()
    assert Notification.objects.filter(user=agent, kind="handed-off", lead=lead).exists()
    run_until_idle(T0 + 14 * MIN)
    assert "escalated" not in kinds(lead)
    run_until_idle(T0 + 15 * MIN)
    assert "escalated" in kinds(lead)
    assert Notification.objects.filter(user=manager, kind="escalated", lead=lead).exists()
    assert any(m.to == ["maria@example.com"] for m in locmem)  # managers are told by email too


def test_logging_an_attempt_stops_the_ladder(rooftop, bdc_team, agent, manager, locmem):
    lead = new_lead(rooftop)
    run_until_idle(T0 + 2 * MIN)
    attempt_log(lead=lead, user=agent, channel="call", outcome="voicemail", now=T0 + 3 * MIN)
    run_until_idle(T0 + 60 * MIN)
    lead.refresh_from_db()
    assert lead.owner == agent and lead.status == "working"
    assert lead.first_attempt_at == T0 + 3 * MIN and lead.first_response_seconds() == 180
    assert "handed-off" not in kinds(lead) and "escalated" not in kinds(lead)
    assert set(
        Job.objects.filter(lead=lead, kind__in=["ladder-handoff", "ladder-escalate"]).values_list(
            "status", flat=True
        )
    ) == {"cancelled"}


def test_an_attempt_while_a_rung_is_claimed_still_wins(rooftop, bdc_team, agent, manager):
    lead = new_lead(rooftop)
    claimed = [j for j in jobs_claim(now=T0 + 15 * MIN, worker="w1", limit=50) if j.kind == "ladder-escalate"]
    attempt_log(lead=lead, user=agent, channel="call", outcome="talked", now=T0 + 15 * MIN)
    job_run(claimed[0], now=T0 + 15 * MIN)
    assert "escalated" not in kinds(lead)


def test_handoff_can_be_switched_off(rooftop, bdc_team, agent, manager):
    rooftop.handoff_enabled = False
    rooftop.save()
    lead = new_lead(rooftop)
    run_until_idle(T0 + 15 * MIN)
    lead.refresh_from_db()
    assert lead.owner == agent and "handed-off" not in kinds(lead) and "escalated" in kinds(lead)


def test_the_ladder_follows_the_rooftops_minutes(rooftop, bdc_team, manager):
    rooftop.remind_owner_after, rooftop.handoff_after, rooftop.manager_after = 1, 3, 10
    rooftop.save()
    lead = new_lead(rooftop)
    run_until_idle(T0 + MIN)
    assert "reminder" in kinds(lead)
    run_until_idle(T0 + 9 * MIN)
    assert "escalated" not in kinds(lead)
    run_until_idle(T0 + 10 * MIN)
    assert "escalated" in kinds(lead)


def test_the_worker_command_runs_on_the_real_clock_moved_by_time_machine(
    rooftop, bdc_team, manager, locmem, time_machine
):
    time_machine.move_to(T0, tick=False)
    lead = new_lead(rooftop)
    call_command("worker", once=True)
    assert "auto-response" in kinds(lead) and "reminder" not in kinds(lead)
    time_machine.move_to(T0 + 16 * MIN, tick=False)
    call_command("worker", once=True)
    assert {"reminder", "handed-off", "escalated"} <= set(kinds(lead))


# --------------------------------------------------------------------------- failures and leases


def test_mail_server_down_retries_with_backoff_then_fails(rooftop, bdc_team, settings):
    from pursuit.conftest import free_port

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 2
    lead = new_lead(rooftop)
    job = Job.objects.get(lead=lead, kind="auto-response")
    now = T0
    for attempt, delay in enumerate(BACKOFF, start=1):
        run_due_once(now=now)
        job.refresh_from_db()
        assert job.status == "pending" and job.attempts == attempt and job.due_at == now + delay
        assert "Error" in job.last_error
        now = job.due_at
    run_due_once(now=now)
    job.refresh_from_db()
    assert job.status == "failed"
    assert OutboundEmail.objects.get(lead=lead, kind="auto-response").status == "failed"
    assert "could not be sent" in lead.events.get(kind="auto-response-skipped").text
    lead.refresh_from_db()  # handed off meanwhile: the owner now is the one told
    assert Notification.objects.filter(lead=lead, kind="auto-response-failed", user=lead.owner).exists()


def test_a_refused_address_fails_at_once_and_the_loop_goes_on(rooftop, bdc_team, smtp_server):
    bad = new_lead(rooftop, "Bad", "Address", "nobody@refused.example")
    good = new_lead(rooftop, "Good", "Address", "good@example.com")
    run_until_idle(T0)
    assert Job.objects.get(lead=bad, kind="auto-response").status == "failed"
    assert Job.objects.get(lead=good, kind="auto-response").status == "done"
    assert f"<auto-response.{good.pk}@lakesidehonda.example>" in smtp_server.message_ids()


def test_a_batch_of_messages_goes_over_one_connection(rooftop, bdc_team, smtp_server):
    for i in range(4):
        new_lead(rooftop, f"P{i}", "Lee", f"p{i}@example.com")
    assert run_due_once(now=T0, limit=50) >= 8  # four answers, four staff emails
    assert len(smtp_server.messages) >= 8 and smtp_server.sessions == 1


def test_a_lease_that_ran_out_is_claimed_again_and_the_late_worker_cannot_overwrite(rooftop, bdc_team):
    new_lead(rooftop)
    [first] = [j for j in jobs_claim(now=T0, worker="w1", limit=10) if j.kind == "auto-response"]
    assert not [j for j in jobs_claim(now=T0 + MIN, worker="w2", limit=10) if j.pk == first.pk]
    [again] = [j for j in jobs_claim(now=T0 + 3 * MIN, worker="w2", limit=10) if j.pk == first.pk]
    assert again.claimed_by == "w2" and again.attempts == 2
    # w1 wakes up late and its handler fails: recording the failure must not touch w2's claim.
    first.kind, first.lead, first.lead_id = "ladder-remind", None, None
    assert job_run(first, now=T0 + 4 * MIN) is False
    row = Job.objects.get(pk=first.pk)
    assert (row.status, row.claimed_by, row.last_error) == ("claimed", "w2", "")


# --------------------------------------------------------------------------- real worker processes


def database_url() -> str:
    """The test database, for processes the tests start."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db["USER"] or "postgres"
    if db["PASSWORD"]:
        user += ":" + urllib.parse.quote(db["PASSWORD"], safe="")
    return f"postgres://{user}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _worker(smtp_port: int, name: str) -> subprocess.Popen:
    env = os.environ | {
        "DATABASE_URL": database_url(),
        "EMAIL_URL": f"smtp://127.0.0.1:{smtp_port}",
        "PURSUIT_WORKER_POLL_SECONDS": "0.05",
        "PURSUIT_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "pursuit.cli", "worker", "--batch", "1", "--name", name], env=env
    )


def _wait_for_jobs(timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Job.objects.filter(status__in=["pending", "claimed"], due_at__lte=time_now()).exists():
            return
        time.sleep(0.2)
    raise AssertionError("the workers did not finish in time")


def time_now():
    from pursuit.lib import clock

    return clock.now()


@pytest.mark.django_db(transaction=True)
def test_a_worker_process_sends_the_first_answer_through_a_real_smtp_server(rooftop, bdc_team, smtp_server):
    from pursuit.lib import clock

    lead = new_lead(rooftop, now=clock.now())
    worker = _worker(smtp_server.port, "solo")
    try:
        _wait_for_jobs()
    finally:
        worker.terminate()
        worker.wait(10)
    assert f"<auto-response.{lead.pk}@lakesidehonda.example>" in smtp_server.message_ids()
    lead.refresh_from_db()
    assert lead.auto_response_at is not None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_on_postgresql_never_send_one_answer_twice(rooftop, bdc_team, smtp_server):
    if connection.vendor != "postgresql":
        pytest.skip("runs on PostgreSQL (DATABASE_URL=postgres://...)")
    from pursuit.lib import clock

    now = clock.now()
    leads = [new_lead(rooftop, f"P{i}", "Lee", f"p{i}@example.com", now=now) for i in range(60)]
    workers = [_worker(smtp_server.port, "w1"), _worker(smtp_server.port, "w2")]
    try:
        _wait_for_jobs()
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(10)
    ids = Counter(smtp_server.message_ids())
    wanted = {f"<auto-response.{lead.pk}@lakesidehonda.example>" for lead in leads}
    assert wanted <= set(ids)
    assert max(ids.values()) == 1, [i for i, n in ids.items() if n > 1]
    assert set(Job.objects.values_list("claimed_by", flat=True)) >= {"w1", "w2"}  # both really worked
    assert LeadEvent.objects.filter(kind="auto-response").count() == 60

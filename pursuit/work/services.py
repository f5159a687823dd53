"""Timed work as database rows: scheduling, claiming with a lease, running, retrying.

Locking rules (read before changing anything here):

- A job is claimed by moving it from pending (or claimed with an expired lease) to claimed, with
  `claimed_until = now + lease`, inside one short transaction. On PostgreSQL the candidate rows
  are read with `SELECT ... FOR UPDATE SKIP LOCKED`, so any number of workers share the backlog
  and never claim one row twice; the UPDATE also re-checks the status it read. On SQLite the
  whole transaction holds the database write lock (IMMEDIATE transactions, see settings), which
  gives the same guarantee with one worker or several.
- Handlers run outside the claim transaction. A worker that dies while running a job leaves it
  claimed; when the lease runs out another worker claims it again. Handlers must therefore be
  safe to run twice: each one re-checks its conditions and looks for its own record (e.g. the
  sent message's Message-ID) before acting.
- A failing handler never stops the loop: the error is recorded on the row and the job is
  rescheduled with backoff, or marked failed when it is permanent or out of attempts.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
from collections.abc import Callable

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils.module_loading import import_string

from pursuit.work.models import Job, Notification

log = logging.getLogger(__name__)

# kind -> "module.function(job, *, now)". Dotted paths keep this module free of imports from
# the apps whose work it runs.
HANDLERS: dict[str, str] = {
    "auto-response": "pursuit.outreach.services.auto_response_run",
    "notify-email": "pursuit.outreach.services.notification_email_run",
    "ladder-remind": "pursuit.leads.services.ladder_remind_run",
    "ladder-handoff": "pursuit.leads.services.ladder_handoff_run",
    "ladder-escalate": "pursuit.leads.services.ladder_escalate_run",
    "coverage-check": "pursuit.plans.services.coverage_check_run",
    "silence-check": "pursuit.plans.services.silence_check_run",
    "text-send": "pursuit.texting.services.text_send_run",
    "appointment-cancel-email": "pursuit.appointments.services.appointment_cancel_email_run",
    "mailbox-poll": "pursuit.outreach.inbound.mailbox_poll_run",
    "email-by-hand": "pursuit.outreach.compose.email_by_hand_run",
}

# kind -> "module.function(job, *, now, error)", called once when a job has failed for good, so
# that the failure reaches a person (e.g. the lead's timeline and its owner).
ON_FAILURE: dict[str, str] = {
    "auto-response": "pursuit.outreach.services.auto_response_failed",
}

# Delay before each retry; after the last one the job is marked failed.
BACKOFF = (
    dt.timedelta(seconds=30),
    dt.timedelta(minutes=2),
    dt.timedelta(minutes=10),
    dt.timedelta(hours=1),
    dt.timedelta(hours=6),
)


class PermanentError(Exception):
    """Raised by a handler when retrying cannot help (a refused address, a deleted lead)."""


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def job_schedule(
    *,
    kind: str,
    due_at: dt.datetime,
    now: dt.datetime,
    lead=None,
    key: str | None = None,
    data: dict | None = None,
    priority: int = 10,
) -> Job:
    """Schedule `kind` to run at or after `due_at`. With a `key`, scheduling the same work twice
    returns the existing row instead of making a second one (the key is unique)."""
    if kind not in HANDLERS:
        raise ValueError(f"no handler for job kind {kind!r}")
    fields = {
        "kind": kind,
        "due_at": due_at,
        "priority": priority,
        "lead": lead,
        "data": data or {},
        "created_at": now,
    }
    if key is None:
        return Job.objects.create(**fields)
    try:
        with transaction.atomic():
            return Job.objects.create(key=key, **fields)
    except IntegrityError:
        return Job.objects.get(key=key)


def jobs_cancel(*, lead, kinds: tuple[str, ...], now: dt.datetime) -> int:
    """Cancel a lead's pending jobs of these kinds (a claimed one re-checks when it runs)."""
    return Job.objects.filter(lead=lead, kind__in=kinds, status=Job.Status.PENDING).update(
        status=Job.Status.CANCELLED, done_at=now
    )


def notify(*, user, text: str, kind: str, now: dt.datetime, lead=None, email: bool = True) -> Notification:
    """Tell a member of staff something: in the app at once, and by email from the worker."""
    note = Notification.objects.create(user=user, lead=lead, kind=kind, text=text[:500], created_at=now)
    if email and user.email:
        job_schedule(
            kind="notify-email",
            due_at=now,
            now=now,
            lead=lead,
            key=f"notify-email:{note.pk}",
            data={"notification": note.pk},
        )
    return note


def rows_claim(
    model,
    *,
    due: list[Q],
    order_by: tuple[str, ...],
    now: dt.datetime,
    worker: str,
    limit: int,
    lease_seconds: int | None = None,
    related: tuple[str, ...] = (),
    prefetch: tuple[str, ...] = (),
) -> list:
    """Claim up to `limit` rows of `model` matching any of `due` for `worker` (see the locking
    rules above), loaded with `related` and `prefetch`. The model has status, claimed_until,
    claimed_by and attempts fields.

    Each condition is its own query, so each can use its own partial index: one query with an
    OR of them makes PostgreSQL scan the whole table, which with millions of future steps costs
    hundreds of milliseconds per poll even when nothing is due.
    """
    lease = dt.timedelta(seconds=lease_seconds or settings.PURSUIT_WORKER_LEASE_SECONDS)
    with transaction.atomic():
        ids: list[int] = []
        for condition in due:
            if len(ids) >= limit:
                break
            ids += list(
                model.objects.select_for_update(skip_locked=True)
                .filter(condition)
                .order_by(*order_by)
                .values_list("id", flat=True)[: limit - len(ids)]
            )
        if not ids:
            return []
        # The rows are locked by this transaction, so they still match: one UPDATE claims them all.
        model.objects.filter(id__in=ids).update(
            status="claimed", claimed_until=now + lease, claimed_by=worker, attempts=F("attempts") + 1
        )
        rows = model.objects.filter(id__in=ids).order_by(*order_by)
        if related:
            rows = rows.select_related(*related)
        if prefetch:
            rows = rows.prefetch_related(*prefetch)
        return list(rows)


def jobs_claim(
    *, now: dt.datetime, worker: str, limit: int = 10, lease_seconds: int | None = None
) -> list[Job]:
    """Claim up to `limit` due jobs for `worker`."""
    due = [Q(status=Job.Status.PENDING, due_at__lte=now), Q(status=Job.Status.CLAIMED, claimed_until__lt=now)]
    return rows_claim(
        Job,
        due=due,
        order_by=("priority", "due_at", "id"),
        now=now,
        worker=worker,
        limit=limit,
        lease_seconds=lease_seconds,
    )


def job_run(job: Job, *, now: dt.datetime) -> bool:
    """Run one claimed job and record the outcome. Returns True when it succeeded."""
    handler: Callable = import_string(HANDLERS[job.kind])
    try:
        handler(job, now=now)
    except Exception as exc:  # one bad row must never stop the worker
        permanent = isinstance(exc, PermanentError) or job.attempts > len(BACKOFF)
        log.warning(
            "job %s (%s) failed on attempt %s: %s",
            job.pk,
            job.kind,
            job.attempts,
            exc,
            exc_info=not isinstance(exc, PermanentError),
        )
        update = {"last_error": f"{type(exc).__name__}: {exc}"[:2000], "claimed_until": None}
        if permanent:
            update.update(status=Job.Status.FAILED, done_at=now)
        else:
            update.update(status=Job.Status.PENDING, due_at=now + BACKOFF[job.attempts - 1])
        # Only the worker holding the claim may record it (a slow worker whose lease expired
        # and was re-claimed must not overwrite the new claim).
        held = Job.objects.filter(pk=job.pk, claimed_by=job.claimed_by, status=Job.Status.CLAIMED).update(
            **update
        )
        if held and permanent and job.kind in ON_FAILURE:
            try:
                import_string(ON_FAILURE[job.kind])(job, now=now, error=update["last_error"])
            except Exception:
                log.exception("job %s: the failure hook failed too", job.pk)
        return False
    Job.objects.filter(pk=job.pk, status=Job.Status.CLAIMED).update(
        status=Job.Status.DONE, done_at=now, claimed_until=None
    )
    return True


def run_due_once(
    *,
    now: dt.datetime,
    worker: str | None = None,
    limit: int = 10,
    clock: Callable[[], dt.datetime] | None = None,
) -> int:
    """Claim and run the jobs due at `now`. Returns how many were run. The worker command calls
    this in a loop, passing `clock` so each job records the time it really ran; tests call it
    with a moved clock."""
    from pursuit.outreach.services import mail_session
    from pursuit.plans.services import steps_run_due

    with mail_session():
        jobs = jobs_claim(now=now, worker=worker or worker_name(), limit=limit)
        for job in jobs:
            job_run(job, now=clock() if clock else now)
        # Automatic plan steps after the jobs: a first answer and a reminder come before follow-up.
        steps = steps_run_due(now=now, worker=worker or worker_name(), limit=limit, clock=clock)
    return len(jobs) + steps


def minute_jobs_schedule(*, now: dt.datetime) -> None:
    """The mailbox poll, once a minute across all workers (the key makes one per minute)."""
    if settings.PURSUIT_IMAP_URL:
        job_schedule(kind="mailbox-poll", key=f"mailbox-poll:{now:%Y%m%d%H%M}", now=now, due_at=now)


def daily_jobs_schedule(*, now: dt.datetime) -> None:
    """Make sure today's daily jobs exist (each worker calls this; the unique key makes one)."""
    day = now.date()
    job_schedule(
        kind="silence-check",
        key=f"silence-check:{day.isoformat()}",
        now=now,
        due_at=dt.datetime.combine(day, dt.time(5, 30), tzinfo=dt.UTC),
    )
    job_schedule(
        kind="coverage-check",
        key=f"coverage-check:{day.isoformat()}",
        now=now,
        due_at=dt.datetime.combine(day, dt.time(6, 0), tzinfo=dt.UTC),
    )

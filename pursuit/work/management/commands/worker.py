"""`pursuit worker`: run timed work (automatic answers, the speed-to-lead ladder, staff emails)
from database rows. Run as many as you like against PostgreSQL; they share the load."""

import logging
import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import DatabaseError, close_old_connections

from pursuit.lib import clock
from pursuit.work.services import daily_jobs_schedule, minute_jobs_schedule, run_due_once, worker_name

log = logging.getLogger("pursuit.worker")


class Command(BaseCommand):
    help = "Run due jobs until stopped (SIGTERM or Ctrl-C finishes the job in hand, then exits)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Run what is due now, then exit")
        parser.add_argument(
            "--poll",
            type=float,
            default=None,
            help="Seconds to wait when nothing is due (default PURSUIT_WORKER_POLL_SECONDS)",
        )
        parser.add_argument("--batch", type=int, default=5, help="Jobs claimed at a time")
        parser.add_argument("--name", default="", help="Worker name in claimed rows (default host:pid)")

    def handle(self, *args, once=False, poll=None, batch=5, name="", **options):
        poll = settings.PURSUIT_WORKER_POLL_SECONDS if poll is None else poll
        name = name or worker_name()
        stopping = []

        def stop(signum, frame):
            stopping.append(signum)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        log.info("worker %s started (poll %.2fs, batch %d)", name, poll, batch)
        next_daily = next_minute = 0.0
        while not stopping:
            try:
                if time.monotonic() >= next_daily:
                    daily_jobs_schedule(now=clock.now())
                    next_daily = time.monotonic() + 600
                if time.monotonic() >= next_minute:
                    minute_jobs_schedule(now=clock.now())
                    next_minute = time.monotonic() + 60
                ran = run_due_once(now=clock.now(), worker=name, limit=batch, clock=clock.now)
            except DatabaseError as exc:
                # The database went away or is locked for long: wait and try again rather than die.
                log.warning("worker %s: database error, retrying: %s", name, exc)
                close_old_connections()
                time.sleep(1)
                continue
            if once and not ran:
                break
            if not ran:
                close_old_connections()
                time.sleep(poll)
        log.info("worker %s stopped", name)

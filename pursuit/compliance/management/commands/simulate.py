"""`pursuit simulate --customers N --days D --seed S`: a simulated period at one rooftop, on a fresh
database, checked touch by touch (see pursuit.compliance.simulate and docs/simulate.md).

Django reads DATABASES once per process, so the command runs itself again as a child
(`--inner`) with DATABASE_URL and PURSUIT_DATA_DIR pointing at a database it made for the run:
an SQLite file in a temporary directory, or with `--database-url` a database
`pursuit_sim_<pid>` on that PostgreSQL server. Both are removed afterwards unless `--keep`.
The exit status is non-zero when the run found a violation or an uncovered lead.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from urllib.parse import urlsplit, urlunsplit

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from pursuit.compliance.simulate import DEFAULT_START, main_progress, simulate


class Command(BaseCommand):
    help = "Simulate a rooftop's customers and staff on a fresh database and check every touch."
    requires_system_checks: list = []

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=3000)
        parser.add_argument("--days", type=int, default=365)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--start", default=DEFAULT_START.isoformat(), help="first day, YYYY-MM-DD (UTC)")
        parser.add_argument("--keep", action="store_true", help="keep the database (its location is printed)")
        parser.add_argument(
            "--database-url",
            default="",
            help="a PostgreSQL server (postgres://user@host:port) to make the run's database on",
        )
        parser.add_argument("--profile", action="store_true", help="print where the time went (cProfile)")
        parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)

    def handle(self, *args, **options):
        try:
            start = dt.date.fromisoformat(options["start"])
        except ValueError:
            raise CommandError(f"--start: not a date: {options['start']!r}") from None
        if options["customers"] < 1 or options["days"] < 1:
            raise CommandError("--customers and --days must be at least 1")
        if options["inner"]:
            self._inner(options, start)
        else:
            self._outer(options)

    # ------------------------------------------------------------------ the parent: a fresh database

    def _outer(self, options) -> None:
        data_dir = tempfile.mkdtemp(prefix="pursuit-sim-")
        env = os.environ | {"PURSUIT_DATA_DIR": data_dir, "EMAIL_URL": "outbox", "PYTHONUNBUFFERED": "1"}
        pg_server = pg_name = ""
        if options["database_url"]:
            pg_server = _server(options["database_url"])
            pg_name = f"pursuit_sim_{os.getpid()}"
            _pg_admin(pg_server, f'DROP DATABASE IF EXISTS "{pg_name}"', f'CREATE DATABASE "{pg_name}"')
            env["DATABASE_URL"] = f"{pg_server}/{pg_name}"
        else:
            env["DATABASE_URL"] = f"sqlite:///{data_dir}/simulation.sqlite3"
        argv = [sys.executable, "-m", "pursuit.cli", "simulate", "--inner"]
        for name in ("customers", "days", "seed", "start"):
            argv += [f"--{name}", str(options[name])]
        if options["profile"]:
            argv.append("--profile")
        child = subprocess.Popen(argv, env=env)

        def stop(signum, frame):
            raise SystemExit(128 + signum)

        # A terminated parent stops its child and still removes the database.
        previous = signal.signal(signal.SIGTERM, stop)
        code = 1
        try:
            code = child.wait()
        finally:
            signal.signal(signal.SIGTERM, previous)
            if child.poll() is None:
                child.terminate()
                try:
                    child.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
            if options["keep"]:
                self.stderr.write(f"kept: {env['DATABASE_URL']}")
            else:
                if pg_name:
                    _pg_admin(pg_server, f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
                shutil.rmtree(data_dir, ignore_errors=True)
        if code:
            sys.exit(code)

    # ------------------------------------------------------------------ the child: migrate and run

    def _inner(self, options, start: dt.date) -> None:
        call_command("migrate", verbosity=0, interactive=False)

        def go():
            return simulate(
                customers=options["customers"],
                days=options["days"],
                seed=options["seed"],
                start=start,
                progress=main_progress,
            )

        if options["profile"]:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            report = profiler.runcall(go)
            stats = pstats.Stats(profiler, stream=sys.stderr)
            # The project's functions by time spent in them and below, then the hottest of all.
            stats.sort_stats("cumulative").print_stats(r"/pursuit/", 50)
            stats.sort_stats("tottime").print_stats(25)
        else:
            report = go()
        self.stdout.write(report.text())
        if not report.ok:
            sys.exit(1)


def _server(url: str) -> str:
    """The server part of a PostgreSQL URL (any database name in it is ignored)."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise CommandError(f"--database-url must be a postgres:// URL, not {url!r}")
    return urlunsplit((parts.scheme, parts.netloc, "", "", "")).rstrip("/")


def _pg_admin(server: str, *statements: str) -> None:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)

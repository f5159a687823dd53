"""Dispatch: two workers claim and send 10,000 due automatic plan steps, with a small and a huge
backlog of future steps behind them; and the cost of enrolling a lead in a plan.

    .venv/bin/python bench/dispatch.py [--leads 1000000] [--due 10000] [--small 10000]
    .venv/bin/python bench/dispatch.py --profile [--small 10000] [--due 10000]

For each backlog (the big one, `--leads` enrolled leads, and the small one, `--small`): a fresh
PostgreSQL database `pursuit_dispatch_<pid>` is created, migrated and seeded (a rooftop with three
BDC agents, see _common.py); a plan of 11 steps is saved (an automatic intro email first, then
calls, emails and a text, all in the future). The backlog is then bulk-loaded with SQL
(generate_series, foreign-key triggers off, secondary indexes dropped and rebuilt afterwards,
model defaults as column defaults while loading): per lead a customer, an email address, a
vehicle, the lead (status working), its enrolment and 10 pending future steps (the plan's steps
2 to 11: five tasks, five sends). On top come exactly `--due` automatic email steps (step 1) on
distinct leads spread over the backlog, parked far in the future; VACUUM ANALYZE.

Then an SMTP server (aiosmtpd) runs in this process on a loopback port, recording each message's
Message-ID; `--workers` (2) `pursuit worker --batch 50` processes start; once both are connected
and idle, one UPDATE makes the parked steps due (a minute ago), and the clock starts. It stops
when no parked step is pending or claimed any more (polled every 0.2 s) and the SMTP server has
received every step's message (Message-ID <step.ID@bench.example>). Figures: time, sends/s,
duplicates (messages received more than once; must be 0), CPU per step of the workers, of their
database sessions (read from /proc: the database must be on this machine) and of this process
(the SMTP server), the CPU the idle workers cost afterwards, and the time of one idle
`steps_claim` with EXPLAIN ANALYZE of the locking queries it makes. Targets (issue 3): big/small
time ratio under 1.5, and at least 500 sends/s.

Enrolment: in each database, `pursuit.plans.services.enrol` is timed for `--enrol` (1,000) leads
in one process on a plan of 15 steps (per-lead ms and SQL statements), with `schedule_compute`
alone and the bulk path of imports (`enrol_new_leads`) for comparison.

`--profile` loads the small backlog and runs ONE worker loop in-process under cProfile, with every
SQL statement counted by shape and the SMTP sessions counted: where a step's time goes.

If loading the big backlog takes longer than `--load-budget` seconds (default 360), loading stops
at the last whole chunk and the figures say at what size they were measured. The checkout
measured is this one or BENCH_PROJECT's (see _common.py); its commit is printed per backlog, and
a run whose backlogs saw different commits says so.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from _common import (
    PG_URL,
    PYTHON,
    ROOFTOP_EMAIL,
    ROOFTOP_NAME,
    ROOT,
    fmt_s,
    free_port,
    load,
    machine,
    percentile,
    prepare,
    print_machine,
)

TARGET_RATIO = 1.5
TARGET_RATE = 500.0
WORKER_APP = "pursuit-bench-worker"
DOMAIN = ROOFTOP_EMAIL.split("@")[1]
PARKED = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)
CHUNK = 100_000  # leads per loading transaction
_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(<[^>\r\n]+>)", re.IGNORECASE | re.MULTILINE)


# --------------------------------------------------------------------------- database


def _pg(url: str, **kwargs):
    import psycopg

    return psycopg.connect(url, **kwargs)


@contextlib.contextmanager
def dispatch_database(keep: bool = False) -> Iterator[dict]:
    """A fresh PostgreSQL database pursuit_dispatch_<pid> and data directory; yields the
    environment for `pursuit` processes using it. Both are removed afterwards (unless `keep`)."""
    name = f"pursuit_dispatch_{os.getpid()}"
    data_dir = tempfile.mkdtemp(prefix="pursuit-bench-dispatch-")
    with _pg(f"{PG_URL}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    env = os.environ.copy()
    env.update(
        PURSUIT_DATA_DIR=data_dir,
        DATABASE_URL=f"{PG_URL}/{name}",
        EMAIL_URL="outbox",
        PYTHONUNBUFFERED="1",
        PURSUIT_LOG_LEVEL="WARNING",
    )
    try:
        yield env
    finally:
        if keep:
            print(f"kept database {name} and {data_dir}", file=sys.stderr)
        else:
            try:
                with _pg(f"{PG_URL}/postgres", autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except Exception as exc:
                print(f"warning: could not drop database {name}: {exc}", file=sys.stderr)
            shutil.rmtree(data_dir, ignore_errors=True)


def task(name: str, env: dict, *args: str) -> dict:
    """Run a Django-side task of this module (`dispatch.py --task NAME`) in a child process."""
    out = subprocess.run(
        [PYTHON, str(Path(__file__).resolve()), "--task", name, *args],
        env=env,
        cwd=ROOT,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


# --------------------------------------------------------------------------- bulk load

LOAD_TABLES = (
    "leads_customer",
    "leads_customeremail",
    "leads_vehicle",
    "leads_lead",
    "plans_enrolment",
    "plans_step",
)
ZONES = "ARRAY['America/Chicago','America/New_York','America/Denver','America/Los_Angeles']"
MODELS = "ARRAY['Accord','CR-V','Civic','Pilot','HR-V']"


def _secondary_indexes(cur, table: str) -> list[tuple[str, str]]:
    """(name, definition) of the table's indexes that back no constraint (droppable)."""
    return cur.execute(
        """SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i
           JOIN pg_class c ON c.oid = i.indexrelid
           WHERE i.indrelid = %s::regclass
             AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
           ORDER BY c.relname""",
        (table,),
    ).fetchall()


def _load_people(cur, lo: int, hi: int, ids: dict, t0: dt.datetime) -> None:
    """Customers, their email addresses and vehicles, and open leads lo..hi (ids = g)."""
    agents = ids["agents"]
    cur.execute(
        f"""INSERT INTO leads_customer (id, first_name, middle_name, last_name, preferred_contact,
               street, apartment, city, region, postal_code, country, time_zone, created_at,
               merged_into_id, rooftop_id)
           SELECT g, 'Ann' || (g %% 97), '', 'Lee' || g, '', g || ' Main St', '', 'Chicago', 'IL',
               '60601', 'US', ({ZONES})[1 + g %% 4], %(t0)s - (g %% 400) * interval '1 hour', NULL, %(r)s
           FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) g""",
        {"lo": lo, "hi": hi, "r": ids["rooftop"], "t0": t0},
    )
    cur.execute(
        """INSERT INTO leads_customeremail (id, address, customer_id, rooftop_id)
           SELECT g, 'customer' || g || '@example.com', g, %(r)s FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) g""",
        {"lo": lo, "hi": hi, "r": ids["rooftop"]},
    )
    cur.execute(
        f"""INSERT INTO leads_lead (id, type, status, lost_reason, comments, timeframe, provider,
               external_ids, flags, received_at, created_at, assigned_at, auto_response_at,
               first_attempt_at, first_reply_at, sold_at, closed_at, customer_id, owner_id,
               payload_id, rooftop_id, source_id)
           SELECT g, 'internet', 'working', '', 'Is it still available?', '', 'Bench Provider',
               '[]'::jsonb, '[]'::jsonb, c, c, c, c, c + interval '10 minutes', NULL, NULL, NULL,
               g, (%(agents)s::bigint[])[1 + g %% {len(agents)}], NULL, %(r)s, %(s)s
           FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) g,
                LATERAL (SELECT %(t0)s - (g %% 400) * interval '1 hour' AS c) t""",
        {"lo": lo, "hi": hi, "r": ids["rooftop"], "s": ids["source"], "agents": agents, "t0": t0},
    )
    cur.execute(
        f"""INSERT INTO leads_vehicle (id, role, condition, year, make, model, trim, vin, stock,
               price, odometer, odometer_units, lead_id)
           SELECT g, 'interest', 'new', 2025, 'Honda', ({MODELS})[1 + g %% 5], 'EX-L', '', '',
               NULL, NULL, '', g
           FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) g""",
        {"lo": lo, "hi": hi},
    )


def _load_plans(cur, lo: int, hi: int, ids: dict, future: list[dict], t0: dt.datetime) -> None:
    """The enrolments of leads lo..hi and their future steps (step ids (g-1)*F+1 .. g*F)."""
    agents = ids["agents"]
    cur.execute(
        """INSERT INTO plans_enrolment (id, "primary", status, started_at, ended_at, reason, lead_id,
               incentive_id, version_id)
           SELECT g, true, 'active', %(t0)s - (g %% 400) * interval '1 hour', NULL, 'arrived', g,
               NULL, %(v)s
           FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) g""",
        {"lo": lo, "hi": hi, "v": ids["version"], "t0": t0},
    )
    per = len(future)
    values = ", ".join(
        f"({i}, {s['id']}, '{s['action']}', '{s['channel']}', {s['days']})" for i, s in enumerate(future)
    )
    cur.execute(
        f"""INSERT INTO plans_step (id, name, script, priority, occurrence, action, channel, due_at,
               status, claimed_until, claimed_by, attempts, last_error, done_at, outcome,
               assignee_id, enrolment_id, lead_id, plan_step_id)
           SELECT (g - 1) * {per} + s.i + 1, '', '', 10, 0, s.action, s.channel,
               %(t0)s + s.days * interval '1 day' + (g %% 1440) * interval '1 minute',
               'pending', NULL, '', 0, '', NULL, '',
               (%(agents)s::bigint[])[1 + g %% {len(agents)}], g, g, s.ps
           FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) g,
                LATERAL (VALUES {values}) AS s(i, ps, action, channel, days)""",
        {"lo": lo, "hi": hi, "t0": t0, "agents": agents},
    )


def bulk_load(env: dict, ids: dict, *, leads: int, due: int, pool: int, budget: float) -> dict:
    """Load the backlog with SQL; return what was loaded and how long each part took."""
    url = env["DATABASE_URL"]
    t0 = dt.datetime.now(dt.UTC).replace(microsecond=0)
    future = ids["future"]
    timings: dict[str, float] = {}
    started = time.perf_counter()
    with _pg(url) as conn, conn.cursor() as cur:
        # Rows are consistent by construction: no foreign-key trigger per row (40 million
        # deferred checks at commit), and secondary indexes are built once at the end.
        cur.execute("SET session_replication_role = replica")
        cur.execute("SET synchronous_commit = off")
        cur.execute("SET maintenance_work_mem = '1GB'")
        from psycopg import sql

        defaults = []
        for table, columns in ids["defaults"].items():
            for column, text, db_type in columns:
                current = cur.execute(
                    "SELECT column_default FROM information_schema.columns WHERE table_name = %s "
                    "AND column_name = %s",
                    (table, column),
                ).fetchone()
                if current and current[0] is None:
                    cur.execute(
                        sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET DEFAULT {}").format(
                            sql.Identifier(table),
                            sql.Identifier(column),
                            sql.SQL("{}::{}").format(sql.Literal(text), sql.SQL(db_type)),
                        )
                    )
                    defaults.append((table, column))
        dropped: list[tuple[str, str]] = []
        for table in LOAD_TABLES:
            for name, definition in _secondary_indexes(cur, table):
                cur.execute(f'DROP INDEX "{name}"')
                dropped.append((name, definition))
        conn.commit()

        loaded = 0
        rows_started = time.perf_counter()
        while loaded < leads:
            lo, hi = loaded + 1, min(loaded + CHUNK, leads)
            _load_people(cur, lo, hi, ids, t0)
            _load_plans(cur, lo, hi, ids, future, t0)
            conn.commit()
            loaded = hi
            spent = time.perf_counter() - rows_started
            if leads > CHUNK:
                print(
                    f"    loaded {loaded:,} leads, {loaded * len(future):,} future steps ({spent:.0f} s)",
                    flush=True,
                )
            # Stop at a whole chunk when the next one would overrun the budget.
            if loaded < leads and spent * (loaded + CHUNK) / loaded > budget:
                print(f"    load budget of {budget:.0f} s reached: measuring at {loaded:,} leads", flush=True)
                break
        leads = loaded
        # Leads for the enrolment measure: open, on no plan yet.
        _load_people(cur, leads + 1, leads + pool, ids, t0)
        # The due automatic steps: one each on `due` distinct leads spread over the backlog, with
        # consecutive ids, parked far in the future until the workers are ready.
        first_due = leads * len(future) + 1
        cur.execute(
            """INSERT INTO plans_step (id, name, script, priority, occurrence, action, channel, due_at,
                   status, claimed_until, claimed_by, attempts, last_error, done_at, outcome,
                   assignee_id, enrolment_id, lead_id, plan_step_id)
               SELECT %(first)s + k, '', '', 10, 0, 'send', 'email', %(parked)s + k * interval '1 ms',
                   'pending', NULL, '', 0, '', NULL, '', l.owner_id, l.id, l.id, %(ps)s
               FROM generate_series(0, %(due)s::bigint - 1) k
               JOIN leads_lead l ON l.id = 1 + (k::bigint * %(leads)s) / %(due)s""",
            {"first": first_due, "due": due, "leads": leads, "ps": ids["intro"], "parked": PARKED},
        )
        conn.commit()
        timings["rows"] = time.perf_counter() - rows_started

        indexes_started = time.perf_counter()
        for table in LOAD_TABLES:
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
            )
        for _name, definition in dropped:
            cur.execute(definition)
            conn.commit()
        for table, column in defaults:
            cur.execute(
                sql.SQL("ALTER TABLE {} ALTER COLUMN {} DROP DEFAULT").format(
                    sql.Identifier(table), sql.Identifier(column)
                )
            )
        conn.commit()
        timings["indexes"] = time.perf_counter() - indexes_started
    vacuum_started = time.perf_counter()
    with _pg(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        counts = conn.execute(
            """SELECT (SELECT count(*) FROM leads_lead),
                      (SELECT count(*) FROM plans_enrolment),
                      (SELECT count(*) FROM plans_step),
                      (SELECT count(*) FROM plans_step WHERE status = 'pending' AND action = 'send'),
                      pg_size_pretty(pg_total_relation_size('plans_step')),
                      pg_size_pretty(pg_database_size(current_database()))"""
        ).fetchone()
    timings["vacuum"] = time.perf_counter() - vacuum_started
    timings["total"] = time.perf_counter() - started
    return {
        "leads": leads,
        "first_due": first_due,
        "due": due,
        "pool_first": leads + 1,
        "pool": pool,
        "rows": {
            "leads": counts[0],
            "enrolments": counts[1],
            "steps": counts[2],
            "pending_sends": counts[3],
            "step_table": counts[4],
            "database": counts[5],
        },
        "seconds": timings,
    }


# --------------------------------------------------------------------------- SMTP


class Recorder:
    """aiosmtpd handler: first arrival of each Message-ID, duplicates, SMTP sessions."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.arrivals: dict[str, float] = {}
        self.messages = 0
        self.sessions = 0
        self.last = 0.0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802
        session.host_name = hostname
        with self.lock:
            self.sessions += 1
        return responses

    async def handle_HELO(self, server, session, envelope, hostname):  # noqa: N802
        session.host_name = hostname
        with self.lock:
            self.sessions += 1
        return f"250 {server.hostname}"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        now = time.perf_counter()
        found = _MESSAGE_ID.search(envelope.original_content or envelope.content)
        with self.lock:
            self.messages += 1
            self.last = now
            if found:
                self.arrivals.setdefault(found.group(1).decode("ascii", "replace"), now)
        return "250 Message accepted for delivery"

    def steps(self) -> dict[str, float]:
        with self.lock:
            return {k: v for k, v in self.arrivals.items() if k.startswith("<step.")}


# --------------------------------------------------------------------------- the run


def _workers_connected(url: str) -> int:
    with _pg(url, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = %s",
            (WORKER_APP,),
        ).fetchone()[0]


def _backend_pids(conn) -> list[int]:
    return [
        row[0]
        for row in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s",
            (WORKER_APP,),
        ).fetchall()
    ]


class CpuMeter:
    """CPU seconds used by a changing set of processes since `start()`, sampled often: a process
    first seen later counts from its start (a worker reconnects after CONN_MAX_AGE), one that
    is gone keeps its last sample. None when /proc cannot be read (a remote database)."""

    def __init__(self) -> None:
        self.base: dict[int, float] = {}
        self.last: dict[int, float] = {}

    def sample(self, pids: list[int], *, first: bool = False) -> None:
        for pid in pids:
            used = _cpu([pid])
            if used is not None:
                self.base.setdefault(pid, used if first else 0.0)
                self.last[pid] = used

    def total(self) -> float | None:
        return sum(self.last[pid] - self.base[pid] for pid in self.last) if self.last else None


def _cpu(pids: list[int]) -> float | None:
    """CPU seconds (user + system) used so far by these processes; None if unreadable (e.g. the
    database server is on another machine)."""
    total = 0.0
    try:
        for pid in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
    return total


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def dispatch(env: dict, loaded: dict, args: argparse.Namespace) -> dict:
    """Start the workers, release the parked steps, time until all are sent."""
    from aiosmtpd.controller import Controller

    url = env["DATABASE_URL"]
    first, due = loaded["first_due"], loaded["due"]
    last = first + due - 1
    recorder = Recorder()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    wenv = dict(env, EMAIL_URL=f"smtp://127.0.0.1:{port}", PGAPPNAME=WORKER_APP)
    data_dir = Path(env["PURSUIT_DATA_DIR"])
    procs: list[subprocess.Popen] = []
    progress: list[tuple[float, int]] = []
    try:
        boot = time.perf_counter()
        for i in range(args.workers):
            with open(data_dir / f"worker{i}.log", "wb") as log:
                procs.append(
                    subprocess.Popen(
                        [PYTHON, "-m", "pursuit.cli", "worker", "--batch", str(args.batch)],
                        env=wenv,
                        cwd=ROOT,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        while _workers_connected(url) < args.workers:
            if any(p.poll() is not None for p in procs):
                raise RuntimeError("a worker exited before connecting: see its log")
            if time.perf_counter() - boot > 60:
                raise RuntimeError("the workers did not connect within 60 s")
            time.sleep(0.1)
        ready = time.perf_counter() - boot
        time.sleep(1.0)  # a few idle loops: everything imported, connections open

        with _pg(url, autocommit=True) as conn:
            conn.execute("SET application_name = 'bench-dispatch'")
            conn.execute(
                "UPDATE plans_step SET due_at = now() - interval '1 minute' + (id - %s) * interval '1 us' "
                "WHERE id BETWEEN %s AND %s",
                (first, first, last),
            )
            t0 = time.perf_counter()
            workers_cpu, db_cpu, own_cpu = CpuMeter(), CpuMeter(), time.process_time()
            workers_cpu.sample([p.pid for p in procs], first=True)
            db_cpu.sample(_backend_pids(conn), first=True)
            db_done = None
            next_report = t0 + 5
            while True:
                now = time.perf_counter()
                open_ = conn.execute(
                    "SELECT count(*) FROM plans_step WHERE id BETWEEN %s AND %s "
                    "AND status IN ('pending', 'claimed')",
                    (first, last),
                ).fetchone()[0]
                received = len(recorder.steps())
                progress.append((now - t0, due - open_))
                workers_cpu.sample([p.pid for p in procs])
                db_cpu.sample(_backend_pids(conn))
                if open_ == 0 and db_done is None:
                    db_done = now
                if db_done is not None and (received >= due or now - db_done > 5):
                    break
                if any(p.poll() is not None for p in procs):
                    raise RuntimeError("a worker exited during the run: see its log")
                if now - t0 > args.timeout:
                    print(f"    timed out after {args.timeout:.0f} s", flush=True)
                    break
                if now >= next_report:
                    print(
                        f"    {now - t0:5.0f} s: {due - open_:,} steps finished, {received:,} received",
                        flush=True,
                    )
                    next_report += 5
                time.sleep(0.2)
            busy = (workers_cpu.total(), db_cpu.total(), time.process_time() - own_cpu)
            # Nothing is due any more: what do the idle workers cost?
            idle_workers, idle_db = CpuMeter(), CpuMeter()
            idle_workers.sample([p.pid for p in procs], first=True)
            idle_db.sample(_backend_pids(conn), first=True)
            idle_end = time.perf_counter() + args.idle_seconds
            while time.perf_counter() < idle_end:
                time.sleep(0.2)
                idle_workers.sample([p.pid for p in procs])
                idle_db.sample(_backend_pids(conn))
            idle = (idle_db.total(), idle_workers.total())
            statuses = dict(
                conn.execute(
                    "SELECT status, count(*) FROM plans_step WHERE id BETWEEN %s AND %s GROUP BY status",
                    (first, last),
                ).fetchall()
            )
            emails = conn.execute(
                "SELECT count(*), count(DISTINCT message_id) FROM outreach_outboundemail "
                "WHERE message_id LIKE '<step.%%' AND status = 'sent'"
            ).fetchone()
            attempts = conn.execute(
                "SELECT max(attempts) FROM plans_step WHERE id BETWEEN %s AND %s", (first, last)
            ).fetchone()[0]
    finally:
        _stop(procs)
        controller.stop()
    arrivals = recorder.steps()
    last_arrival = max(arrivals.values(), default=t0)
    finished = max(db_done or time.perf_counter(), last_arrival if len(arrivals) >= due else 0.0)
    seconds = finished - t0
    errors = []
    for i in range(args.workers):
        text = (data_dir / f"worker{i}.log").read_text(errors="replace")
        errors += [line for line in text.splitlines() if "WARNING" in line or "ERROR" in line][:3]
    half = next((t for t, n in progress if n >= due / 2), float("nan"))

    def per_step(used):
        return used / max(1, len(arrivals)) * 1000 if used is not None else None

    def share(used):
        return used / args.idle_seconds if used is not None else None

    return {
        "seconds": seconds,
        "rate": len(arrivals) / seconds if seconds > 0 else float("nan"),
        "workers_ready": ready,
        "first_half": half,
        "second_half": seconds - half,
        "received": len(arrivals),
        "smtp_messages": recorder.messages,
        "smtp_sessions": recorder.sessions,
        "duplicates": recorder.messages - len(arrivals),
        "statuses": statuses,
        "outbound_rows": emails[0],
        "outbound_distinct": emails[1],
        "max_attempts": attempts,
        "worker_log": errors,
        "cpu_ms_per_step": {
            "workers": per_step(busy[0]),
            "database": per_step(busy[1]),
            "bench_process": per_step(busy[2]),
        },
        "idle_cpu": {"database": share(idle[0]), "workers": share(idle[1])},
    }


# --------------------------------------------------------------------------- one backlog


def run_backlog(label: str, leads: int, args: argparse.Namespace) -> dict:
    print(f"\n== {label} backlog: {leads:,} enrolled leads, {args.due:,} due automatic emails", flush=True)
    with dispatch_database(keep=args.keep) as env:
        prepare(env)
        ids = task("plans", env)
        print("  loading ...", flush=True)
        loaded = bulk_load(env, ids, leads=leads, due=args.due, pool=2 * args.enrol, budget=args.load_budget)
        s = loaded["seconds"]
        r = loaded["rows"]
        print(
            f"  loaded {r['leads']:,} leads, {r['enrolments']:,} enrolments, {r['steps']:,} steps "
            f"({r['pending_sends']:,} pending sends; step table {r['step_table']}, database "
            f"{r['database']}) in {s['total']:.0f} s (rows {s['rows']:.0f} s, indexes "
            f"{s['indexes']:.0f} s, vacuum analyze {s['vacuum']:.0f} s)",
            flush=True,
        )
        idle = task("explain", env)
        print(
            f"  one idle steps_claim (nothing due): {idle['ms']:.1f} ms, {idle['queries']} locking "
            "SELECT(s); EXPLAIN ANALYZE:",
            flush=True,
        )
        for plan in idle["plans"]:
            for line in plan:
                if not line.strip().startswith(("Buffers", "Planning:")):
                    print(f"    {line}")
        commit = _commit()
        print(
            f"  dispatch: {args.workers} workers, --batch {args.batch} (load average {load()}; code at {commit})",
            flush=True,
        )
        result = dispatch(env, loaded, args)
        result["commit"] = commit
        result["load_after"] = load()
        _print_dispatch(result)
        enrolment = task("enrol", env, str(loaded["pool_first"]), str(args.enrol))
        _print_enrol(enrolment)
    return {
        "label": label,
        "leads": loaded["leads"],
        "load": loaded,
        "idle_claim": idle,
        "dispatch": result,
        "enrol": enrolment,
    }


def _print_dispatch(r: dict) -> None:
    print(
        f"  {r['received']:,} steps sent in {r['seconds']:.1f} s: {r['rate']:.0f} sends/s "
        f"(first half {r['first_half']:.1f} s, second half {r['second_half']:.1f} s; workers "
        f"connected {r['workers_ready']:.1f} s after start, not counted; load average after "
        f"{r.get('load_after', '?')})"
    )
    print(
        f"  SMTP: {r['smtp_messages']:,} messages in {r['smtp_sessions']:,} sessions, "
        f"{r['duplicates']} duplicates; steps {r['statuses']}; outbound records "
        f"{r['outbound_rows']:,} ({r['outbound_distinct']:,} distinct); most attempts {r['max_attempts']}",
        flush=True,
    )
    c, i = r["cpu_ms_per_step"], r["idle_cpu"]

    def ms(v):
        return "?" if v is None else f"{v:.1f}"

    def pct(v):
        return "?" if v is None else f"{v * 100:.0f}%"

    print(
        f"  CPU per step: workers {ms(c['workers'])} ms, their database sessions {ms(c['database'])} ms, "
        f"this process (SMTP server, poller) {ms(c['bench_process'])} ms; idle afterwards, nothing due: "
        f"the workers' database sessions use {pct(i['database'])} of a CPU, the workers {pct(i['workers'])}",
        flush=True,
    )
    for line in r["worker_log"]:
        print(f"  worker log: {line[:200]}")


def _print_enrol(e: dict) -> None:
    print(
        f"  enrol() on a {e['steps']}-step plan, {e['n']:,} leads one by one: {e['ms_per_lead']:.1f} ms/lead "
        f"(p50 {e['p50_ms']:.1f}, p99 {e['p99_ms']:.1f} ms), {e['queries_per_lead']:.1f} SQL statements/lead; "
        f"schedule_compute alone {e['compute_ms']:.2f} ms; enrol_new_leads (bulk) "
        f"{e['bulk_ms_per_lead']:.2f} ms/lead, writing {e.get('bulk_steps_per_lead', 0):.0f} step(s) per lead",
        flush=True,
    )


def print_table(results: list[dict], args: argparse.Namespace) -> None:
    print(
        f"\n== Dispatch (issue 3): {args.workers} workers (--batch {args.batch}), {args.due:,} due "
        "automatic emails, real SMTP on loopback"
    )
    head = (
        f"{'backlog':<8}{'enrolled leads':>16}{'future steps':>15}{'load':>9}{'idle claim':>12}"
        f"{'dispatch':>10}{'sends/s':>9}{'dupl.':>7}{'enrol ms/lead':>15}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        d, e = r["dispatch"], r["enrol"]
        print(
            f"{r['label']:<8}{r['leads']:>16,}{r['load']['rows']['steps'] - r['load']['due']:>15,}"
            f"{fmt_s(r['load']['seconds']['total']):>9}{r['idle_claim']['ms']:>9.1f} ms"
            f"{d['seconds']:>8.1f} s{d['rate']:>9.0f}{d['duplicates']:>7}{e['ms_per_lead']:>15.1f}"
        )
    by = {r["label"]: r for r in results}
    if "big" in by and "small" in by:
        ratio = by["big"]["dispatch"]["seconds"] / by["small"]["dispatch"]["seconds"]
        worst = min(by["big"]["dispatch"]["rate"], by["small"]["dispatch"]["rate"])
        dupes = sum(r["dispatch"]["duplicates"] for r in results)
        print(
            f"ratio big/small: {ratio:.2f} (target < {TARGET_RATIO}: {'met' if ratio < TARGET_RATIO else 'MISSED'}); "
            f"slowest rate {worst:.0f} sends/s (target >= {TARGET_RATE:.0f}: "
            f"{'met' if worst >= TARGET_RATE else 'MISSED'}); duplicates {dupes} "
            f"({'met' if dupes == 0 else 'MISSED'})"
        )
        if by["big"]["dispatch"].get("commit") != by["small"]["dispatch"].get("commit"):
            print(
                "WARNING: the code changed between the two backlogs (big at "
                f"{by['big']['dispatch'].get('commit')}, small at {by['small']['dispatch'].get('commit')}): "
                "the ratio compares two versions"
            )
        if by["big"]["leads"] < by["big"].get("asked", by["big"]["leads"]):
            print(f"note: the big backlog was measured at {by['big']['leads']:,} leads (load budget)")


# --------------------------------------------------------------------------- profile


def run_profile(args: argparse.Namespace) -> None:
    """One in-process worker loop on the small backlog under cProfile, SQL counted by shape."""
    from aiosmtpd.controller import Controller

    print(f"\n== profile: one worker, --batch {args.batch}, small backlog ({args.small:,} leads)", flush=True)
    with dispatch_database(keep=args.keep) as env:
        prepare(env)
        ids = task("plans", env)
        loaded = bulk_load(env, ids, leads=args.small, due=args.due, pool=0, budget=1e9)
        recorder = Recorder()
        port = free_port()
        controller = Controller(recorder, hostname="127.0.0.1", port=port)
        controller.start()
        try:
            first, last = loaded["first_due"], loaded["first_due"] + args.due - 1
            with _pg(env["DATABASE_URL"], autocommit=True) as conn:
                conn.execute(
                    "UPDATE plans_step SET due_at = now() - interval '1 minute' WHERE id BETWEEN %s AND %s",
                    (first, last),
                )
            out = Path(env["PURSUIT_DATA_DIR"]) / "worker.prof"
            result = task(
                "profile",
                dict(env, EMAIL_URL=f"smtp://127.0.0.1:{port}"),
                str(args.batch),
                str(out),
                str(args.profile_steps),
                str(args.due // 2),
            )
            if args.profile_out:
                shutil.copy(out, args.profile_out)
        finally:
            controller.stop()
    n = result["steps"]
    if result["plain_steps"]:
        p = result["plain_steps"]
        print(
            f"  without the profiler: {p:,} steps in {result['plain_seconds']:.1f} s: "
            f"{p / result['plain_seconds']:.0f} steps/s, {result['plain_seconds'] / p * 1000:.2f} ms/step"
        )
    print(
        f"  {n:,} steps in {result['seconds']:.1f} s under cProfile ({n / result['seconds']:.0f} steps/s, "
        f"{result['seconds'] / n * 1000:.2f} ms/step; SQL {result['sql_seconds'] / n * 1000:.2f} ms/step "
        f"in {result['queries'] / n:.1f} statements/step)"
    )
    print(
        f"  commits (transactions that write) per step: {result['commits'] / n:.2f}; SMTP: "
        f"{recorder.messages:,} messages in {recorder.sessions:,} sessions"
    )
    print("  SQL statements per step, by shape (count/step, ms/step):")
    for q in result["top"]:
        print(f"    {q['n'] / n:5.2f}  {q['seconds'] / n * 1000:6.3f}  {q['sql'][:150]}")
    print("  functions by cumulative time (ms/step):")
    for f in result["functions"]:
        print(
            f"    {f['cum'] / n * 1000:7.3f} cum {f['tot'] / n * 1000:7.3f} own  {f['ncalls'] / n:6.1f} calls  {f['name']}"
        )


# --------------------------------------------------------------------------- Django-side tasks
# Run as `python bench/dispatch.py --task NAME [ARGS]` with the environment of one bench database.

DISPATCH_STEPS = [
    # (name, amount, unit, counted_from, window, channel, action, template, extra)
    ("Intro email", 0, "minutes", "enrolment", "any", "email", "send", "intro", {"skip_if": ["replied"]}),
    ("First call", 0, "minutes", "enrolment", "customer-day", "call", "task", None, {"voicemail": True}),
    (
        "Second call",
        1,
        "business-days",
        "previous",
        "customer-day",
        "call",
        "task",
        None,
        {"skip_if": ["talked"]},
    ),
    ("Follow-up email", 1, "days", "previous", "business-hours", "email", "send", "follow-up", {}),
    ("Third call", 2, "business-days", "previous", "customer-day", "call", "task", None, {}),
    ("Text", 1, "days", "previous", "customer-day", "text", "send", "text", {}),
    ("Video email", 3, "days", "previous", "business-hours", "email", "send", "follow-up", {}),
    ("Fourth call", 3, "business-days", "previous", "customer-day", "call", "task", None, {}),
    ("Weekly email", 7, "days", "previous", "business-hours", "email", "send", "follow-up", {}),
    ("Manager call", 7, "days", "previous", "business-hours", "call", "task", None, {"role": "manager"}),
    (
        "Monthly email",
        30,
        "days",
        "previous",
        "business-hours",
        "email",
        "send",
        "follow-up",
        {"repeat": True},
    ),
]


def _enrol_steps() -> list[tuple]:
    """A 15-step plan of the shape the issue describes (calls, emails, texts; all windows)."""
    steps = list(DISPATCH_STEPS[:-1])
    steps += [
        ("Fifth call", 2, "business-days", "previous", "customer-day", "call", "task", None, {}),
        ("Check-in text", 2, "days", "previous", "customer-day", "text", "send", "text", {}),
        ("Two-week email", 14, "days", "enrolment", "business-hours", "email", "send", "follow-up", {}),
        ("Sixth call", 1, "business-days", "previous", "customer-day", "call", "task", None, {}),
        (
            "Long-term email",
            30,
            "days",
            "previous",
            "business-hours",
            "email",
            "send",
            "follow-up",
            {"repeat": True},
        ),
    ]
    return steps


def task_plans() -> dict:
    """Templates, the dispatch plan (11 steps) and the enrolment plan (15 steps); the day's
    coverage check marked done so that it does not run inside the measurement."""
    from django.db import transaction

    from pursuit.intake.models import LeadSource
    from pursuit.lib import clock
    from pursuit.org.models import Role, Rooftop, User
    from pursuit.plans.models import MessageTemplate, Plan, Transition
    from pursuit.plans.services import plan_version_save
    from pursuit.work.models import Job

    now = clock.now()
    rooftop = Rooftop.objects.get(name=ROOFTOP_NAME)
    with transaction.atomic():
        User.objects.create_user(
            username="manager",
            password=None,
            rooftop=rooftop,
            role=Role.MANAGER,
            on_duty=True,
            email="manager@bench.example",
            first_name="Maria",
            last_name="Bench",
        )
        templates = {
            "intro": MessageTemplate.objects.create(
                rooftop=rooftop,
                key="intro",
                name="Intro",
                channel="email",
                subject="Your {{ vehicle }} at {{ rooftop.name }}",
                body=(
                    "Hi {{ customer.first_name }},\n\nThanks for asking about the {{ vehicle }}. "
                    "It is here and ready for a test drive whenever suits you.\n\n"
                    "{% if trade %}Bring your {{ trade }} and we will appraise it on the spot.\n\n{% endif %}"
                    "{{ owner.name }}\n{{ rooftop.name }} | {{ owner.phone }} | {{ rooftop.address }}\n"
                ),
            ),
            "follow-up": MessageTemplate.objects.create(
                rooftop=rooftop,
                key="follow-up",
                name="Follow-up",
                channel="email",
                subject="Still thinking about the {{ vehicle }}?",
                body="Hi {{ customer.first_name }}, any questions? {{ owner.name }}, {{ owner.phone }}",
            ),
            "text": MessageTemplate.objects.create(
                rooftop=rooftop,
                key="text",
                name="Text",
                channel="text",
                body="Hi {{ customer.first_name }}, {{ owner.first_name }} at {{ rooftop.name }} here.",
            ),
        }

        def fields(steps):
            return [
                {
                    "name": name,
                    "amount": amount,
                    "unit": unit,
                    "counted_from": counted_from,
                    "window": window,
                    "channel": channel,
                    "action": action,
                    "template": templates[t] if t else None,
                    **extra,
                }
                for name, amount, unit, counted_from, window, channel, action, t, extra in steps
            ]

        plan = Plan.objects.create(rooftop=rooftop, key="dispatch", name="Dispatch bench")
        version = plan_version_save(plan=plan, steps=fields(DISPATCH_STEPS), by=None, now=now)
        enrol_plan = Plan.objects.create(rooftop=rooftop, key="enrol-bench", name="Enrolment bench")
        plan_version_save(plan=enrol_plan, steps=fields(_enrol_steps()), by=None, now=now)
        Transition.objects.create(rooftop=rooftop, event="arrived", condition="", plan=enrol_plan)
        for day in (now.date(), now.date() + dt.timedelta(days=1)):
            Job.objects.create(
                kind="coverage-check",
                key=f"coverage-check:{day.isoformat()}",
                status="done",
                due_at=now,
                created_at=now,
                done_at=now,
            )
    steps = list(version.steps.order_by("position"))
    future, days = [], 0
    for s in steps[1:]:
        days += 2
        future.append({"id": s.pk, "action": s.action, "channel": s.channel, "days": days})
    return {
        "rooftop": rooftop.pk,
        "source": LeadSource.objects.get(rooftop=rooftop, name="Bench Provider").pk,
        "agents": list(
            User.objects.filter(rooftop=rooftop, role=Role.BDC_AGENT)
            .order_by("id")
            .values_list("id", flat=True)
        ),
        "version": version.pk,
        "intro": steps[0].pk,
        "future": future,
        "defaults": _column_defaults(),
    }


def _column_defaults() -> dict[str, list[list[str]]]:
    """Per bulk-loaded table, [column, default as text, SQL type] of every NOT NULL column whose
    model field has a default: the loader makes them database defaults while it loads, so that
    a column added to a model later does not break its INSERTs."""
    from django.apps import apps
    from django.db import connection

    out: dict[str, list[list[str]]] = {}
    for model in apps.get_models():
        table = model._meta.db_table
        if table not in LOAD_TABLES:
            continue
        for f in model._meta.concrete_fields:
            if f.primary_key or f.null:
                continue
            value = f.get_default()
            if value is None:
                continue
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, (dict, list)):
                text = json.dumps(value)
            else:
                text = str(value)
            out.setdefault(table, []).append([f.column, text, f.db_type(connection)])
    return out


def task_explain() -> dict:
    """One call of the project's `steps_claim` when nothing is due (what an idle worker does on
    every loop), timed, and EXPLAIN ANALYZE of each locking SELECT it makes; rolled back."""
    from django.db import connection, transaction

    from pursuit.lib import clock
    from pursuit.plans.services import steps_claim

    captured: list[tuple[str, object]] = []

    def capture(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith("SELECT") and "FOR UPDATE" in sql.upper():
            captured.append((sql, params))
        return execute(sql, params, many, context)

    calls = []
    for _ in range(3):
        captured.clear()
        with transaction.atomic():
            with connection.execute_wrapper(capture):
                started = time.perf_counter()
                steps_claim(now=clock.now(), worker="bench-explain", limit=50)
                calls.append((time.perf_counter() - started) * 1000)
            transaction.set_rollback(True)
    plans = []
    for sql, params in captured:
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            plans.append([row[0] for row in cur.fetchall()])
            transaction.set_rollback(True)
    return {"ms": min(calls), "queries": len(captured), "plans": plans}


def task_enrol(pool_first: str, count: str) -> dict:
    """enrol() per lead, schedule_compute alone, and enrol_new_leads in bulk."""
    from django.db import connection

    from pursuit.leads.models import Lead
    from pursuit.lib import clock
    from pursuit.plans.models import Plan, Step
    from pursuit.plans.services import enrol, enrol_new_leads, rooftop_hours, schedule_compute

    first, n = int(pool_first), int(count)
    plan = Plan.objects.get(key="enrol-bench")
    steps = list(plan.current.steps.order_by("position"))
    pool = list(
        Lead.objects.filter(id__gte=first, id__lt=first + 2 * n)
        .select_related("customer", "rooftop")
        .order_by("id")
    )
    one, bulk = pool[:n], pool[n:]
    queries = [0]

    def count_sql(execute, sql, params, many, context):
        queries[0] += 1
        return execute(sql, params, many, context)

    # Warm-up, not counted: imports, compiled queries, time-zone data.
    hours = rooftop_hours(one[0].rooftop)
    schedule_compute(steps=steps, start=clock.now(), hours=hours, customer_zone=one[0].customer.time_zone)
    started = time.perf_counter()
    for lead in one:
        schedule_compute(steps=steps, start=clock.now(), hours=hours, customer_zone=lead.customer.time_zone)
    compute = (time.perf_counter() - started) / n

    each = []
    with connection.execute_wrapper(count_sql):
        started = time.perf_counter()
        for lead in one:
            t = time.perf_counter()
            enrol(lead=lead, plan=plan, now=clock.now(), reason="bench")
            each.append(time.perf_counter() - t)
        total = time.perf_counter() - started
    per_lead_queries = queries[0] / n

    started = time.perf_counter()
    for i in range(0, len(bulk), 500):
        enrol_new_leads(leads=bulk[i : i + 500], now=clock.now(), fresh=True)
    bulk_total = time.perf_counter() - started
    bulk_steps = Step.objects.filter(lead__in=bulk).count()
    return {
        "n": n,
        "steps": len(steps),
        "ms_per_lead": total / n * 1000,
        "p50_ms": percentile(each, 50) * 1000,
        "p99_ms": percentile(each, 99) * 1000,
        "queries_per_lead": per_lead_queries,
        "compute_ms": compute * 1000,
        "bulk_ms_per_lead": bulk_total / max(1, len(bulk)) * 1000,
        "bulk_steps_per_lead": bulk_steps / max(1, len(bulk)),
    }


def task_profile(batch: str, out: str, top: str = "30", plain: str = "0") -> dict:
    """The worker's loop (`pursuit worker` minus sleeping) in this process: first `plain` steps
    timed bare, then the rest under cProfile with every SQL statement counted and timed by shape
    and every commit counted (an atomic block's, or a write statement's own in autocommit)."""
    import cProfile
    import pstats

    from django.db import connection

    from pursuit.lib import clock
    from pursuit.work.services import run_due_once, worker_name

    shapes: dict[str, list] = {}
    placeholders = re.compile(r"(%s|\?)(\s*,\s*(%s|\?))+")
    total_queries = [0]
    commits = [0]

    def count_sql(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            shape = placeholders.sub("...", " ".join(sql.split()))[:200]
            entry = shapes.setdefault(shape, [0, 0.0])
            entry[0] += 1
            entry[1] += time.perf_counter() - started
            total_queries[0] += 1
            if not connection.in_atomic_block and sql.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE"):
                commits[0] += 1

    name = worker_name()
    run_due_once(now=clock.now(), worker=name, limit=1, clock=clock.now)  # warm-up: one step
    plain_n, plain_steps = int(plain), 0
    started = time.perf_counter()
    while plain_steps < plain_n and (
        ran := run_due_once(now=clock.now(), worker=name, limit=int(batch), clock=clock.now)
    ):
        plain_steps += ran
    plain_seconds = time.perf_counter() - started

    real_commit = connection._commit

    def counted_commit():
        commits[0] += 1
        return real_commit()

    connection._commit = counted_commit
    steps = 0
    profiler = (
        cProfile.Profile(time.thread_time) if os.environ.get("BENCH_PROFILE_CPU") else cProfile.Profile()
    )
    with connection.execute_wrapper(count_sql):
        started = time.perf_counter()
        profiler.enable()
        while ran := run_due_once(now=clock.now(), worker=name, limit=int(batch), clock=clock.now):
            steps += ran
        profiler.disable()
        seconds = time.perf_counter() - started
    connection._commit = real_commit
    profiler.dump_stats(out)
    stats = pstats.Stats(profiler)
    rows = []
    for (file, line, func), (_cc, ncalls, tot, cum, _callers) in stats.stats.items():
        where = file.replace(str(ROOT) + "/", "")
        for prefix in ("/site-packages/", "/lib/python3"):
            if prefix in where:
                where = where.split(prefix, 1)[1]
        rows.append({"name": f"{where}:{line}({func})", "ncalls": ncalls, "tot": tot, "cum": cum})
    rows.sort(key=lambda r: -r["cum"])
    wanted = [
        r for r in rows if not r["name"].startswith(("~", "{built-in method builtins.exec", "<string>"))
    ][: int(top)]
    by_time = sorted(shapes.items(), key=lambda kv: -kv[1][1])
    return {
        "plain_steps": plain_steps,
        "plain_seconds": plain_seconds,
        "steps": steps,
        "seconds": seconds,
        "commits": commits[0],
        "queries": total_queries[0],
        "sql_seconds": sum(v[1] for v in shapes.values()),
        "top": [{"sql": k, "n": v[0], "seconds": v[1]} for k, v in by_time[:20]],
        "functions": wanted,
    }


def _run_task(argv: list[str]) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pursuit.settings")
    import django

    django.setup()
    tasks = {"plans": task_plans, "explain": task_explain, "enrol": task_enrol, "profile": task_profile}
    print(json.dumps(tasks[argv[0]](*argv[1:]), default=str))


# --------------------------------------------------------------------------- main


def _commit() -> str:
    """The measured checkout's commit, and whether files differ from it."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "log", "-1", "--format=%h %ci"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "pursuit"], capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (with uncommitted changes under pursuit/)" if dirty else "")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--task":
        _run_task(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=1_000_000, help="enrolled leads in the big backlog")
    parser.add_argument("--small", type=int, default=10_000, help="enrolled leads in the small backlog")
    parser.add_argument("--due", type=int, default=10_000, help="due automatic email steps (distinct leads)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=50, help="the workers' --batch")
    parser.add_argument(
        "--enrol", type=int, default=1000, help="leads enrolled one by one for the enrol figure"
    )
    parser.add_argument("--only", choices=("big", "small", "both"), default="both")
    parser.add_argument("--load-budget", type=float, default=360.0, help="seconds of row loading, at most")
    parser.add_argument("--idle-seconds", type=float, default=5.0, help="idle CPU sampled this long after")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds to wait for the sends")
    parser.add_argument(
        "--profile", action="store_true", help="profile one in-process worker (small backlog)"
    )
    parser.add_argument("--profile-out", default="", help="with --profile: keep the cProfile file here")
    parser.add_argument("--profile-steps", default="30", help="with --profile: functions listed")
    parser.add_argument("--keep", action="store_true", help="keep the databases (debugging)")
    parser.add_argument("--json", default="", help="also write the figures to this file")
    args = parser.parse_args()
    if args.small < args.due:
        parser.error("--small must be at least --due (one due step per lead at most)")

    info = machine()
    info["commit"] = _commit()
    print_machine(info)
    print(f"measuring {ROOT} at {info['commit']}", flush=True)
    if args.profile:
        run_profile(args)
        return
    results = []
    # The small backlog first: quick, and a failure shows before the long load.
    if args.only in ("small", "both"):
        results.append(run_backlog("small", args.small, args))
    if args.only in ("big", "both"):
        big = run_backlog("big", args.leads, args)
        big["asked"] = args.leads
        results.append(big)
    results.sort(key=lambda r: r["label"])  # big, small
    print_table(results, args)
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "results": results}, indent=2, default=str))


if __name__ == "__main__":
    main()

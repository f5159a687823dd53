"""Shared helpers for the benchmarks: fresh databases, running `pursuit`, machine facts, figures.

The bench scripts never import Django themselves: each database under test gets its own
settings (DATABASE_URL, PURSUIT_DATA_DIR), and Django reads settings once per process. Work
that needs the ORM (seeding a rooftop, counting rows, the bulk-insert ceiling) runs in a child
process started with `python bench/_common.py TASK`, with the environment of that database.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

# The checkout whose `pursuit` is measured: this one, or another (BENCH_PROJECT=/path/to/checkout,
# e.g. to compare before and after a change; it must be importable by this Python).
ROOT = Path(os.environ.get("BENCH_PROJECT") or Path(__file__).resolve().parents[1]).resolve()
PYTHON = sys.executable
# Where bench databases are created on PostgreSQL (trust auth on the loopback by default).
PG_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/")

ROOFTOP_NAME = "Bench Motors"
ROOFTOP_EMAIL = "sales@bench.example"
AGENTS = 3
_fresh_count = 0


# --------------------------------------------------------------------------- databases


def _pg_admin():
    import psycopg

    return psycopg.connect(f"{PG_URL}/postgres", autocommit=True)


@contextlib.contextmanager
def fresh_database(kind: str) -> Iterator[dict]:
    """A fresh, empty database of `kind` ("sqlite" or "postgres") and a fresh data directory;
    yields the environment for `pursuit` processes using it. Both are removed afterwards."""
    global _fresh_count
    _fresh_count += 1
    data_dir = tempfile.mkdtemp(prefix=f"pursuit-bench-{kind}-")
    env = os.environ.copy()
    env["PURSUIT_DATA_DIR"] = data_dir
    env.setdefault("EMAIL_URL", "outbox")
    env.setdefault("PYTHONUNBUFFERED", "1")
    pg_name = None
    if kind == "postgres":
        pg_name = f"pursuit_bench_{os.getpid()}_{_fresh_count}"
        with _pg_admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}"')
            conn.execute(f'CREATE DATABASE "{pg_name}"')
        env["DATABASE_URL"] = f"{PG_URL}/{pg_name}"
    elif kind == "sqlite":
        env["DATABASE_URL"] = f"sqlite:///{data_dir}/pursuit.sqlite3"
    else:
        raise ValueError(f"unknown database kind {kind!r}")
    try:
        yield env
    finally:
        if pg_name:
            try:
                with _pg_admin() as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
            except Exception as exc:  # leave a note rather than hide the bench's own result
                print(f"warning: could not drop database {pg_name}: {exc}", file=sys.stderr)
        shutil.rmtree(data_dir, ignore_errors=True)


def pursuit(args: list[str], env: dict, **kwargs) -> subprocess.CompletedProcess:
    """Run `pursuit ARGS` (the project's manage.py) to completion; raise on failure."""
    return subprocess.run([PYTHON, "-m", "pursuit.cli", *args], env=env, cwd=ROOT, check=True, **kwargs)


def helper(task: str, env: dict, *args: str) -> dict:
    """Run a Django-side task of this module in a child process; return its JSON answer."""
    out = subprocess.run(
        [PYTHON, str(Path(__file__)), task, *args],
        env=env,
        cwd=ROOT,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def rows_done(env: dict) -> int | None:
    """CSV rows an import has committed so far (leads created + re-inquiries + failed rows),
    read straight from the database, without Django; None if it cannot be read right now."""
    sql = (
        "SELECT (SELECT COUNT(*) FROM leads_lead) + (SELECT COUNT(*) FROM leads_leadevent "
        "WHERE kind = 're-inquiry') + (SELECT COUNT(*) FROM intake_payload WHERE status = 'failed')"
    )
    url = env["DATABASE_URL"]
    try:
        if url.startswith("sqlite:///"):
            with contextlib.closing(
                sqlite3.connect(f"file:{url[len('sqlite:///') :]}?mode=ro", uri=True, timeout=5)
            ) as conn:
                return conn.execute(sql).fetchone()[0]
        import psycopg

        with psycopg.connect(url.replace("postgres://", "postgresql://", 1)) as conn:
            return conn.execute(sql).fetchone()[0]
    except Exception:
        return None


def prepare(env: dict) -> dict:
    """Migrate the fresh database and seed a rooftop, a source with a token, and a BDC team."""
    pursuit(["migrate", "--no-input", "-v", "0"], env)
    return helper("seed", env)


# --------------------------------------------------------------------------- figures


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): a value that was really measured."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode} before answering")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing answered on port {port} within {timeout:.0f} s")


def machine() -> dict:
    """What the figures were measured on."""
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    pg = ""
    with contextlib.suppress(Exception), _pg_admin() as conn:
        pg = conn.execute("SHOW server_version").fetchone()[0]
    return {
        "date": time.strftime("%Y-%m-%d"),
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": cpu or platform.processor(),
        "ram": ram,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": pg or "unavailable",
        "load": load(),
    }


def load() -> str:
    """The 1-minute load average: other work on the machine skews every figure."""
    return f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "?"


def print_machine(info: dict) -> None:
    print(
        f"{info['date']}  {info['nproc']} CPUs ({info['cpu']}), {info['ram']} RAM, Python {info['python']}, "
        f"SQLite {info['sqlite']}, PostgreSQL {info['postgresql']}; load average {info['load']}"
    )


def fmt_s(seconds: float) -> str:
    if math.isnan(seconds):
        return "-"
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


# --------------------------------------------------------------------------- Django-side tasks
# Run as `python bench/_common.py TASK [ARGS]` with the environment of one bench database.


def _django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pursuit.settings")
    import django

    django.setup()


def task_seed() -> dict:
    from django.db import transaction

    from pursuit.intake.models import AssignmentRule, LeadSource
    from pursuit.org.models import DealerGroup, Role, Rooftop, Team, User

    with transaction.atomic():
        group = DealerGroup.objects.create(name="Bench Auto Group")
        rooftop = Rooftop.objects.create(
            group=group,
            name=ROOFTOP_NAME,
            time_zone="America/Chicago",
            country="US",
            email=ROOFTOP_EMAIL,
            phone="+13125550100",
            # Marketing email must carry a postal address (the compliance gate refuses it otherwise).
            street="100 Bench St",
            city="Chicago",
            region="IL",
            postal_code="60601",
        )
        source = LeadSource(rooftop=rooftop, name="Bench Provider")
        token = source.new_token()
        source.save()
        team = Team.objects.create(rooftop=rooftop, name="BDC")
        agents = [
            User.objects.create_user(
                username=f"agent{i}",
                password=None,
                rooftop=rooftop,
                role=Role.BDC_AGENT,
                on_duty=True,
                email=f"agent{i}@bench.example",
                first_name=f"Agent{i}",
                last_name="Bench",
            )
            for i in range(1, AGENTS + 1)
        ]
        team.members.add(*agents)
        AssignmentRule.objects.create(rooftop=rooftop, priority=10, lead_type="internet", team=team)
    return {"rooftop": rooftop.name, "rooftop_id": rooftop.pk, "source": source.name, "token": token}


def task_counts() -> dict:
    from django.db.models import Count

    from pursuit.intake.models import Payload
    from pursuit.leads.models import Customer, CustomerEmail, CustomerPhone, Lead, LeadEvent, Vehicle
    from pursuit.outreach.models import OutboundEmail
    from pursuit.work.models import Job, Notification

    return {
        "customers": Customer.objects.count(),
        "customer_emails": CustomerEmail.objects.count(),
        "customer_phones": CustomerPhone.objects.count(),
        "leads": Lead.objects.count(),
        "vehicles": Vehicle.objects.count(),
        "events": dict(LeadEvent.objects.values_list("kind").annotate(n=Count("id")).order_by("kind")),
        "notifications": Notification.objects.count(),
        "jobs": {
            f"{k} {s}": n
            for k, s, n in Job.objects.values_list("kind", "status")
            .annotate(n=Count("id"))
            .order_by("kind", "status")
        },
        "outbound_emails": OutboundEmail.objects.count(),
        "payloads_failed": Payload.objects.filter(status=Payload.Status.FAILED).count(),
    }


def task_ceiling(path: str, batch: str = "1000") -> dict:
    """The bare bulk insert of the rows an import of `path` stores, for the ceiling figure.

    Rows are read with csv.DictReader only (no ADF/CSV parser, no phonenumbers, no matching
    queries: duplicates are found in a dict); per new customer one Customer, CustomerEmail,
    CustomerPhone, Lead, Vehicle and "arrived" LeadEvent; per duplicate row one "re-inquiry"
    LeadEvent and the Vehicle. bulk_create in batches of `batch` rows, one transaction each.
    """
    import csv
    import datetime as dt

    from django.db import transaction

    from pursuit.intake.models import LeadSource
    from pursuit.leads.models import Customer, CustomerEmail, CustomerPhone, Lead, LeadEvent, Vehicle
    from pursuit.org.models import Rooftop, User

    started = time.perf_counter()
    size = int(batch)
    rooftop = Rooftop.objects.get(name=ROOFTOP_NAME)
    agents = list(User.objects.filter(rooftop=rooftop, role="bdc").order_by("id"))
    sources: dict[str, LeadSource] = {}
    now = dt.datetime.now(dt.UTC)
    leads_by_key: dict[str, Lead] = {}
    rows = 0
    known_emails: set[str] = set()
    known_phones: set[str] = set()

    def flush(chunk: list[dict]) -> None:
        customers, leads, pending = [], [], []
        for row in chunk:
            email = row["email"].lower()
            phone = "+" + "".join(c for c in row["phone"] if c.isdigit()) if row["phone"] else ""
            keys = [k for k in (email, phone) if k]
            lead = next((leads_by_key[k] for k in keys if k in leads_by_key), None)
            is_new = lead is None
            if is_new:
                customer = Customer(
                    rooftop=rooftop,
                    first_name=row["first_name"],
                    last_name=row["last_name"],
                    street=row["street"],
                    city=row["city"],
                    region=row["region"],
                    postal_code=row["postal_code"],
                    country=row["country"],
                    time_zone="America/Chicago",
                    created_at=now,
                )
                customers.append(customer)
                name = row["source"]
                if name not in sources:
                    sources[name] = LeadSource.objects.get_or_create(rooftop=rooftop, name=name)[0]
                lead = Lead(
                    rooftop=rooftop,
                    customer=customer,
                    source=sources[name],
                    type=row["lead_type"],
                    comments=row["comments"],
                    owner=agents[len(leads) % len(agents)],
                    assigned_at=now,
                    received_at=dt.datetime.fromisoformat(row["received_at"]).replace(tzinfo=dt.UTC),
                    created_at=now,
                )
                leads.append(lead)
            for k in keys:
                leads_by_key.setdefault(k, lead)
            pending.append((row, email, phone, lead, is_new))
        emails, phones, vehicles, events = [], [], [], []
        with transaction.atomic():
            Customer.objects.bulk_create(customers)
            for lead in leads:
                lead.customer_id = lead.customer.pk
            Lead.objects.bulk_create(leads)
            for row, email, phone, lead, is_new in pending:
                if email and email not in known_emails:
                    known_emails.add(email)
                    emails.append(CustomerEmail(customer_id=lead.customer_id, rooftop=rooftop, address=email))
                if phone and phone not in known_phones:
                    known_phones.add(phone)
                    phones.append(
                        CustomerPhone(
                            customer_id=lead.customer_id,
                            rooftop=rooftop,
                            number=phone,
                            match_key=phone,
                            verified=True,
                            type="mobile",
                        )
                    )
                vehicles.append(
                    Vehicle(
                        lead_id=lead.pk,
                        role="interest",
                        condition=row["vehicle_status"].lower(),
                        year=int(row["vehicle_year"]),
                        make=row["vehicle_make"],
                        model=row["vehicle_model"],
                        trim=row["vehicle_trim"],
                        vin=row["vehicle_vin"],
                        price=row["vehicle_price"] or None,
                    )
                )
                kind = LeadEvent.Kind.ARRIVED if is_new else LeadEvent.Kind.REINQUIRY
                events.append(LeadEvent(lead_id=lead.pk, kind=kind, at=now, text="imported", data={}))
            CustomerEmail.objects.bulk_create(emails)
            CustomerPhone.objects.bulk_create(phones)
            Vehicle.objects.bulk_create(vehicles)
            LeadEvent.objects.bulk_create(events)

    chunk: list[dict] = []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            rows += 1
            chunk.append(row)
            if len(chunk) >= size:
                flush(chunk)
                chunk = []
    if chunk:
        flush(chunk)
    return {"rows": rows, "seconds": time.perf_counter() - started}


def task_querycount(path: str) -> dict:
    """Import `path` in this process, counting the SQL statements it makes by kind and timing
    them (database round trip included) by statement shape."""
    import re
    from collections import Counter

    from django.core.management import call_command
    from django.db import connection

    kinds: Counter = Counter()
    shapes: dict[str, list[float]] = {}
    placeholders = re.compile(r"(%s|\?)(\s*,\s*(%s|\?))+")

    def count(execute, sql, params, many, context):
        kinds[sql.lstrip().split(None, 1)[0].upper()] += 1
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            shape = placeholders.sub("...", " ".join(sql.split()))[:160]
            entry = shapes.setdefault(shape, [0, 0.0])
            entry[0] += 1
            entry[1] += time.perf_counter() - started

    started = time.perf_counter()
    with connection.execute_wrapper(count), open(os.devnull, "w") as devnull:
        call_command("import_leads", path, "--rooftop", ROOFTOP_NAME, verbosity=0, stdout=devnull)
    total = time.perf_counter() - started
    top = sorted(shapes.items(), key=lambda kv: -kv[1][1])[:12]
    return {
        "kinds": dict(kinds),
        "seconds": total,
        "sql_seconds": sum(v[1] for v in shapes.values()),
        "top": [{"sql": k, "n": v[0], "seconds": v[1]} for k, v in top],
    }


if __name__ == "__main__":
    _django()
    tasks = {"seed": task_seed, "counts": task_counts, "ceiling": task_ceiling, "querycount": task_querycount}
    print(json.dumps(tasks[sys.argv[1]](*sys.argv[2:]), default=str))

"""Pages: server render time of every workspace page with a rooftop of 50,000 leads.

    .venv/bin/python bench/pages.py [--db postgres|sqlite] [--leads 50000] [--repeat 30]

A fresh database is created, migrated and seeded (Bench Motors, three BDC agents, see
_common.py), plus a manager and the shipped default plans; then `--leads` leads are imported
through `pursuit import-leads --fresh` from the same generated CSV as bench/import.py (so every
lead is assigned, enrolled in its plan and has its steps), and a few hundred appointments,
replies and consents are added. Then, in one process, Django's test client requests each page
`--repeat` times after two warm-up requests (templates compiled, connections open: a running
server's state), as the agent or the manager the page is for. Each figure is the time from the
request entering Django to the full response (middleware, view, queries, template), with the SQL
statements counted. Target (issue 5): every page under 150 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import PYTHON, ROOT, fresh_database, machine, percentile, prepare, print_machine, pursuit

TARGET_MS = 150.0
HERE = Path(__file__).resolve()


def task_pages(repeat: str) -> dict:
    """Runs inside the database's environment (see _common.helper)."""
    import datetime as dt

    import django
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import override_settings

    sys.path.insert(0, str(HERE.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pursuit.settings")
    django.setup()
    from pursuit.appointments.services import appointment_set
    from pursuit.compliance.services import consent_record
    from pursuit.leads.models import Lead
    from pursuit.lib import clock
    from pursuit.org.models import Role, Rooftop, User
    from pursuit.plans.services import on_reply

    rooftop = Rooftop.objects.get()
    manager = User.objects.create_user(
        username="manager", password="x", rooftop=rooftop, role=Role.MANAGER, first_name="Mia"
    )
    agent = User.objects.filter(rooftop=rooftop, role=Role.BDC_AGENT).order_by("id").first()
    now = clock.now()
    mine = list(Lead.objects.filter(owner=agent, status__in=Lead.OPEN_STATUSES).order_by("-id")[:300])
    for n, lead in enumerate(mine[:150]):
        local = (
            (now + dt.timedelta(days=n % 7))
            .astimezone(rooftop.tz)
            .replace(hour=10 + n % 7, minute=0, second=0, microsecond=0)
        )
        try:
            appointment_set(lead=lead, starts_at=max(local, now + dt.timedelta(hours=1)), by=agent, now=now)
        except Exception:  # a lead the plan closed meanwhile: skip it
            pass
    for lead in mine[150:200]:
        on_reply(lead=lead, channel="email", text="Is it still available?", now=now)
    for lead in mine[200:260]:
        consent_record(
            customer=lead.customer,
            channel="text",
            granted=True,
            written=True,
            source="form",
            evidence="ticked",
            at=now,
        )
    sample = mine[0]
    pages = [
        ("My day (agent)", agent, "/today/"),
        ("My day, everyone (manager)", manager, "/today/?scope=all"),
        ("Lead list, all open", manager, "/leads/?scope=all"),
        ("Lead list, search", manager, f"/leads/?scope=all&q={sample.customer.last_name}"),
        ("Lead page", agent, f"/leads/{sample.pk}/"),
        ("Team today", manager, "/team/"),
        ("Calendar, this week", manager, "/calendar/"),
        ("Compliance", manager, "/compliance/"),
        ("Coverage", manager, "/coverage/"),
        ("Plans", manager, "/plans/"),
        ("Notifications", agent, "/notifications/"),
    ]
    results = []
    with override_settings(DEBUG=True, ALLOWED_HOSTS=["*"]):  # DEBUG only to count SQL statements
        for name, user, path in pages:
            client = Client()
            client.force_login(user)
            for _ in range(2):
                response = client.get(path)
            if response.status_code != 200:
                results.append({"page": name, "path": path, "error": response.status_code})
                continue
            times, queries = [], []
            for _ in range(int(repeat)):
                reset_queries()
                started = time.perf_counter()
                response = client.get(path)
                times.append((time.perf_counter() - started) * 1000)
                queries.append(len(connection.queries))
            results.append(
                {
                    "page": name,
                    "path": path,
                    "bytes": len(response.content),
                    "p50": statistics.median(times),
                    "p95": percentile(times, 95),
                    "max": max(times),
                    "queries": max(queries),
                }
            )
    return {
        "results": results,
        "leads": Lead.objects.count(),
        "open": Lead.objects.filter(status__in=Lead.OPEN_STATUSES).count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--leads", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    info = machine()
    print_machine(info)
    from importlib import import_module

    generate = import_module("import").generate
    with tempfile.TemporaryDirectory() as folder, fresh_database(args.db) as env:
        csv = Path(folder) / "leads.csv"
        generate(csv, args.leads)
        prepare(env)
        started = time.perf_counter()
        pursuit(
            ["import-leads", str(csv), "--rooftop", "Bench Motors", "--fresh"],
            env,
            stdout=subprocess_devnull(),
        )
        print(f"  {args.leads:,} leads imported with their plans in {time.perf_counter() - started:.0f} s")
        out = subprocess.run(
            [PYTHON, str(HERE), "--inner", str(args.repeat)],
            env=env,
            cwd=ROOT,
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        ).stdout
        figures = json.loads(out.strip().splitlines()[-1])
    print(
        f"\n== Pages (issue 5): {figures['leads']:,} leads ({figures['open']:,} open), {args.db}, {args.repeat} requests each"
    )
    print(f"{'page':34} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'SQL':>5} {'KB':>6}")
    worst = 0.0
    for row in figures["results"]:
        if "error" in row:
            print(f"{row['page']:34} HTTP {row['error']}")
            worst = float("inf")
            continue
        worst = max(worst, row["p95"])
        print(
            f"{row['page']:34} {row['p50']:8.1f} {row['p95']:8.1f} {row['max']:8.1f} {row['queries']:5d} {row['bytes'] / 1024:6.0f}"
        )
    verdict = "met" if worst < TARGET_MS else "MISSED"
    print(f"slowest p95 {worst:.1f} ms (target < {TARGET_MS:.0f} ms: {verdict})")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "figures": figures}, indent=2))


def subprocess_devnull():
    return subprocess.DEVNULL


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--inner":
        print(json.dumps(task_pages(sys.argv[2])))
    else:
        main()

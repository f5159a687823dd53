"""CSV import: leads per second through `pursuit import-leads`, beside a bare bulk insert.

    .venv/bin/python bench/import.py [--db sqlite|postgres|both] [--leads 100000]
    .venv/bin/python bench/import.py --profile [--db sqlite] [--leads 5000]

A CSV of `--leads` rows is generated deterministically (seeded): 80% new customers and 20%
duplicates of an earlier customer (the same email, or the same valid phone number), each row
with a vehicle of interest. For each database: a fresh database is migrated and seeded, then
`pursuit import-leads FILE` runs as a child process and is timed end to end (process start to
exit); the rows it wrote are counted. The ceiling is a bare bulk insert of the same rows
(customers, emails, phones, leads, vehicles, one timeline event per row; Django bulk_create in
batches of 1000) into another fresh database of the same kind, also timed end to end in a child
process. Target: 100,000 leads in under 2 minutes. See docs/benchmarks.md.

--profile runs the import under cProfile instead and prints the hot spots, then counts the SQL
statements the import makes per row.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import pstats
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import (
    PYTHON,
    ROOFTOP_NAME,
    ROOT,
    fresh_database,
    helper,
    machine,
    prepare,
    print_machine,
    rows_done,
)

TARGET_ROWS, TARGET_SECONDS = 100_000, 120.0
SEED = 20250601
DUPLICATE_SHARE = 0.2

HEADER = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "phone_type",
    "street",
    "city",
    "region",
    "postal_code",
    "country",
    "lead_type",
    "source",
    "received_at",
    "vehicle_year",
    "vehicle_make",
    "vehicle_model",
    "vehicle_trim",
    "vehicle_vin",
    "vehicle_status",
    "vehicle_price",
    "comments",
)
FIRST = (
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Carlos",
    "Karen",
    "Daniel",
    "Lisa",
    "Matthew",
    "Nancy",
    "Anthony",
    "Betty",
    "Mark",
    "Sandra",
    "Wei",
    "Ashley",
    "Jamal",
    "Priya",
    "Luis",
    "Fatima",
    "Hiro",
    "Olga",
    "Kofi",
    "Ines",
    "Tariq",
    "Mei",
)
LAST = (
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Nguyen",
    "Patel",
    "Kim",
    "Okafor",
    "Kowalski",
    "Novak",
    "Haddad",
    "Cohen",
    "Rossi",
    "Tanaka",
)
CITIES = (
    ("Chicago", "IL", "606"),
    ("Evanston", "IL", "602"),
    ("Oak Park", "IL", "603"),
    ("Naperville", "IL", "605"),
    ("Gary", "IN", "464"),
    ("Milwaukee", "WI", "532"),
)
STREETS = (
    "Main St",
    "Oak Ave",
    "Lake Shore Dr",
    "Elm St",
    "Washington Blvd",
    "Maple Ave",
    "Cedar Ln",
    "Park Rd",
)
VEHICLES = (
    ("Honda", "Accord", ("LX", "EX-L", "Sport")),
    ("Honda", "Civic", ("LX", "Si", "Type R")),
    ("Honda", "CR-V", ("EX", "Sport", "Touring")),
    ("Honda", "Pilot", ("EX-L", "Elite")),
    ("Toyota", "Camry", ("LE", "XSE")),
    ("Ford", "F-150", ("XLT", "Lariat")),
    ("Mazda", "CX-5", ("Select", "GT")),
    ("Subaru", "Outback", ("Premium", "Touring XT")),
)
SOURCES = ("Cars.com", "AutoTrader", "Dealer Website", "OEM Website", "CarGurus", "Facebook")
LEAD_TYPES = ("internet",) * 8 + ("phone", "walk-in")
VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
COMMENTS = (
    "Is this still available?",
    "What is the best out-the-door price?",
    "Can I test drive on Saturday?",
    "Do you take trade-ins?",
    "",
    "",
    "Interested in financing options.",
)


def generate(path: Path, count: int, seed: int = SEED) -> dict:
    """Write the bench CSV; return what an import of it should produce."""
    rng = random.Random(seed)
    duplicates = set(rng.sample(range(1, count), round(count * DUPLICATE_SHARE))) if count > 1 else set()
    customers: list[dict] = []
    extra = 0  # fresh phones and emails that duplicates bring with them
    by_email = by_phone = 0
    start = dt.datetime(2025, 1, 6, 14, 0)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        for i in range(count):
            if i in duplicates:
                person = dict(customers[rng.randrange(len(customers))])
                extra += 1
                if rng.random() < 0.5:  # same email, a new phone number
                    by_email += 1
                    person["phone"] = f"773-{200 + extra // 10000:03d}-{extra % 10000:04d}"
                else:  # same phone number (written differently), a new email
                    by_phone += 1
                    digits = person["phone"].replace("-", "")
                    person["phone"] = f"({digits[:3]}) {digits[3:6]} {digits[6:]}"
                    person["email"] = (
                        f"{person['first_name']}.{person['last_name']}.{extra}@mail.example".lower()
                    )
            else:
                u = len(customers)
                first, last = rng.choice(FIRST), rng.choice(LAST)
                city, region, zip3 = rng.choice(CITIES)
                person = {
                    "first_name": first,
                    "last_name": last,
                    "email": f"{first}.{last}{u}@example.com".lower(),
                    # 312-2xx-xxxx: valid Chicago numbers (phonenumbers.is_valid_number), unique per customer.
                    "phone": f"312-{200 + u // 10000:03d}-{u % 10000:04d}",
                    "street": f"{rng.randint(1, 9999)} {rng.choice(STREETS)}",
                    "city": city,
                    "region": region,
                    "postal_code": f"{zip3}{rng.randint(0, 99):02d}",
                }
                customers.append(person)
            make, model, trims = rng.choice(VEHICLES)
            status = rng.choice(("New", "New", "Used"))
            writer.writerow(
                (
                    person["first_name"],
                    person["last_name"],
                    person["email"],
                    person["phone"],
                    rng.choice(("mobile", "home", "work")),
                    person["street"],
                    person["city"],
                    person["region"],
                    person["postal_code"],
                    "US",
                    rng.choice(LEAD_TYPES),
                    rng.choice(SOURCES),
                    (start + dt.timedelta(minutes=3 * i)).isoformat(),
                    rng.randint(2019, 2025) if status == "Used" else 2025,
                    make,
                    model,
                    rng.choice(trims),
                    "".join(rng.choice(VIN_CHARS) for _ in range(17)),
                    status,
                    rng.randint(180, 650) * 100,
                    rng.choice(COMMENTS),
                )
            )
    return {
        "rows": count,
        "customers": len(customers),
        "duplicates": len(duplicates),
        "duplicates_by_email": by_email,
        "duplicates_by_phone": by_phone,
    }


def import_once(
    kind: str, path: Path, rows: int, batch: int, time_limit: float, interval: float = 15.0
) -> dict:
    """Time `pursuit import-leads` in a child process, sampling its progress from the database;
    stop it after `time_limit` seconds (0: never)."""
    with fresh_database(kind) as env:
        prepare(env)
        samples: list[tuple[float, int]] = [(0.0, 0)]
        stopped = False
        with tempfile.TemporaryFile("w+") as out:
            started = time.perf_counter()
            proc = subprocess.Popen(
                [
                    PYTHON,
                    "-m",
                    "pursuit.cli",
                    "import-leads",
                    str(path),
                    "--rooftop",
                    ROOFTOP_NAME,
                    "--batch",
                    str(batch),
                ],
                env=env,
                cwd=ROOT,
                stdout=out,
                text=True,
            )
            next_sample, next_print = interval, 60.0
            while proc.poll() is None:
                time.sleep(0.05)
                elapsed = time.perf_counter() - started
                if time_limit and elapsed >= time_limit:
                    proc.terminate()
                    proc.wait()
                    stopped = True
                    break
                if elapsed >= next_sample:
                    next_sample += interval
                    done = rows_done(env)
                    if done is not None:
                        samples.append((elapsed, done))
                    if elapsed >= next_print and len(samples) > 1:
                        next_print += 60.0
                        (t1, n1), (t2, n2) = _window(samples, 60.0)
                        print(
                            f"  {elapsed:5.0f} s: {samples[-1][1]:>7,} rows committed "
                            f"({(n2 - n1) / (t2 - t1):,.0f} rows/s over the last {t2 - t1:.0f} s)",
                            flush=True,
                        )
            seconds = time.perf_counter() - started
            out.seek(0)
            output = out.read().strip()
        if proc.returncode and not stopped:
            raise RuntimeError(f"import-leads exited with {proc.returncode}: {output[-2000:]}")
        done = rows if not stopped else (rows_done(env) or 0)
        samples.append((seconds, done))
        counts = helper("counts", env)
    return {
        "seconds": seconds,
        "rows_done": done,
        "stopped": stopped,
        "output": output,
        "counts": counts,
        "samples": samples,
    }


def _window(samples: list[tuple[float, int]], span: float) -> tuple[tuple[float, int], tuple[float, int]]:
    last = samples[-1]
    first = next((s for s in samples if s[0] >= last[0] - span - 1e-6 and s[0] < last[0]), samples[0])
    return first, last


def projection(samples: list[tuple[float, int]], total: int) -> tuple[float, float]:
    """Seconds a stopped import would have taken for `total` rows: (at its final rate, if the
    time per row keeps growing linearly with the rows already stored, as fitted to the samples)."""
    t_end, n_end = samples[-1]
    (t1, n1), _ = _window(samples, 120.0)
    final_rate = (n_end - n1) / (t_end - t1) if t_end > t1 and n_end > n1 else n_end / t_end
    at_final = t_end + (total - n_end) / final_rate
    # Fit the elapsed time as t(n) = t0 + a*n + c*n^2 (per-row time growing linearly with the rows
    # stored) by least squares over the cumulative samples, and extrapolate when c > 0.
    points = [(n, t) for t, n in samples if n > 0]
    if len(points) < 4:
        return at_final, at_final
    sums = [[sum(n ** (i + j) for n, _ in points) for j in range(3)] for i in range(3)]
    rhs = [sum(t * n**i for n, t in points) for i in range(3)]
    t0, a, c = _solve3(sums, rhs)
    if c <= 0:
        return at_final, at_final
    return at_final, max(at_final, t0 + a * total + c * total**2)


def _solve3(m: list[list[float]], v: list[float]) -> tuple[float, float, float]:
    """Solve the 3x3 system m x = v (Cramer's rule)."""

    def det(x: list[list[float]]) -> float:
        return (
            x[0][0] * (x[1][1] * x[2][2] - x[1][2] * x[2][1])
            - x[0][1] * (x[1][0] * x[2][2] - x[1][2] * x[2][0])
            + x[0][2] * (x[1][0] * x[2][1] - x[1][1] * x[2][0])
        )

    d = det(m)
    if not d:
        return 0.0, 0.0, 0.0
    cols = []
    for k in range(3):
        replaced = [[v[i] if j == k else m[i][j] for j in range(3)] for i in range(3)]
        cols.append(det(replaced) / d)
    return cols[0], cols[1], cols[2]


def ceiling_once(kind: str, path: Path) -> dict:
    with fresh_database(kind) as env:
        prepare(env)
        started = time.perf_counter()
        inner = helper("ceiling", env, str(path))
        seconds = time.perf_counter() - started
        counts = helper("counts", env)
    return {"seconds": seconds, "insert_seconds": inner["seconds"], "counts": counts}


def run_one(kind: str, path: Path, expected: dict, args: argparse.Namespace) -> dict:
    rows = expected["rows"]
    limit = f", stopped after {args.time_limit:.0f} s if not done" if args.time_limit else ""
    print(f"\n== {kind}: pursuit import-leads of {rows:,} rows{limit}", flush=True)
    imported = import_once(kind, path, rows, args.batch, args.time_limit)
    c, seconds, done = imported["counts"], imported["seconds"], imported["rows_done"]
    result = {
        "db": kind,
        "rows": rows,
        "seconds": seconds,
        "rows_done": done,
        "stopped": imported["stopped"],
        "rate": done / seconds,
        "output": imported["output"],
        "counts": c,
        "samples": imported["samples"],
    }
    problems = []
    if imported["stopped"]:
        at_final, growing = projection(imported["samples"], rows)
        result.update(projected_at_final_rate=at_final, projected_growing=growing)
        print(
            f"  STOPPED after {seconds:.0f} s with {done:,} of {rows:,} rows committed "
            f"({done / seconds:,.0f} rows/s on average)"
        )
        print(
            f"  projected time for all {rows:,} rows: at least {at_final:,.0f} s at the final rate; "
            f"{growing:,.0f} s if the time per row keeps growing as measured"
        )
    else:
        print(f"  {seconds:.1f} s end to end, {rows / seconds:,.0f} leads/s ({imported['output']})")
        if c["customers"] != expected["customers"] or c["leads"] != expected["customers"]:
            problems.append(f"expected {expected['customers']:,} customers and leads")
        if c["events"].get("re-inquiry", 0) != expected["duplicates"]:
            problems.append(f"expected {expected['duplicates']:,} re-inquiries")
    notify_jobs = sum(n for k, n in c["jobs"].items() if k.startswith("notify-email"))
    print(
        f"  stored: {c['customers']:,} customers, {c['leads']:,} leads, "
        f"{c['events'].get('re-inquiry', 0):,} re-inquiries, {c['payloads_failed']} failed rows; also "
        f"{c['notifications']:,} staff notifications and {notify_jobs:,} notification emails queued"
    )
    for problem in problems:
        print(f"  CHECK FAILED: {problem}")
    result["problems"] = problems
    if not args.no_ceiling:
        print(f"== {kind}: bare bulk insert of the same rows (the ceiling)", flush=True)
        ceiling = ceiling_once(kind, path)
        print(
            f"  bulk_create: {ceiling['seconds']:.1f} s end to end "
            f"({ceiling['insert_seconds']:.1f} s inserting), "
            f"{rows / ceiling['seconds']:,.0f} rows/s; stored {ceiling['counts']['customers']:,} customers, "
            f"{ceiling['counts']['leads']:,} leads"
        )
        result.update(
            ceiling_seconds=ceiling["seconds"],
            ceiling_insert_seconds=ceiling["insert_seconds"],
            ceiling_rate=rows / ceiling["seconds"],
            ceiling_counts=ceiling["counts"],
        )
    if imported["stopped"]:
        projected = result["projected_at_final_rate"]
    else:
        projected = seconds * TARGET_ROWS / rows
    verdict = "met" if projected < TARGET_SECONDS and not problems and not imported["stopped"] else "MISSED"
    how = (
        "" if rows == TARGET_ROWS and not imported["stopped"] else f" (projected: {projected:,.0f} s or more)"
    )
    print(f"  target {TARGET_ROWS:,} leads in under {TARGET_SECONDS:.0f} s: {verdict}{how}", flush=True)
    result["projected_100k_seconds"] = projected
    return result


def profile(kind: str, path: Path, rows: int, top: int) -> None:
    """cProfile the import (child process) and count its SQL statements per row."""
    out = Path(tempfile.mkdtemp(prefix="pursuit-bench-profile-")) / "import.prof"
    with fresh_database(kind) as env:
        prepare(env)
        started = time.perf_counter()
        subprocess.run(
            [
                PYTHON,
                "-m",
                "cProfile",
                "-o",
                str(out),
                "-m",
                "pursuit.cli",
                "import-leads",
                str(path),
                "--rooftop",
                ROOFTOP_NAME,
            ],
            env=env,
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        seconds = time.perf_counter() - started
    print(
        f"\n== {kind}: {rows:,} rows under cProfile: {seconds:.1f} s ({rows / seconds:,.0f} rows/s, "
        f"profiling overhead included); profile saved in {out}"
    )
    stats = pstats.Stats(str(out))
    stats.sort_stats("cumulative").print_stats(r"pursuit/(intake|leads|work|lib)/", top)
    stats.sort_stats("tottime").print_stats(top)
    with fresh_database(kind) as env:
        prepare(env)
        found = helper("querycount", env, str(path))
    kinds = found["kinds"]
    total = sum(kinds.values())
    print(
        f"SQL statements per row ({kind}): {total / rows:.2f} in all: "
        + ", ".join(f"{k} {n / rows:.2f}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1]))
    )
    print(
        f"Without the profiler: {found['seconds']:.1f} s in all, "
        f"{found['sql_seconds']:.1f} s of it executing SQL statements "
        f"({found['sql_seconds'] / found['seconds']:.0%}). The statements taking longest:"
    )
    for entry in found["top"]:
        print(f"  {entry['seconds']:7.2f} s {entry['n']:>7,} x  {entry['sql']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--db",
        choices=("sqlite", "postgres", "both"),
        default=None,
        help="default: both (sqlite with --profile)",
    )
    parser.add_argument(
        "--leads", type=int, default=None, help="rows in the CSV (default 100000; 5000 with --profile)"
    )
    parser.add_argument(
        "--batch", type=int, default=500, help="--batch passed to import-leads (its default: 500)"
    )
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--time-limit",
        type=float,
        default=600.0,
        help="stop an import still running after this many seconds and report how far it got "
        "and a projection (default 600: five times the target; 0: no limit)",
    )
    parser.add_argument("--no-ceiling", action="store_true", help="skip the bulk-insert ceiling")
    parser.add_argument("--profile", action="store_true", help="profile the import instead of timing it")
    parser.add_argument("--top", type=int, default=30, help="lines of profile to print")
    parser.add_argument("--keep-csv", help="also write the generated CSV to this path")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    db = args.db or ("sqlite" if args.profile else "both")
    rows = args.leads or (5000 if args.profile else TARGET_ROWS)

    info = machine()
    print_machine(info)
    with tempfile.TemporaryDirectory(prefix="pursuit-bench-csv-") as tmp:
        path = Path(tmp) / f"bench-leads-{rows}.csv"
        expected = generate(path, rows, args.seed)
        print(
            f"CSV: {rows:,} rows ({path.stat().st_size / 1e6:.1f} MB, seed {args.seed}): "
            f"{expected['customers']:,} customers, {expected['duplicates']:,} duplicates "
            f"({expected['duplicates_by_email']:,} by email, {expected['duplicates_by_phone']:,} by phone)"
        )
        if args.keep_csv:
            Path(args.keep_csv).write_bytes(path.read_bytes())
        kinds = ["sqlite", "postgres"] if db == "both" else [db]
        if args.profile:
            for kind in kinds:
                profile(kind, path, rows, args.top)
            return
        results = [run_one(kind, path, expected, args) for kind in kinds]

    print(f"\nCSV import of {rows:,} leads ({DUPLICATE_SHARE:.0%} duplicates)")
    print(
        f"{'db':<9}{'rows done':>10}{'import s':>10}{'leads/s':>10}{'ceiling s':>11}{'rows/s':>10}"
        f"{'of ceiling':>12}"
    )
    for r in results:
        ceiling = (
            f"{r['ceiling_seconds']:>11.1f}{r['ceiling_rate']:>10,.0f}{r['rate'] / r['ceiling_rate']:>12.1%}"
            if "ceiling_rate" in r
            else f"{'-':>11}{'-':>10}{'-':>12}"
        )
        print(
            f"{r['db']:<9}{r['rows_done']:>10,}{r['seconds']:>10.1f}{r['rate']:>10,.0f}{ceiling}"
            + ("  (stopped: time limit)" if r["stopped"] else "")
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"machine": info, "expected": expected, "results": results}, indent=2, default=str)
        )
    if any(r["problems"] or r["stopped"] for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()

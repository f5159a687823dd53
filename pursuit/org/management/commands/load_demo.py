"""`pursuit load-demo [--if-empty]`: a demo dealership with a month of realistic history.

Everything goes through the real services, as in production: customers and leads arrive
through `payload_receive` (JSON payloads, de-duplicated and assigned by the rooftop's rules),
and are worked with the lead services (attempts, notes, status changes). A seeded random makes
the same demo every time, relative to the current time (`clock.now()`).

The few leads of the last hour arrive "fresh", so the worker sends their automatic answers and
climbs their speed-to-lead ladder when `make run` starts; the month before arrives as history
(no automatic answers for leads answered long ago).
"""

from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from pursuit.intake.models import AssignmentRule, LeadSource, Payload
from pursuit.intake.parsed import PayloadError
from pursuit.intake.services import payload_receive
from pursuit.leads.models import Customer, Lead
from pursuit.leads.services import attempt_log, lead_status_change, note_add
from pursuit.lib import clock
from pursuit.org.models import DealerGroup, Holiday, Role, Rooftop, Team, User, default_business_hours
from pursuit.outreach.models import ResponseTemplate
from pursuit.work.models import Job, Notification

GROUP = "Lakeside Auto Group"
ROOFTOP = "Lakeside Honda"
DOMAIN = "lakeside-honda.example"
PASSWORD = "pursuit-demo"
SEED = 20260310

# username, first, last, role, direct line. 555-01xx numbers are reserved for fiction and
# still valid for phonenumbers, so they behave like real numbers in the app.
STAFF = [
    ("admin", "Alex", "Morgan", Role.ADMIN, "+13125550101"),
    ("maria", "Maria", "Gonzalez", Role.MANAGER, "+13125550102"),
    ("alice", "Alice", "Nguyen", Role.BDC_AGENT, "+13125550111"),
    ("bob", "Bob", "Kowalski", Role.BDC_AGENT, "+13125550112"),
    ("dana", "Dana", "Brooks", Role.BDC_AGENT, "+13125550113"),
    ("carl", "Carl", "Jensen", Role.CONSULTANT, "+13125550121"),
    ("erin", "Erin", "O'Neill", Role.CONSULTANT, "+13125550122"),
]

SOURCES = [
    ("Cars.com", "internet"),
    ("AutoTrader", "internet"),
    ("Website", "internet"),
    ("OEM", "internet"),
    ("Walk-in", "walk-in"),
    ("Phone", "phone"),
]

# fmt: off
FIRST_NAMES = [
    "James", "Mary", "Robert", "Patricia", "Michael", "Jennifer", "David", "Linda", "William", "Elizabeth",
    "Daniel", "Susan", "Matthew", "Jessica", "Anthony", "Sarah", "Mark", "Karen", "Steven", "Nancy",
    "Andrew", "Lisa", "Joshua", "Betty", "Kevin", "Sandra", "Brian", "Ashley", "Luis", "Priya", "Tyrone",
    "Mei", "Omar", "Fatima", "Wojciech", "Keisha", "Diego", "Hannah", "Raj", "Ngozi",
]
LAST_NAMES = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee",
    "Thompson", "White", "Harris", "Clark", "Lewis", "Robinson", "Walker", "Young", "Patel", "Kim",
    "Nowak", "Okafor", "Schmidt", "Rivera", "Chen", "Murphy", "Sullivan", "Washington", "Khan", "Novak",
]
PLACES = [
    ("Chicago", "60614", "N Clark St"), ("Chicago", "60657", "W Belmont Ave"),
    ("Evanston", "60201", "Sherman Ave"), ("Oak Park", "60302", "N Oak Park Ave"),
    ("Naperville", "60540", "W Jefferson Ave"), ("Schaumburg", "60173", "E Golf Rd"),
    ("Skokie", "60076", "Oakton St"), ("Des Plaines", "60016", "Lee St"),
    ("Berwyn", "60402", "S Oak Park Ave"), ("Park Ridge", "60068", "Touhy Ave"),
]
# fmt: on
AREA_CODES = ["312", "773", "630", "847", "708", "224", "331"]

# model, trims, price of a new one
NEW_HONDAS = [
    ("Civic", ["LX", "Sport", "EX", "Sport Touring Hybrid"], 26500),
    ("Accord", ["LX", "SE", "Sport Hybrid", "Touring Hybrid"], 31500),
    ("CR-V", ["LX", "EX", "EX-L", "Sport Hybrid", "Sport Touring Hybrid"], 33500),
    ("HR-V", ["LX", "Sport", "EX-L"], 27000),
    ("Pilot", ["Sport", "EX-L", "TrailSport", "Elite"], 42500),
    ("Odyssey", ["EX-L", "Sport", "Touring"], 43500),
    ("Passport", ["RTL", "TrailSport", "Black Edition"], 45000),
    ("Ridgeline", ["Sport", "RTL", "TrailSport"], 41500),
]
USED = [
    ("Toyota", "Camry", "SE"),
    ("Ford", "F-150", "XLT"),
    ("Honda", "Civic", "EX"),
    ("Chevrolet", "Equinox", "LT"),
    ("Nissan", "Rogue", "SV"),
    ("Subaru", "Outback", "Premium"),
    ("Jeep", "Grand Cherokee", "Limited"),
    ("Hyundai", "Tucson", "SEL"),
    ("Honda", "CR-V", "EX-L"),
    ("Mazda", "CX-5", "Touring"),
]
TRADES = [
    ("Toyota", "Corolla"),
    ("Honda", "Fit"),
    ("Ford", "Escape"),
    ("Chevrolet", "Malibu"),
    ("Nissan", "Altima"),
    ("Dodge", "Grand Caravan"),
    ("Volkswagen", "Jetta"),
    ("Kia", "Soul"),
]
COMMENTS = [
    "Is this vehicle still available?",
    "What is your best out-the-door price?",
    "Do you have it in blue or gray?",
    "I'd like to schedule a test drive this weekend.",
    "Interested in your lease specials.",
    "What would my payment be with $3,000 down over 60 months?",
    "Can you give me a value on my trade?",
    "Please email me the price breakdown, I work days and can't take calls.",
    "",
    "",
]
TIMEFRAMES = ["Within a week", "Within 2 weeks", "Within a month", "1-3 months", "", ""]
LOST_REASONS = [
    "Price: bought a RAV4 at another dealer for $1,200 less",
    "Trade value: wanted $3,500 more for the trade",
    "Payment: over the monthly budget",
    "Credit: not approved",
    "Spouse: wife wants to wait",
    "Timing: waiting for the new model year",
    "Bought elsewhere",
]
VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"

# What happens to each customer after the lead arrives (counts add up to 36 customers).
SCENARIOS = (
    ["fresh"] * 4
    + ["untouched"] * 2
    + ["working"] * 10
    + ["appointment"] * 5
    + ["sold"] * 5
    + ["lost"] * 6
    + ["re-inquiry"] * 2
    + ["returning"]
    + ["no-contact"]
)


@dataclass
class Demo:
    now: dt.datetime
    rooftop: Rooftop
    rng: random.Random
    staff: dict[str, User]
    sources: dict[str, LeadSource]
    counts: dict[str, int] = field(default_factory=dict)
    lost_reasons: list[str] = field(default_factory=list)


class Command(BaseCommand):
    help = "Load a demo dealership (Lakeside Honda) with staff, sources and a month of leads."

    def add_arguments(self, parser):
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="Do nothing (and say so) when the database already has a rooftop",
        )

    def handle(self, *args, if_empty: bool = False, **options):
        if if_empty and Rooftop.objects.exists():
            self.stdout.write("The database already has data: the demo was not loaded.")
            return
        if Rooftop.objects.filter(name__iexact=ROOFTOP).exists():
            raise CommandError(
                f"A rooftop named {ROOFTOP!r} already exists: the demo seems loaded already. "
                "Load it into an empty database (or use --if-empty)."
            )
        started = clock.now()
        with transaction.atomic():
            demo, website_token, skipped = self._load(started)
        self._report(demo, website_token, skipped)

    # ------------------------------------------------------------------ building

    def _load(self, now: dt.datetime) -> tuple[Demo, str, list[str]]:
        rng = random.Random(SEED)
        group, _ = DealerGroup.objects.get_or_create(name=GROUP)
        hours = default_business_hours() | {"sun": [["11:00", "17:00"]]}
        rooftop = Rooftop.objects.create(
            group=group,
            name=ROOFTOP,
            time_zone="America/Chicago",
            country="US",
            phone="+13125550100",
            email=f"sales@{DOMAIN}",
            website=f"https://www.{DOMAIN}/",
            street="2400 W Lake St",
            city="Chicago",
            region="IL",
            postal_code="60612",
            business_hours=hours,
            text_number="+13125550199",
        )
        today = now.astimezone(rooftop.tz).date()
        christmas = dt.date(today.year, 12, 25)
        if christmas < today:
            christmas = dt.date(today.year + 1, 12, 25)
        Holiday.objects.bulk_create(
            [
                Holiday(rooftop=rooftop, date=christmas, name="Christmas Day"),
                Holiday(rooftop=rooftop, date=dt.date(today.year + 1, 1, 1), name="New Year's Day"),
            ]
        )

        staff, skipped = self._staff(rooftop)
        bdc = Team.objects.create(rooftop=rooftop, name="BDC")
        bdc.members.add(*[staff[u] for u in ("alice", "bob", "dana") if u in staff])
        floor = Team.objects.create(rooftop=rooftop, name="Sales floor")
        floor.members.add(*[staff[u] for u in ("carl", "erin") if u in staff])
        AssignmentRule.objects.bulk_create(
            [
                AssignmentRule(rooftop=rooftop, priority=10, lead_type="internet", team=bdc),
                AssignmentRule(rooftop=rooftop, priority=20, lead_type="phone", team=floor),
                AssignmentRule(rooftop=rooftop, priority=30, lead_type="walk-in", team=floor),
            ]
        )

        sources: dict[str, LeadSource] = {}
        tokens: dict[str, str] = {}
        for name, lead_type in SOURCES:
            source = LeadSource(rooftop=rooftop, name=name, lead_type=lead_type)
            tokens[name] = source.new_token()
            source.save()
            sources[name] = source
        ResponseTemplate.objects.create(rooftop=rooftop)

        demo = Demo(now=now, rooftop=rooftop, rng=rng, staff=staff, sources=sources)
        demo.lost_reasons = rng.sample(LOST_REASONS, len(LOST_REASONS))
        self._customers(demo)
        self._failed_payloads(demo)
        self._quiet_history(demo)
        return demo, tokens["Website"], skipped

    def _staff(self, rooftop: Rooftop) -> tuple[dict[str, User], list[str]]:
        hashed = make_password(PASSWORD)  # hashed once: seven slow hashes would be most of the run time
        existing = set(
            User.objects.filter(username__in=[s[0] for s in STAFF]).values_list("username", flat=True)
        )
        staff: dict[str, User] = {}
        for username, first, last, role, line in STAFF:
            if username in existing:
                continue
            selling = role in (Role.BDC_AGENT, Role.CONSULTANT)
            staff[username] = User.objects.create(
                username=username,
                password=hashed,
                first_name=first,
                last_name=last,
                rooftop=rooftop,
                role=role,
                email=f"{username}@{DOMAIN}",
                direct_line=line,
                on_duty=selling,
                is_staff=role == Role.ADMIN,
                is_superuser=role == Role.ADMIN,
            )
        return staff, sorted(existing)

    def _customers(self, demo: Demo) -> None:
        rng = demo.rng
        names = rng.sample([(f, last) for f in FIRST_NAMES for last in LAST_NAMES], len(SCENARIOS))
        scenarios = list(SCENARIOS)
        rng.shuffle(scenarios)
        for index, (scenario, (first, last)) in enumerate(zip(scenarios, names, strict=True)):
            person = self._person(demo, index, first, last, scenario)
            getattr(self, "_" + scenario.replace("-", "_"))(demo, person)
            demo.counts[scenario] = demo.counts.get(scenario, 0) + 1

    def _person(self, demo: Demo, index: int, first: str, last: str, scenario: str) -> dict:
        rng = demo.rng
        local = "".join(c for c in f"{first}.{last}".lower() if c.isalnum() or c == ".")
        area = AREA_CODES[index % len(AREA_CODES)]
        phone = f"({area}) 555-01{30 + index:02d}"
        person: dict = {"first_name": first, "last_name": last}
        if scenario == "no-contact":
            return person
        person["emails"] = [f"{local}@{rng.choice(['example.com', 'example.net', 'example.org'])}"]
        if rng.random() < 0.8:
            person["phones"] = [{"number": phone, "type": rng.choice(["mobile", "mobile", "home", "work"])}]
        if rng.random() < 0.6:
            city, postal, street = rng.choice(PLACES)
            person["address"] = {
                "street": f"{rng.randint(100, 4999)} {street}",
                "city": city,
                "region": "IL",
                "postal_code": postal,
                "country": "US",
            }
        person["preferred_contact"] = rng.choice(["", "", "email", "phone", "text"])
        return person

    # ------------------------------------------------------------------ one lead's life

    def _vehicle(self, rng: random.Random, year: int) -> dict:
        if rng.random() < 0.75:
            model, trims, price = rng.choice(NEW_HONDAS)
            return {
                "year": rng.choice([year, year + 1]),
                "make": "Honda",
                "model": model,
                "trim": rng.choice(trims),
                "condition": "new",
                "price": str(price + 500 * rng.randint(0, 12)),
                "stock": f"H{rng.randint(10000, 99999)}",
            }
        make, model, trim = rng.choice(USED)
        return {
            "year": rng.randint(year - 7, year - 2),
            "make": make,
            "model": model,
            "trim": trim,
            "condition": "used",
            "price": str(rng.randint(14, 36) * 1000 - 5),
            "vin": "".join(rng.choice(VIN_CHARS) for _ in range(17)),
            "stock": f"U{rng.randint(1000, 9999)}",
            "odometer": rng.randint(18, 95) * 1000,
            "odometer_units": "mi",
        }

    def _arrive(
        self,
        demo: Demo,
        person: dict,
        at: dt.datetime,
        *,
        source: str,
        fresh: bool = False,
        lead_type: str | None = None,
        comments: str | None = None,
    ) -> Lead:
        """A lead arrives through the real intake service, as JSON from `source`."""
        rng = demo.rng
        kind = lead_type or demo.sources[source].lead_type
        body = dict(person, type=kind, source=source)
        body["vehicles"] = [self._vehicle(rng, demo.now.year)]
        if rng.random() < 0.35:
            make, model = rng.choice(TRADES)
            body["trade_ins"] = [
                {
                    "year": rng.randint(demo.now.year - 14, demo.now.year - 4),
                    "make": make,
                    "model": model,
                    "odometer": rng.randint(60, 160) * 1000,
                    "odometer_units": "mi",
                }
            ]
        body["comments"] = rng.choice(COMMENTS) if comments is None else comments
        body["timeframe"] = rng.choice(TIMEFRAMES)
        body["received_at"] = (at - dt.timedelta(seconds=rng.randint(5, 120))).isoformat()
        if kind == "internet":
            body["external_id"] = f"{source[:2].upper()}-{rng.randint(10**6, 10**7 - 1)}"
        payload, results = payload_receive(
            rooftop=demo.rooftop,
            channel=Payload.Channel.JSON_API,
            content=json.dumps(body).encode(),
            now=at,
            source=demo.sources[source],
            content_type="application/json",
            fresh=fresh,
        )
        return Lead.objects.select_related("owner", "customer").get(pk=results[0].lead)

    def _times(
        self, demo: Demo, start: dt.datetime, count: int, *, within: dt.timedelta
    ) -> list[dt.datetime]:
        """`count` increasing moments after `start` (the first within the hour: a good BDC), moved into
        business hours when that keeps them in the past."""
        rng = demo.rng
        end = min(start + within, demo.now - dt.timedelta(minutes=5))
        first = start + min(dt.timedelta(minutes=rng.randint(2, 55)), (end - start) / 4)
        moments = [first] + sorted(first + (end - first) * rng.random() for _ in range(count - 1))
        tz = demo.rooftop.tz
        result: list[dt.datetime] = []
        for moment in moments:
            local = moment.astimezone(tz)
            if local.hour < 9:
                local = local.replace(hour=9, minute=rng.randint(0, 50))
            elif local.hour >= 20:
                local = (local + dt.timedelta(days=1)).replace(hour=9, minute=rng.randint(0, 50))
            moved = local.astimezone(dt.UTC)
            if moved <= demo.now - dt.timedelta(minutes=1):
                moment = moved
            if result and moment <= result[-1]:
                moment = result[-1] + dt.timedelta(minutes=rng.randint(1, 9))
            result.append(min(moment, demo.now - dt.timedelta(seconds=30)))
        return result

    def _ago(self, demo: Demo, low_days: float, high_days: float) -> dt.datetime:
        return demo.now - dt.timedelta(days=demo.rng.uniform(low_days, high_days))

    def _source(self, demo: Demo) -> str:
        return demo.rng.choice(
            ["Cars.com", "Cars.com", "AutoTrader", "Website", "Website", "OEM", "Phone", "Walk-in"]
        )

    def _chase(self, demo: Demo, lead: Lead, times: list[dt.datetime], *, talked_last: bool) -> None:
        """Attempts at each of `times`: no answer, voicemail, emails and texts; the last one
        reaches the customer when `talked_last`."""
        rng = demo.rng
        user = lead.owner or demo.staff.get("maria")
        for i, at in enumerate(times):
            if talked_last and i == len(times) - 1:
                channel = "visit" if lead.type == "walk-in" else "call"
                attempt_log(lead=lead, user=user, channel=channel, outcome="talked", now=at)
            elif lead.type == "walk-in" and i == 0:
                attempt_log(
                    lead=lead,
                    user=user,
                    channel="visit",
                    outcome="talked",
                    now=at,
                    note="Walked the lot, sat in two trims",
                )
            else:
                channel, outcome = rng.choice(
                    [
                        ("call", "no-answer"),
                        ("call", "voicemail"),
                        ("email", "sent"),
                        ("text", "sent"),
                        ("call", "voicemail"),
                    ]
                )
                attempt_log(lead=lead, user=user, channel=channel, outcome=outcome, now=at)

    def _fresh(self, demo: Demo, person: dict) -> None:
        minutes = [2, 9, 23, 48][demo.counts.get("fresh", 0) % 4]
        at = demo.now - dt.timedelta(minutes=minutes, seconds=demo.rng.randint(0, 50))
        self._arrive(
            demo, person, at, source=demo.rng.choice(["Cars.com", "Website", "AutoTrader"]), fresh=True
        )

    def _untouched(self, demo: Demo, person: dict) -> None:
        self._arrive(demo, person, self._ago(demo, 0.3, 2.5), source=demo.rng.choice(["Cars.com", "OEM"]))

    def _working(self, demo: Demo, person: dict) -> None:
        lead = self._arrive(demo, person, self._ago(demo, 1, 25), source=self._source(demo))
        times = self._times(demo, lead.created_at, demo.rng.randint(1, 5), within=dt.timedelta(days=6))
        self._chase(demo, lead, times, talked_last=False)
        if demo.rng.random() < 0.4 and lead.owner:
            note_add(
                lead=lead,
                user=lead.owner,
                now=times[-1] + dt.timedelta(minutes=1),
                text="Sent the e-brochure and current lease offer; will try again Thursday evening.",
            )

    def _appointment(self, demo: Demo, person: dict) -> None:
        lead = self._arrive(demo, person, self._ago(demo, 2, 12), source=self._source(demo))
        times = self._times(demo, lead.created_at, demo.rng.randint(2, 4), within=dt.timedelta(days=3))
        self._chase(demo, lead, times, talked_last=True)
        # A real appointment (reminders, invitation) some time in the next days, in opening hours.
        from pursuit.appointments.services import appointment_set

        set_at = times[-1] + dt.timedelta(minutes=2)
        local = set_at.astimezone(lead.rooftop.tz) + dt.timedelta(days=demo.rng.randint(1, 4))
        starts = local.replace(
            hour=demo.rng.choice([10, 12, 15, 17]), minute=demo.rng.choice([0, 30]), second=0, microsecond=0
        )
        appointment_set(lead=lead, starts_at=starts, by=lead.owner, now=set_at, note="Test drive")

    def _sold(self, demo: Demo, person: dict) -> None:
        lead = self._arrive(demo, person, self._ago(demo, 6, 29), source=self._source(demo))
        times = self._times(demo, lead.created_at, 5, within=dt.timedelta(days=5))
        self._chase(demo, lead, times[:3], talked_last=True)
        lead_status_change(
            lead=lead,
            user=lead.owner,
            status=Lead.Status.APPOINTMENT,
            now=times[3],
            reason="Appointment to drive and work numbers",
        )
        note_add(
            lead=lead, user=lead.owner, now=times[4], text="Showed, drove it, numbers worked with the trade."
        )
        lead_status_change(
            lead=lead,
            user=demo.staff.get("maria") or lead.owner,
            status=Lead.Status.SOLD,
            now=times[4] + dt.timedelta(hours=2),
        )

    def _lost(self, demo: Demo, person: dict) -> None:
        lead = self._arrive(demo, person, self._ago(demo, 5, 29), source=self._source(demo))
        times = self._times(demo, lead.created_at, demo.rng.randint(3, 6), within=dt.timedelta(days=8))
        self._chase(demo, lead, times[:-1], talked_last=True)
        lead_status_change(
            lead=lead,
            user=lead.owner,
            status=Lead.Status.LOST,
            now=times[-1],
            reason=demo.lost_reasons[demo.counts.get("lost", 0) % len(LOST_REASONS)],
        )

    def _re_inquiry(self, demo: Demo, person: dict) -> None:
        lead = self._arrive(demo, person, self._ago(demo, 3, 14), source="Cars.com")
        times = self._times(demo, lead.created_at, 3, within=dt.timedelta(days=3))
        self._chase(demo, lead, times[:2], talked_last=False)
        # The customer asks again, elsewhere: a hot signal on the open lead, not a new lead.
        self._arrive(
            demo,
            person,
            times[2],
            source="Website",
            comments="Still interested. Is the price negotiable if I come in this week?",
        )

    def _returning(self, demo: Demo, person: dict) -> None:
        first = self._arrive(demo, person, self._ago(demo, 26, 29), source="Walk-in")
        times = self._times(demo, first.created_at, 3, within=dt.timedelta(days=4))
        self._chase(demo, first, times[:2], talked_last=True)
        lead_status_change(
            lead=first,
            user=first.owner,
            status=Lead.Status.LOST,
            now=times[2],
            reason="Timing: waiting for the new model year",
        )
        # A be-back: a new lead, which goes back to the previous owner.
        again = self._arrive(
            demo,
            person,
            self._ago(demo, 0.5, 2),
            source="Website",
            comments="I came in last month; ready to look again now that the new ones are in.",
        )
        at = self._times(demo, again.created_at, 1, within=dt.timedelta(hours=4))
        self._chase(demo, again, at, talked_last=True)

    def _no_contact(self, demo: Demo, person: dict) -> None:
        self._arrive(
            demo,
            person,
            self._ago(demo, 0.5, 3),
            source="Walk-in",
            comments="Looked at the Pilot on the lot; left before giving a phone number or email.",
        )

    def _failed_payloads(self, demo: Demo) -> None:
        """Two ADF payloads that fail, so the admin's failed list has something to show."""
        unescaped = (
            '<?xml version="1.0"?>\n<adf>\n<prospect>\n<requestdate>2025-03-01T10:00:00-06:00</requestdate>\n'
            '<vehicle interest="buy" status="new"><year>2025</year><make>Honda</make>'
            "<model>Civic</model></vehicle>\n"
            '<customer><contact><name part="full">Tom Becker</name><email>tom.becker@example.com</email>'
            "</contact>\n<comments>Trade & payment question</comments></customer>\n</prospect>\n</adf>\n"
        )
        entity = (
            '<?xml version="1.0"?>\n<!DOCTYPE adf [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
            '<adf><prospect><customer><contact><name part="full">&xxe;</name>'
            "</contact></customer></prospect></adf>\n"
        )
        for content, source, days in ((unescaped, "Cars.com", 3.2), (entity, "AutoTrader", 6.7)):
            try:
                payload_receive(
                    rooftop=demo.rooftop,
                    channel=Payload.Channel.ADF_HTTP,
                    content=content.encode(),
                    now=demo.now - dt.timedelta(days=days),
                    source=demo.sources[source],
                    content_type="application/xml",
                )
            except PayloadError:
                demo.counts["failed payloads"] = demo.counts.get("failed payloads", 0) + 1

    def _quiet_history(self, demo: Demo) -> None:
        """History is history: whatever staff were told about last month's leads (a re-inquiry, an
        unassigned lead) they read long ago, and the emails about it went out then; `make run`
        must not email everyone about old news."""
        cutoff = demo.now - dt.timedelta(hours=1)
        Job.objects.filter(
            kind="notify-email", status=Job.Status.PENDING, due_at__lt=cutoff, lead__rooftop=demo.rooftop
        ).update(status=Job.Status.CANCELLED, done_at=demo.now)
        for note in Notification.objects.filter(
            lead__rooftop=demo.rooftop, created_at__lt=cutoff, read_at=None
        ):
            note.read_at = min(note.created_at + dt.timedelta(minutes=demo.rng.randint(1, 30)), demo.now)
            note.save(update_fields=["read_at"])

    # ------------------------------------------------------------------ the report

    def _report(self, demo: Demo, website_token: str, skipped: list[str]) -> None:
        rooftop = demo.rooftop
        leads = Lead.objects.filter(rooftop=rooftop)
        by_status = {s.label: leads.filter(status=s).count() for s in Lead.Status}
        failed = Payload.objects.filter(rooftop=rooftop, status=Payload.Status.FAILED).count()
        customers = Customer.objects.filter(rooftop=rooftop).count()
        self.stdout.write(
            self.style.SUCCESS(
                f"Loaded the demo dealership {rooftop.name} ({rooftop.time_zone}): {customers} customers, "
                f"{leads.count()} leads, {failed} failed payloads."
            )
        )
        self.stdout.write(
            "Leads by status: " + ", ".join(f"{k.lower()} {v}" for k, v in by_status.items() if v)
        )
        self.stdout.write(
            "Lead sources: " + ", ".join(demo.sources) + ". Token of the Website source "
            "(shown only now; issue new ones with `pursuit add-source NAME`):"
        )
        self.stdout.write(website_token)
        if skipped:
            self.stdout.write(
                self.style.WARNING(
                    "These users existed already and were left as they are: " + ", ".join(skipped)
                )
            )
        self.stdout.write("")
        self.stdout.write("Logins (username / password / role):")
        for username, _, _, role, _ in STAFF:
            user = demo.staff.get(username)
            if user is None:
                continue
            extra = ", superuser" if user.is_superuser else ""
            self.stdout.write(f"  {username:<6} / {PASSWORD} / {Role(role).label}{extra}")
        self.stdout.write("")
        self.stdout.write(f"Open {settings.BASE_URL}/ (admin at /admin/)")

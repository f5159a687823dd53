"""A simulated year at one rooftop, through the real intake, plans, gate and worker.

`simulate(customers=, days=, seed=)` builds a rooftop and its staff on the database Django is
connected to (the `pursuit simulate` command gives it a fresh one), then moves a clock through
the period without sleeping:

- synthetic customers arrive (internet leads as ADF through `payload_receive`, phone-ups and
  walk-ins entered by staff through the new-lead form's path) and behave at random: they
  answer calls or not, reply, book and keep or miss appointments, visit and buy or leave with an
  objection, come back, buy elsewhere, text STOP, unsubscribe, die;
- the staff work their lists every half hour while they are at work (the BDC longer than the
  showroom): each due task is put to the gate (`may_contact`, deferrals recorded) at the moment
  they would act, done only when it is allowed (`attempt_log`, which records the touch),
  otherwise left until the moment the gate named;
- the worker (`run_due_once`) runs when work is due: jobs (the instant answer, the ladder,
  notifications, texts) at their moment, plan steps on a grid of `GRAIN`; the daily jobs are
  scheduled each day (`daily_jobs_schedule`).

After the run every `Touch` is judged again (`violations_find`): the gate's pure `decide` at
the touch's moment, on the facts as they stood then (`facts_before`), plus any touch at or after
the customer's stop (opt-out, do-not-contact, death). `coverage_gaps` is read after every run of
the worker; `uncovered` counts the open leads ever seen without a next step.

The world is decided by the seed: the same seed gives the same run. docs/simulate.md says what
is modelled, what is approximated, and how the two final figures are computed.
"""

from __future__ import annotations

import copy
import datetime as dt
import heapq
import itertools
import json
import random
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import holidays as holiday_calendars
import phonenumbers
from django.core import mail
from django.db.models import Count, Min
from django.test.utils import override_settings

from pursuit.appointments.models import Appointment
from pursuit.appointments.services import AppointmentError, appointment_outcome
from pursuit.appointments.services import appointment_set as appointment_book
from pursuit.compliance.gate import Facts, decide, may_contact
from pursuit.compliance.keywords import help_reply, start_confirmation, stop_confirmation
from pursuit.compliance.models import Consent, Decision, RegistryNumber, Suppression, Touch
from pursuit.compliance.services import (
    consent_record,
    email_reply_check,
    registry_import,
    staff_do_not_contact,
    stop_request,
    unsubscribe,
    unsubscribe_token,
)
from pursuit.intake.models import AssignmentRule, LeadSource, Payload
from pursuit.intake.parsed import PayloadError
from pursuit.intake.services import payload_process, payload_receive, payload_store
from pursuit.leads.models import Customer, CustomerEmail, CustomerPhone, Lead, LeadEvent
from pursuit.leads.services import LeadError, attempt_log, lead_status_change
from pursuit.lib.hours import Hours, is_open, local, next_open
from pursuit.lib.zones import region_time_zone
from pursuit.org.management.commands.load_demo import FIRST_NAMES, LAST_NAMES, NEW_HONDAS, TRADES
from pursuit.org.models import DealerGroup, Holiday, Role, Rooftop, Team, User
from pursuit.outreach.models import OutboundEmail
from pursuit.plans.files import plans_install_defaults
from pursuit.plans.models import Step
from pursuit.plans.services import (
    OBJECTIONS,
    PlanError,
    callback_add,
    callback_done,
    channel_remove,
    coverage_gaps,
    customer_stop,
    on_reply,
    rooftop_hours,
    step_finish,
    step_skip_reason,
    visit_log,
)
from pursuit.texting.services import text_inbound
from pursuit.work.models import Job
from pursuit.work.services import daily_jobs_schedule, run_due_once

UTC = dt.UTC
DEFAULT_START = dt.date(2026, 1, 5)  # a Monday
# The worker runs at most once per grid point (and at once after an arrival): a worker polling
# every few minutes. Jobs (the speed-to-lead ladder, notifications) run at their exact moment.
GRAIN = dt.timedelta(minutes=10)
# Staff open their lists every half hour while they work: consultants and the manager in the
# rooftop's hours, the BDC longer (early and evening calls, Sunday afternoons), which is when the
# gate has most to hold back for customers in other time zones and states.
SESSION = dt.timedelta(minutes=30)
BDC_HOURS = {
    **dict.fromkeys(("mon", "tue", "wed", "thu", "fri"), [["08:00", "21:00"]]),
    "sat": [["08:00", "19:00"]],
    "sun": [["11:00", "17:00"]],
}
WORKER = "simulation"
BATCH = 25
LIST_LIMIT = 200
HOLIDAYS = (
    "New Year's Day",
    "Memorial Day",
    "Independence Day",
    "Labor Day",
    "Thanksgiving",
    "Christmas Day",
)

# Where customers live: weight, area codes, (city, ZIP, street). The rooftop is in Chicago, so
# most are near it; the rest exercise other states' hours, Sunday and holiday bans, caps, the
# Texas registration and the time zones from Eastern to Arizona and Pacific.
STATES = {
    "IL": (40, ("312", "773", "630", "847", "708", "224", "331", "815"), (
        ("Chicago", "60614", "N Clark St"), ("Evanston", "60201", "Sherman Ave"),
        ("Naperville", "60540", "W Jefferson Ave"), ("Joliet", "60432", "Collins St"))),
    "IN": (5, ("219", "317"), (("Gary", "46402", "Broadway"), ("Indianapolis", "46204", "N Meridian St"))),
    "WI": (5, ("414", "262"), (("Milwaukee", "53202", "N Water St"), ("Kenosha", "53140", "Sheridan Rd"))),
    "FL": (8, ("305", "813", "407", "904"), (
        ("Miami", "33130", "SW 8th St"), ("Tampa", "33602", "N Franklin St"),
        ("Orlando", "32801", "E Central Blvd"))),
    "AL": (4, ("205", "334", "256"), (
        ("Birmingham", "35203", "1st Ave N"), ("Montgomery", "36104", "Dexter Ave"))),
    "TX": (8, ("214", "512", "713", "210"), (
        ("Dallas", "75201", "Main St"), ("Austin", "78701", "Congress Ave"),
        ("Houston", "77002", "Travis St"))),
    "CA": (6, ("213", "415", "619", "916"), (
        ("Los Angeles", "90012", "S Spring St"), ("San Diego", "92101", "Broadway"))),
    "NY": (6, ("212", "718", "516", "585"), (
        ("New York", "10007", "Broadway"), ("Rochester", "14604", "Main St E"))),
    "MD": (4, ("301", "410"), (
        ("Baltimore", "21202", "N Charles St"), ("Rockville", "20850", "Maryland Ave"))),
    "KY": (3, ("502", "859"), (("Louisville", "40202", "W Main St"),)),
    "PA": (3, ("215", "412"), (
        ("Philadelphia", "19107", "Market St"), ("Pittsburgh", "15222", "Liberty Ave"))),
    "AZ": (3, ("602", "480"), (("Phoenix", "85004", "N Central Ave"),)),
    "MI": (3, ("313", "616"), (("Detroit", "48226", "Woodward Ave"),)),
}  # fmt: skip

# username, first, last, role, direct line, team
STAFF = (
    ("maria", "Maria", "Gonzalez", Role.MANAGER, "+13125550102", ""),
    ("alice", "Alice", "Nguyen", Role.BDC_AGENT, "+13125550111", "BDC"),
    ("bob", "Bob", "Kowalski", Role.BDC_AGENT, "+13125550112", "BDC"),
    ("dana", "Dana", "Brooks", Role.BDC_AGENT, "+13125550113", "BDC"),
    ("carl", "Carl", "Jensen", Role.CONSULTANT, "+13125550121", "Sales floor"),
    ("erin", "Erin", "O'Neill", Role.CONSULTANT, "+13125550122", "Sales floor"),
)
SOURCES = ("Cars.com", "AutoTrader", "Website", "OEM")

# How customers behave: probabilities (p_*) and ranges. One place, so docs/simulate.md can cite it.
BEHAVIOUR = {
    "kind": {"internet": 0.70, "phone": 0.15, "walk-in": 0.15},
    "p_email": {"internet": 0.88, "phone": 0.6, "walk-in": 0.6},
    "p_phone": {"internet": 0.8, "phone": 1.0, "walk-in": 0.9},
    "phone_type": {"mobile": 0.75, "home": 0.18, "work": 0.07},
    "p_no_contact_walk_in": 0.03,
    "p_address": 0.75,
    "p_other_area_code": 0.12,  # the phone's state differs from the address's
    "p_adf_text_yes": 0.35,  # "Can we contact you via text?: Yes" (a provider's flag, not written)
    "p_adf_email_no": 0.04,  # "Email Opt-In: No"
    "p_adf_do_not_call": 0.02,  # "Do Not Call: Yes"
    "p_form_text_opt_in": 0.5,  # ticked by staff on the form: written consent
    "p_form_text_opt_out": 0.1,  # the customer said no to texts on the form
    "p_registry_before": 0.15,  # on the national registry before the period
    "p_registry_during": 0.05,  # registers during it
    "answers": (0.05, 0.15, 0.3, 0.5),  # chance a call is answered, one drawn per customer
    "p_bad_number": 0.03,
    "p_reply": 0.15,
    "p_appointment_first_talk": 0.3,
    "p_appointment_later_talk": 0.12,
    "p_appointment_reply": 0.25,
    "p_show": 0.7,
    "p_buy_first_visit": 0.3,
    "p_buy_be_back": 0.55,
    "p_be_back": 0.3,
    "p_drop_in": 0.06,  # an internet or phone customer comes in unannounced
    "p_elsewhere": 0.15,
    "p_tell_elsewhere": 0.4,  # says so by message; the others say it when someone gets through
    "p_stop_text": 0.03,
    "p_unsubscribe": 0.03,
    "p_plain_stop": 0.01,  # "please stop texting me": flagged, confirmed by a person
    "p_ask_dnc_on_call": 0.03,
    "p_deceased": 0.003,
    "p_inquire_again": 0.06,
    "p_callback": 0.08,  # "I forgot to say": a callback after a talk
    "p_written_consent_at_visit": 0.4,
}

REPLIES = (
    "What is the best price you can do on it?",
    "Is it still available?",
    "Could I come by Saturday morning to see it?",
    "Does it come in blue?",
    "What would the payment be over 60 months?",
)
ELSEWHERE = "Thanks for your help, but I bought one somewhere else last week."


# --------------------------------------------------------------------------- the population


@dataclass
class Person:
    """A synthetic customer: who they are and what they will do, decided from the seed."""

    index: int
    rng: random.Random
    first: str
    last: str
    kind: str  # internet | phone | walk-in
    arrives: dt.datetime
    state: str
    address: dict | None
    phone: str  # E.164, or "" for none
    phone_written: str
    phone_type: str
    email: str
    adf_lines: list[str]
    text_opt_in: bool | None
    registered: dt.datetime | None  # when the number goes on the national registry
    answers: float
    bad_number: bool
    plans: dict[str, dt.datetime] = field(default_factory=dict)  # event kind -> moment
    # What happened, filled in as the run goes.
    customer_id: int | None = None
    stopped: dt.datetime | None = None
    visits: int = 0
    unsold_visits: int = 0
    talks: int = 0
    bought_elsewhere: bool = False


def _weighted(rng: random.Random, table: dict):
    return rng.choices(list(table), weights=list(table.values()))[0]


def _phone_make(rng: random.Random, area: str, taken: set[str]) -> tuple[str, str]:
    """A number valid for phonenumbers (so intake verifies it), unique in the population."""
    while True:
        exchange = rng.randint(200, 999)
        if exchange % 100 == 11 or exchange == 555:
            continue
        line = rng.randint(0, 9999)
        number = f"+1{area}{exchange}{line:04d}"
        if number in taken or not phonenumbers.is_valid_number(phonenumbers.parse(number)):
            continue
        taken.add(number)
        return number, f"({area}) {exchange}-{line:04d}"


def _open_moment(rng: random.Random, day: dt.date, hours) -> dt.datetime:
    """A random moment the rooftop is open on `day`, or on the next day it opens."""
    for offset in range(14):
        spans = hours.spans_on(day + dt.timedelta(days=offset))
        if spans:
            opens, closes = spans[0]
            start = local(day + dt.timedelta(days=offset), opens, hours.zone)
            end = local(day + dt.timedelta(days=offset), closes, hours.zone)
            seconds = (end - start).total_seconds() - 1800
            return (start + dt.timedelta(seconds=rng.uniform(0, seconds))).astimezone(UTC)
    raise ValueError("the rooftop is never open")


def population_build(*, customers: int, days: int, seed: int, start: dt.datetime, hours) -> list[Person]:
    """The customers of the run, each with their own random stream (so one customer's choices do
    not shift another's)."""
    taken: set[str] = set()
    states = list(STATES)
    weights = [STATES[s][0] for s in states]
    people = []
    b = BEHAVIOUR
    for index in range(customers):
        rng = random.Random(f"{seed}:{index}")
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        kind = _weighted(rng, b["kind"])
        state = rng.choices(states, weights=weights)[0]
        day = start.date() + dt.timedelta(days=int(rng.random() * days))
        if kind == "internet":
            zone = region_time_zone(state, "US")
            # Day and evening mostly, some at night: providers forward leads at any hour.
            hour = rng.choices(range(24), weights=[1] * 7 + [4] * 15 + [2] * 2)[0]
            arrives = local(day, dt.time(hour, rng.randint(0, 59), rng.randint(0, 59)), ZoneInfo(zone))
            arrives = arrives.astimezone(UTC)
        else:
            arrives = _open_moment(rng, day, hours)
        no_contact = kind == "walk-in" and rng.random() < b["p_no_contact_walk_in"]
        has_email = not no_contact and rng.random() < b["p_email"][kind]
        has_phone = not no_contact and (
            rng.random() < b["p_phone"][kind] or (kind == "internet" and not has_email)
        )
        phone = written = phone_type = ""
        if has_phone:
            phone_state = state
            if rng.random() < b["p_other_area_code"]:
                phone_state = rng.choices(states, weights=weights)[0]
            phone, written = _phone_make(rng, rng.choice(STATES[phone_state][1]), taken)
            phone_type = _weighted(rng, b["phone_type"])
        email = ""
        if has_email:
            domain = rng.choice(["example.com", "example.net", "example.org"])
            email = f"{first}.{last}.{index}@{domain}".lower().replace("'", "")
        address = None
        if rng.random() < b["p_address"] or kind == "walk-in":
            city, postal, street = rng.choice(STATES[state][2])
            address = {
                "street": f"{rng.randint(100, 4999)} {street}",
                "city": city,
                "region": state,
                "postal_code": postal,
                "country": "US",
            }
        lines = []
        if kind == "internet":
            if rng.random() < b["p_adf_text_yes"]:
                lines.append("Can we contact you via text?: Yes")
            if rng.random() < b["p_adf_email_no"]:
                lines.append("Email Opt-In: No")
            if rng.random() < b["p_adf_do_not_call"]:
                lines.append("Do Not Call: Yes")
        text_opt_in = None
        if kind != "internet" and phone_type == "mobile":
            roll = rng.random()
            if roll < b["p_form_text_opt_in"]:
                text_opt_in = True
            elif roll < b["p_form_text_opt_in"] + b["p_form_text_opt_out"]:
                text_opt_in = False
        registered = None
        if phone:
            roll = rng.random()
            if roll < b["p_registry_before"]:
                registered = start - dt.timedelta(days=400)
            elif roll < b["p_registry_before"] + b["p_registry_during"]:
                registered = start + dt.timedelta(days=rng.random() * days)
        person = Person(
            index=index,
            rng=rng,
            first=first,
            last=last,
            kind=kind,
            arrives=arrives,
            state=state,
            address=address,
            phone=phone,
            phone_written=written,
            phone_type=phone_type,
            email=email,
            adf_lines=lines,
            text_opt_in=text_opt_in,
            registered=registered,
            answers=rng.choice(b["answers"]),
            bad_number=rng.random() < b["p_bad_number"],
        )
        _fates(person, b)
        people.append(person)
    return people


def _fates(p: Person, b: dict) -> None:
    """When the person will do the things that do not depend on being reached."""
    rng, after = p.rng, p.arrives

    def within(low_days: float, high_days: float) -> dt.datetime:
        return after + dt.timedelta(days=rng.uniform(low_days, high_days))

    mobile = bool(p.phone) and p.phone_type == "mobile"
    if rng.random() < b["p_reply"] and (p.email or mobile):
        p.plans["reply"] = within(0.01, 6)
    if p.kind != "walk-in" and rng.random() < b["p_drop_in"]:
        p.plans["drop-in"] = within(1, 30)
    if rng.random() < b["p_elsewhere"]:
        p.plans["elsewhere"] = within(1, 60)
    if mobile and rng.random() < b["p_stop_text"]:
        p.plans["stop-text"] = within(0.2, 40)
    if p.email and rng.random() < b["p_unsubscribe"]:
        p.plans["unsubscribe"] = within(1, 90)
    if mobile and rng.random() < b["p_plain_stop"]:
        p.plans["plain-stop"] = within(0.5, 30)
    if rng.random() < b["p_deceased"]:
        p.plans["deceased"] = within(5, 300)
    if rng.random() < b["p_inquire_again"]:
        p.plans["inquire-again"] = within(7, 200)


# --------------------------------------------------------------------------- the rooftop


def rooftop_build(*, start: dt.datetime, years: range) -> tuple[Rooftop, dict[str, User], list[LeadSource]]:
    """The rooftop, its staff, teams, assignment rules, sources, holidays and the shipped plans."""
    group = DealerGroup.objects.create(name="Simulated Auto Group")
    rooftop = Rooftop.objects.create(
        group=group,
        name="Prairie Honda",
        time_zone="America/Chicago",
        country="US",
        phone="+13125550100",
        email="sales@prairie-honda.example",
        website="https://www.prairie-honda.example/",
        street="2400 W Lake St",
        city="Chicago",
        region="IL",
        postal_code="60612",
        text_number="+13125550199",
    )
    calendar = holiday_calendars.country_holidays("US", subdiv="IL", years=list(years))
    Holiday.objects.bulk_create(
        Holiday(rooftop=rooftop, date=day, name=name)
        for day, name in sorted(calendar.items())
        if any(name.startswith(h) for h in HOLIDAYS)
    )
    staff: dict[str, User] = {}
    teams: dict[str, Team] = {}
    for username, first, last, role, line, team in STAFF:
        user = User(
            username=username,
            first_name=first,
            last_name=last,
            rooftop=rooftop,
            role=role,
            email=f"{username}@prairie-honda.example",
            direct_line=line,
            on_duty=True,
        )
        user.set_unusable_password()
        user.save()
        staff[username] = user
        if team:
            if team not in teams:
                teams[team] = Team.objects.create(rooftop=rooftop, name=team)
            teams[team].members.add(user)
    AssignmentRule.objects.bulk_create(
        [
            AssignmentRule(rooftop=rooftop, priority=10, lead_type="internet", team=teams["BDC"]),
            AssignmentRule(rooftop=rooftop, priority=20, lead_type="phone", team=teams["Sales floor"]),
            AssignmentRule(rooftop=rooftop, priority=30, lead_type="walk-in", team=teams["Sales floor"]),
        ]
    )
    sources = []
    for name in SOURCES:
        source = LeadSource(rooftop=rooftop, name=name, lead_type="internet")
        source.new_token()
        source.save()
        sources.append(source)
    plans_install_defaults(rooftop=rooftop, now=start)
    return rooftop, staff, sources


# --------------------------------------------------------------------------- the world


@dataclass
class World:
    start: dt.datetime
    end: dt.datetime
    rooftop: Rooftop
    hours: Hours  # the rooftop's (consultants, the manager, visits)
    bdc_hours: Hours
    staff: dict[str, User]
    sources: list[LeadSource]
    people: list[Person]
    rng: random.Random
    heap: list = field(default_factory=list)
    seq: itertools.count = field(default_factory=itertools.count)
    held: dict[int, dt.datetime] = field(default_factory=dict)  # step -> when the list says it may go
    counts: Counter = field(default_factory=Counter)
    uncovered: set[int] = field(default_factory=set)
    registry: list[tuple[dt.datetime, frozenset[str]]] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)  # what the app refused to do, in its words
    stops: dict[int, tuple[dt.datetime, str]] = field(default_factory=dict)
    by_customer: dict[int, Person] = field(default_factory=dict)
    worker_next: dt.datetime | None = None
    last: dt.datetime | None = None

    @property
    def consultants(self) -> list[User]:
        return [u for u in self.staff.values() if u.role == Role.CONSULTANT]

    @property
    def manager(self) -> User:
        return self.staff["maria"]

    def hours_of(self, user: User | None) -> Hours:
        return self.bdc_hours if user is not None and user.role == Role.BDC_AGENT else self.hours


def push(w: World, at: dt.datetime, kind: str, *args) -> None:
    heapq.heappush(w.heap, (at, next(w.seq), kind, args))


def grid_ceil(at: dt.datetime) -> dt.datetime:
    step = GRAIN.total_seconds()
    seconds = at.timestamp()
    return dt.datetime.fromtimestamp(-(-seconds // step) * step, tz=UTC)


def _later_open(
    w: World, at: dt.datetime, low_minutes: float, high_minutes: float, hours: Hours | None = None
) -> dt.datetime:
    """A moment `low`-`high` minutes after `at`, moved into `hours` (the rooftop's by default)."""
    hours = hours or w.hours
    moment = at + dt.timedelta(minutes=w.rng.uniform(low_minutes, high_minutes))
    return next_open(moment, hours).astimezone(UTC) + (
        dt.timedelta(0) if is_open(moment, hours) else dt.timedelta(minutes=w.rng.uniform(2, 40))
    )


# --------------------------------------------------------------------------- how leads come in


def _vehicle(rng: random.Random, year: int) -> tuple[int, str, str, str]:
    model, trims, _price = rng.choice(NEW_HONDAS)
    return rng.choice([year, year + 1]), "Honda", model, rng.choice(trims)


def adf_build(p: Person, at: dt.datetime, source: str, comments: str = "") -> bytes:
    """The person's inquiry as a lead provider sends it."""
    year, make, model, trim = _vehicle(p.rng, at.year)
    contact = f'<name part="first">{escape(p.first)}</name><name part="last">{escape(p.last)}</name>'
    if p.email:
        contact += f"<email>{p.email}</email>"
    if p.phone:
        kind = {"mobile": "cellphone", "home": "home", "work": "work"}[p.phone_type]
        contact += f'<phone type="{kind}">{p.phone_written}</phone>'
    if p.address:
        a = p.address
        contact += (
            f'<address><street line="1">{escape(a["street"])}</street><city>{escape(a["city"])}</city>'
            f"<regioncode>{a['region']}</regioncode><postalcode>{a['postal_code']}</postalcode>"
            f"<country>US</country></address>"
        )
    lines = [comments or p.rng.choice(REPLIES), *p.adf_lines]
    sent = (at - dt.timedelta(seconds=p.rng.randint(5, 90))).isoformat()
    return (
        f'<?xml version="1.0"?><?adf version="1.0"?><adf><prospect status="new">'
        f'<id sequence="1" source="{source}">SIM-{p.index}-{int(at.timestamp())}</id>'
        f"<requestdate>{sent}</requestdate>"
        f'<vehicle interest="buy" status="new"><year>{year}</year><make>{make}</make>'
        f"<model>{model}</model><trim>{escape(trim)}</trim></vehicle>"
        f"<customer><contact>{contact}</contact><comments>{escape(chr(10).join(lines))}</comments></customer>"
        f"<vendor><vendorname>Prairie Honda</vendorname></vendor>"
        f"<provider><name>{source}</name></provider></prospect></adf>"
    ).encode()


def form_build(p: Person, at: dt.datetime, kind: str) -> bytes:
    """The new-lead form a member of staff fills in for a phone-up or a walk-in."""
    year, make, model, trim = _vehicle(p.rng, at.year)
    body: dict = {
        "first_name": p.first,
        "last_name": p.last,
        "type": kind,
        "emails": [p.email] if p.email else [],
        "phones": [{"number": p.phone_written, "type": p.phone_type}] if p.phone else [],
        "vehicles": [{"year": year, "make": make, "model": model, "trim": trim, "condition": "new"}],
        "comments": "Came in to look at the " + model if kind == "walk-in" else "Called about the " + model,
    }
    if p.address:
        body["address"] = p.address
    if p.text_opt_in is not None:
        body["text_opt_in"] = p.text_opt_in
    if p.rng.random() < 0.35:
        make, model = p.rng.choice(TRADES)
        body["trade_ins"] = [{"year": at.year - p.rng.randint(4, 14), "make": make, "model": model}]
    return json.dumps(body).encode()


def internet_lead(w: World, p: Person, at: dt.datetime, comments: str = "") -> Lead:
    source = w.rng.choice(w.sources)
    _payload, [result] = payload_receive(
        rooftop=w.rooftop,
        channel=Payload.Channel.ADF_HTTP,
        content=adf_build(p, at, source.name, comments),
        now=at,
        source=source,
        content_type="application/xml",
    )
    return _taken_in(w, p, result)


def entered_lead(w: World, p: Person, at: dt.datetime, kind: str, by: User) -> Lead:
    payload = payload_store(
        rooftop=w.rooftop,
        channel=Payload.Channel.FORM,
        source=None,
        content=form_build(p, at, kind),
        content_type="application/json",
        name=f"entered by {by.username}",
        now=at,
    )
    [result] = payload_process(payload=payload, now=at, actor=by)
    return _taken_in(w, p, result)


def _taken_in(w: World, p: Person, result) -> Lead:
    w.counts["re-inquiries" if result.status == "re-inquiry" else "leads created"] += 1
    if p.customer_id is None:
        p.customer_id = result.customer
        w.by_customer[result.customer] = p
    return Lead.objects.select_related("customer__rooftop", "rooftop", "owner").get(pk=result.lead)


def open_lead(p: Person) -> Lead | None:
    if p.customer_id is None:
        return None
    return (
        Lead.objects.select_related("customer__rooftop", "rooftop", "owner")
        .filter(customer_id=p.customer_id, status__in=Lead.OPEN_STATUSES)
        .first()
    )


# --------------------------------------------------------------------------- the staff


def session_start(w: World, at: dt.datetime) -> None:
    """Each member of staff opens their list: the due tasks, in the list's order, are scheduled
    one after the other through the half hour; what does not fit waits for the next session."""
    end = at + SESSION
    lists: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for assignee, step_id, channel in (
        Step.objects.filter(
            assignee_id__in=[u.pk for u in w.staff.values()],
            status=Step.Status.PENDING,
            action="task",
            due_at__lte=at,
        )
        .order_by("priority", "due_at", "id")
        .values_list("assignee_id", "id", "channel")
    ):
        if w.held.get(step_id, at) <= at:  # else the list says when the gate allows it
            lists[assignee].append((step_id, channel))
    for user in w.staff.values():
        if not is_open(at, w.hours_of(user)):
            continue
        moment = at + dt.timedelta(minutes=w.rng.uniform(0, 3))
        for step_id, channel in lists[user.pk][:LIST_LIMIT]:
            if moment >= end:
                break
            push(w, moment, "task", user.pk, step_id)
            moment += dt.timedelta(minutes=w.rng.uniform(*TASK_MINUTES.get(channel, (2, 4))))


TASK_MINUTES = {"call": (3, 7), "text": (1.5, 3), "email": (4, 8), "video": (6, 10), "letter": (4, 6)}


def session_after(w: World, at: dt.datetime) -> dt.datetime:
    """The next half-hour mark after `at` when someone works (the BDC's hours hold the rooftop's)."""
    step = SESSION.total_seconds()
    moment = dt.datetime.fromtimestamp((at.timestamp() // step + 1) * step, tz=UTC)
    if not is_open(moment, w.bdc_hours):
        moment = next_open(moment, w.bdc_hours).astimezone(UTC)
    return moment


def task_do(w: World, user: User, step_id: int, at: dt.datetime) -> None:
    """A person does one task of their list: skip it if its conditions say so, ask the gate at
    this moment, and act only when allowed."""
    step = (
        Step.objects.select_related(
            "lead__customer__rooftop", "lead__rooftop", "lead__owner", "plan_step", "enrolment__version__plan"
        )
        .filter(pk=step_id)
        .first()
    )
    if step is None or step.status != Step.Status.PENDING or step.action != "task" or step.due_at > at:
        return
    lead, customer = step.lead, step.lead.customer
    reason = step_skip_reason(step, lead)
    if reason:
        step_finish(step=step, now=at, status=Step.Status.SKIPPED, outcome=reason, by=user)
        w.counts["tasks skipped (their conditions)"] += 1
        return
    p = w.by_customer.get(customer.pk)
    channel = step.channel
    if channel == "video":
        # A walk-around video is sent by email or text (attempt_log knows no "video").
        channel = "email" if customer.emails.exists() else "text"
    # The purpose the touch will be recorded with: a task of a transactional plan (an appointment
    # reminder) is transactional, anything else is sales (as `attempt_log` decides it).
    transactional = step.enrolment.version.plan.kind == "transactional"
    answer = may_contact(
        customer, channel, "transactional" if transactional else "marketing", at, lead=lead, step=step
    )
    if answer.verdict == "defer":
        w.held[step.pk] = answer.until
        w.counts["tasks deferred by the gate"] += 1
        return
    if answer.verdict == "deny":
        w.counts["tasks denied by the gate"] += 1
        if answer.ends_channel and channel in ("call", "text", "email"):
            channel_remove(customer=customer, channel=channel, reason=answer.detail, now=at, by=user)
        step.refresh_from_db(fields=["status"])
        if step.status == Step.Status.PENDING:
            step_finish(step=step, now=at, status=Step.Status.SKIPPED, outcome=answer.detail, by=user)
        return
    if step.plan_step_id is None:
        # A callback ("I forgot to say"): done with callback_done, which logs no attempt.
        callback_done(step=step, by=user, now=at, note="called back")
        w.counts["callbacks made"] += 1
        return
    if step.channel == "letter" or step.channel == "social":
        step_finish(step=step, now=at, outcome="done", by=user)
        w.counts[f"{step.channel} tasks done"] += 1
        return
    if channel == "call":
        outcome = call_outcome(p, step)
        attempt_log(lead=lead, user=user, channel="call", outcome=outcome, now=at)
        w.counts[f"calls: {outcome}"] += 1
        if outcome == "talked" and p is not None:
            push(w, at + dt.timedelta(minutes=2), "after-talk", p.index, lead.pk, user.pk)
    else:
        attempt_log(lead=lead, user=user, channel=channel, outcome="sent", now=at)
    if step.channel == "video":
        w.counts["videos sent"] += 1
        step.refresh_from_db(fields=["status"])
        if step.status == Step.Status.PENDING:
            step_finish(step=step, now=at, outcome="video sent", by=user)


def call_outcome(p: Person | None, step: Step) -> str:
    if p is None:
        return "no-answer"
    if p.bad_number:
        return "bad-number"
    if p.rng.random() < p.answers:
        return "talked"
    return "voicemail" if step.plan_step_id and step.plan_step.voicemail else "no-answer"


def first_look(w: World, p: Person, lead_id: int, at: dt.datetime) -> None:
    """The owner opens a new internet lead minutes after it arrived and makes the first call."""
    lead = Lead.objects.select_related("owner").get(pk=lead_id)
    if not lead.is_open or lead.owner is None:
        return
    step = (
        Step.objects.filter(
            lead=lead, status=Step.Status.PENDING, action="task", channel="call", due_at__lte=at
        )
        .order_by("due_at", "id")
        .first()
    )
    if step is not None:
        w.counts["first looks"] += 1
        task_do(w, lead.owner, step.pk, at)


def after_talk(w: World, p: Person, lead_id: int, user: User, at: dt.datetime) -> None:
    """What a conversation leads to, written just after the call."""
    lead = Lead.objects.select_related("customer__rooftop", "rooftop", "owner").get(pk=lead_id)
    first = p.talks == 0
    p.talks += 1
    if not lead.is_open:
        return
    b = BEHAVIOUR
    if p.bought_elsewhere:
        lead_status_change(lead=lead, user=user, status=Lead.Status.LOST, now=at, reason="Bought elsewhere")
        w.counts["bought elsewhere"] += 1
        return
    if p.rng.random() < b["p_ask_dnc_on_call"]:
        staff_do_not_contact(
            customer=lead.customer, at=at, by=user, note="asked on the phone not to be contacted"
        )
        _stopped(w, p, at, "asked on a call")
        return
    wants = b["p_appointment_first_talk"] if first else b["p_appointment_later_talk"]
    if lead.status in (Lead.Status.NEW, Lead.Status.WORKING) and p.rng.random() < wants:
        appointment_set(w, p, lead, user, at)
    elif p.rng.random() < b["p_callback"]:
        step = callback_add(lead=lead, by=user, point="the trade-in figure they asked for", now=at)
        w.counts["callbacks added"] += 1
        push(w, at + dt.timedelta(minutes=w.rng.uniform(1, 10)), "task", user.pk, step.pk)


def appointment_set(w: World, p: Person, lead: Lead, user: User, at: dt.datetime) -> None:
    """A test drive 1-4 days later in opening hours, with a consultant (the appointments service
    sets the status and starts the appointment plan, its reminders timed from it)."""
    day = at.astimezone(w.hours.zone).date() + dt.timedelta(days=p.rng.randint(1, 4))
    when = _open_moment(p.rng, day, w.hours)
    with_user = (
        lead.owner if lead.owner and lead.owner.role == Role.CONSULTANT else w.rng.choice(w.consultants)
    )
    booked = appointment_book(
        lead=lead, starts_at=when, by=user, now=at, with_user=with_user, note="Test drive"
    )
    w.counts["appointments set"] += 1
    push(w, when, "appointment", p.index, booked.pk)


# --------------------------------------------------------------------------- the customers


def arrive(w: World, p: Person, at: dt.datetime) -> None:
    if p.kind == "internet":
        lead = internet_lead(w, p, at)
        if lead.owner is not None and is_open(at, w.hours_of(lead.owner)):
            # Mostly within minutes; sometimes the owner is busy and the ladder moves first.
            roll = w.rng.random()
            delay = w.rng.uniform(*((1, 5) if roll < 0.6 else (5, 15) if roll < 0.9 else (15, 60)))
            push(w, at + dt.timedelta(minutes=delay), "first-look", p.index, lead.pk)
    else:
        pool = (
            w.consultants if p.kind == "walk-in" else [u for u in w.staff.values() if u.role != Role.MANAGER]
        )
        by = w.rng.choice(pool)
        lead = entered_lead(w, p, at, p.kind, by)
        if p.kind == "walk-in":
            p.visits += 1
            w.counts["visits"] += 1
            push(w, at + dt.timedelta(minutes=w.rng.uniform(30, 90)), "visit-end", p.index, lead.pk, by.pk)
    w.counts[f"arrivals: {p.kind}"] += 1
    for kind, moment in p.plans.items():
        push(w, moment, kind, p.index)


def visit_start(w: World, p: Person, at: dt.datetime, lead: Lead | None = None) -> None:
    """The customer comes in (an appointment, a drop-in, a be-back)."""
    if p.stopped is not None:
        return  # in this model, a customer who asked us to stop does not come back
    consultant = w.rng.choice(w.consultants)
    lead = lead or open_lead(p)
    if lead is None:
        lead = entered_lead(w, p, at, "walk-in", consultant)
    if p.unsold_visits:
        w.counts["be-backs"] += 1
    p.visits += 1
    w.counts["visits"] += 1
    push(w, at + dt.timedelta(minutes=w.rng.uniform(30, 90)), "visit-end", p.index, lead.pk, consultant.pk)


def visit_end(w: World, p: Person, lead_id: int, consultant: User, at: dt.datetime) -> None:
    """The visit ends with a sale or an objection; some sign the text consent form."""
    lead = Lead.objects.select_related("customer__rooftop", "rooftop", "owner").get(pk=lead_id)
    if not lead.is_open:
        return
    b = BEHAVIOUR
    if p.rng.random() < b["p_written_consent_at_visit"] and p.phone_type == "mobile":
        consent_record(
            customer=lead.customer,
            channel="text",
            granted=True,
            written=True,
            source=Consent.Source.STAFF,
            evidence="Signed the text-message consent form at the visit",
            at=at,
            by=consultant,
            lead=lead,
        )
    buys = p.rng.random() < (b["p_buy_be_back"] if p.unsold_visits else b["p_buy_first_visit"])
    if buys:
        lead_status_change(lead=lead, user=consultant, status=Lead.Status.SOLD, now=at)
        w.counts["sales"] += 1
        if p.unsold_visits:
            w.counts["be-back sales"] += 1
        return
    objection = p.rng.choice(sorted(OBJECTIONS))
    visit_log(lead=lead, by=consultant, objection=objection, now=at)
    p.unsold_visits += 1
    w.counts[f"objection: {objection}"] += 1
    if p.rng.random() < b["p_be_back"]:
        day = at.astimezone(w.hours.zone).date() + dt.timedelta(days=p.rng.randint(2, 45))
        push(w, _open_moment(p.rng, day, w.hours), "be-back", p.index)


def appointment(w: World, p: Person, appointment_id: int, at: dt.datetime) -> None:
    """The time of the appointment: the customer comes (the visit follows) or not."""
    booked = Appointment.objects.select_related(
        "lead__customer__rooftop", "lead__rooftop", "lead__owner"
    ).get(pk=appointment_id)
    lead = booked.lead
    if booked.status != Appointment.Status.SET or not lead.is_open:
        return
    by = booked.with_user or lead.owner or w.manager
    shown = p.rng.random() < BEHAVIOUR["p_show"]
    appointment_outcome(appointment=booked, shown=shown, by=by, now=at)
    if shown:
        w.counts["appointments shown"] += 1
        visit_start(
            w, p, at, Lead.objects.select_related("customer__rooftop", "rooftop", "owner").get(pk=lead.pk)
        )
    else:
        w.counts["appointments missed"] += 1


def drop_in(w: World, p: Person, at: dt.datetime) -> None:
    """An unannounced visit, in opening hours."""
    if is_open(at, w.hours):
        visit_start(w, p, at)
    else:
        push(w, _later_open(w, at, 0, 0), "drop-in", p.index)


def reply(w: World, p: Person, at: dt.datetime) -> None:
    """The customer writes back, by text when they have a mobile, else by email. The plan's
    automatic steps wait until someone answers (`on_reply`)."""
    lead = open_lead(p)
    if lead is None or p.stopped is not None:
        return
    body = ELSEWHERE if p.bought_elsewhere else p.rng.choice(REPLIES)
    mobile = p.phone and p.phone_type == "mobile"
    channel = "text" if mobile and (not p.email or p.rng.random() < 0.5) else "email"
    if channel == "text":
        text_in(w, p, body, at)
    else:
        # No inbound-email service yet: the reply check and the plan's reply hook it would call.
        email_reply_check(lead=lead, text=body, at=at)
        on_reply(lead=lead, channel="email", text=body, now=at)
    w.counts[f"replies: {channel}"] += 1
    push(w, _later_open(w, at, 5, 40, w.hours_of(lead.owner)), "answer-reply", p.index, lead.pk, channel)


def text_in(w: World, p: Person, body: str, at: dt.datetime) -> None:
    """A text from the customer, as the provider's webhook hands it over."""
    text_inbound(rooftop=w.rooftop, from_number=p.phone, body=body, provider_id=f"SIM{next(w.seq)}", now=at)


def answer_reply(w: World, p: Person, lead_id: int, channel: str, at: dt.datetime) -> None:
    """The owner answers the customer's message: the same way if the gate allows it, else by
    another lawful channel; when every channel is held, at the first moment one is allowed."""
    lead = Lead.objects.select_related("customer__rooftop", "rooftop", "owner").get(pk=lead_id)
    if not lead.is_open:
        return
    user = lead.owner or w.manager
    if p.bought_elsewhere:
        lead_status_change(
            lead=lead,
            user=user,
            status=Lead.Status.LOST,
            now=at,
            reason="Bought elsewhere (said so in a reply)",
        )
        w.counts["bought elsewhere"] += 1
        return
    later = []
    for way in dict.fromkeys((channel, "email", "call")):
        answer = may_contact(lead.customer, way, "marketing", at, lead=lead)
        if answer.verdict == "defer":
            later.append(answer.until)
            continue
        if answer.verdict == "deny":
            continue
        if way == "call":
            outcome = "talked" if p.rng.random() < max(p.answers, 0.5) else "voicemail"
            attempt_log(
                lead=lead, user=user, channel="call", outcome=outcome, now=at, note="about their message"
            )
            w.counts[f"calls: {outcome}"] += 1
        else:
            attempt_log(
                lead=lead, user=user, channel=way, outcome="sent", now=at, note="answered their message"
            )
        w.counts["replies answered"] += 1
        if (
            lead.status in (Lead.Status.NEW, Lead.Status.WORKING)
            and p.rng.random() < BEHAVIOUR["p_appointment_reply"]
        ):
            appointment_set(w, p, lead, user, at)
        return
    if later:
        push(
            w,
            min(later) + dt.timedelta(minutes=w.rng.uniform(1, 20)),
            "answer-reply",
            p.index,
            lead.pk,
            channel,
        )
    else:
        w.counts["replies left unanswered (gate)"] += 1


def _stopped(w: World, p: Person, at: dt.datetime, how: str) -> None:
    if p.stopped is None:
        p.stopped = at
        w.stops[p.customer_id] = (at, how)
        w.counts[f"opt-outs: {how}"] += 1


def stop_text(w: World, p: Person, at: dt.datetime) -> None:
    if p.stopped is None:
        text_in(w, p, p.rng.choice(["STOP", "Stop", "stop", "UNSUBSCRIBE"]), at)
        _stopped(w, p, at, "text STOP")


def unsubscribe_click(w: World, p: Person, at: dt.datetime) -> None:
    if p.stopped is None and OutboundEmail.objects.filter(to=p.email, kind__startswith="plan:").exists():
        unsubscribe(token=unsubscribe_token(Customer(pk=p.customer_id), p.email), at=at)
        _stopped(w, p, at, "unsubscribe link")


def plain_stop(w: World, p: Person, at: dt.datetime) -> None:
    """A stop in plain words: flagged by the gateway, confirmed by the owner at the next session."""
    if p.stopped is None:
        text_in(w, p, "Please stop texting me", at)
        w.counts["plain-language stops flagged"] += 1
        push(w, _later_open(w, at, 20, 120), "confirm-stop", p.index)


def confirm_stop(w: World, p: Person, at: dt.datetime) -> None:
    if p.stopped is None:
        customer = Customer.objects.select_related("rooftop__group").get(pk=p.customer_id)
        lead = customer.leads.order_by("-id").select_related("owner").first()
        stop_request(
            customer=customer,
            channel="text",
            source="staff",
            note="Please stop texting me (confirmed)",
            at=at,
            by=lead.owner if lead else None,
        )
        _stopped(w, p, at, "plain words, confirmed")


def deceased(w: World, p: Person, at: dt.datetime) -> None:
    customer = Customer.objects.select_related("rooftop").get(pk=p.customer_id)
    customer_stop(customer=customer, reason="deceased", now=at, by=w.manager)
    if p.stopped is None:
        p.stopped = at
        w.stops[p.customer_id] = (at, "deceased")
    w.counts["deceased"] += 1


def elsewhere(w: World, p: Person, at: dt.datetime) -> None:
    """They buy from another dealer; some tell us in a message, the others when reached."""
    if open_lead(p) is None:
        return
    p.bought_elsewhere = True
    if p.rng.random() < BEHAVIOUR["p_tell_elsewhere"] and (p.email or p.phone_type == "mobile"):
        push(w, at + dt.timedelta(hours=p.rng.uniform(1, 48)), "reply", p.index)


def inquire_again(w: World, p: Person, at: dt.datetime) -> None:
    if ("deceased" in p.plans and p.plans["deceased"] <= at) or not (p.email or p.phone):
        return
    p.bought_elsewhere = False
    internet_lead(w, p, at, comments="I asked before; still looking. Anything new?")
    w.counts["inquiries again"] += 1


def registry_refresh(w: World, at: dt.datetime) -> None:
    """A fresh copy of the national registry (the monthly scrub): the customers' numbers
    registered by then, and numbers of strangers."""
    numbers = sorted(p.phone for p in w.people if p.registered is not None and p.registered <= at)
    strangers = [f"312{w.rng.randint(2000000, 9999999)}" for _ in range(200)]
    registry_import(
        lines=[n[2:] for n in numbers] + strangers,
        copied_on=at.date(),
        at=at,
        file_name=f"registry-{at:%Y-%m-%d}.txt",
    )
    w.registry.append((at, frozenset(numbers) | frozenset(f"+1{s}" for s in strangers)))
    w.counts["registry copies"] += 1


# --------------------------------------------------------------------------- the clock


HANDLERS = {
    "arrive": lambda w, at, i: arrive(w, w.people[i], at),
    "first-look": lambda w, at, i, lead: first_look(w, w.people[i], lead, at),
    "task": lambda w, at, user, step: task_do(w, _user(w, user), step, at),
    "after-talk": lambda w, at, i, lead, user: after_talk(w, w.people[i], lead, _user(w, user), at),
    "appointment": lambda w, at, i, booked: appointment(w, w.people[i], booked, at),
    "visit-end": lambda w, at, i, lead, user: visit_end(w, w.people[i], lead, _user(w, user), at),
    "be-back": lambda w, at, i: visit_start(w, w.people[i], at),
    "drop-in": lambda w, at, i: drop_in(w, w.people[i], at),
    "reply": lambda w, at, i: reply(w, w.people[i], at),
    "answer-reply": lambda w, at, i, lead, channel: answer_reply(w, w.people[i], lead, channel, at),
    "elsewhere": lambda w, at, i: elsewhere(w, w.people[i], at),
    "stop-text": lambda w, at, i: stop_text(w, w.people[i], at),
    "unsubscribe": lambda w, at, i: unsubscribe_click(w, w.people[i], at),
    "plain-stop": lambda w, at, i: plain_stop(w, w.people[i], at),
    "confirm-stop": lambda w, at, i: confirm_stop(w, w.people[i], at),
    "deceased": lambda w, at, i: deceased(w, w.people[i], at),
    "inquire-again": lambda w, at, i: inquire_again(w, w.people[i], at),
    "day": lambda w, at: daily_jobs_schedule(now=at),
    "registry": lambda w, at: registry_refresh(w, at),
}


def _user(w: World, pk: int) -> User:
    return next(u for u in w.staff.values() if u.pk == pk)


def worker_drain(w: World, at: dt.datetime) -> None:
    """The worker runs until nothing is due at `at`; then the coverage check, and when it must
    run next."""
    for _ in range(100_000):
        run_due_once(now=at, worker=WORKER, limit=BATCH)
        following = _next_due(at)
        if following > at:
            break
    else:
        raise RuntimeError(f"the worker never ran dry at {at}")
    w.counts["worker runs"] += 1
    outbox = getattr(mail, "outbox", [])
    for message in outbox:
        w.counts[
            "emails to staff" if message.to[0].endswith("@prairie-honda.example") else "emails to customers"
        ] += 1
    outbox.clear()
    w.uncovered.update(coverage_gaps().values_list("id", flat=True))
    w.worker_next = following


def _next_due(at: dt.datetime, *, leases: bool = True) -> dt.datetime:
    """The next moment the worker has something to do: jobs at their exact moment, plan steps on
    the grid, a lease running out (`leases`: only a worker run leaves rows claimed). Two or four
    indexed MIN queries: much cheaper than a worker run that finds nothing."""
    jobs = [Job.objects.filter(status=Job.Status.PENDING).aggregate(m=Min("due_at"))["m"]]
    steps = [Step.objects.filter(status=Step.Status.PENDING, action="send").aggregate(m=Min("due_at"))["m"]]
    if leases:
        jobs.append(Job.objects.filter(status=Job.Status.CLAIMED).aggregate(m=Min("claimed_until"))["m"])
        steps.append(Step.objects.filter(status=Step.Status.CLAIMED).aggregate(m=Min("claimed_until"))["m"])
    candidates = [j for j in jobs if j is not None] + [grid_ceil(s) for s in steps if s is not None]
    if not candidates:
        return dt.datetime.max.replace(tzinfo=UTC)
    return max(min(candidates), at)


def world_build(*, customers: int, days: int, seed: int, start: dt.date) -> World:
    begin = dt.datetime.combine(start, dt.time(), tzinfo=UTC)
    end = begin + dt.timedelta(days=days)
    rooftop, staff, sources = rooftop_build(start=begin, years=range(start.year - 1, end.year + 2))
    hours = rooftop_hours(rooftop)
    bdc_hours = Hours.build(time_zone=rooftop.time_zone, business_hours=BDC_HOURS, holidays=hours.closed)
    people = population_build(customers=customers, days=days, seed=seed, start=begin, hours=hours)
    w = World(
        start=begin,
        end=end,
        rooftop=rooftop,
        hours=hours,
        bdc_hours=bdc_hours,
        staff=staff,
        sources=sources,
        people=people,
        rng=random.Random(f"{seed}:world"),
    )
    # The registry's copies and the days first, so that at equal moments they come first.
    for month in range(0, days, 30):
        push(w, begin + dt.timedelta(days=month), "registry")
    for day in range(days):
        push(w, begin + dt.timedelta(days=day), "day")
    for p in people:
        push(w, p.arrives, "arrive", p.index)
    w.worker_next = begin
    return w


def run(w: World, progress=None) -> None:
    """Move the clock from start to end: events, worker runs and staff sessions in time order."""
    session = session_after(w, w.start - dt.timedelta(seconds=1))
    never = dt.datetime.max.replace(tzinfo=UTC)
    report_at = w.start + dt.timedelta(days=30)
    started = time.monotonic()
    while True:
        event_at = w.heap[0][0] if w.heap else never
        at = min(event_at, w.worker_next, session)
        if at >= w.end:
            break
        if w.last is not None and at < w.last:
            raise RuntimeError(f"the clock went back from {w.last} to {at}")
        w.last = at
        if at == event_at:
            _, _, kind, args = heapq.heappop(w.heap)
            try:
                HANDLERS[kind](w, at, *args)
            except (PlanError, LeadError, PayloadError, AppointmentError) as exc:
                # What a person would be told on the page; counted and shown, the run goes on.
                w.counts["refused by the app"] += 1
                if len(w.refusals) < 5:
                    w.refusals.append(f"{kind} at {at:%Y-%m-%d %H:%M}: {type(exc).__name__}: {exc}")
            w.counts["events"] += 1
            # What the event made due (an instant answer, a notification, a released step).
            w.worker_next = min(w.worker_next, _next_due(at, leases=False))
        elif at == w.worker_next:
            worker_drain(w, at)
        else:
            session_start(w, at)
            w.counts["staff sessions"] += 1
            session = session_after(w, at)
        if progress is not None and at >= report_at:
            progress(
                f"day {(at - w.start).days}: {Customer.objects.count()} customers, "
                f"{Touch.objects.count()} touches, {time.monotonic() - started:.0f} s"
            )
            report_at += dt.timedelta(days=30)
    worker_drain(w, w.end)


# --------------------------------------------------------------------------- the check


@dataclass
class History:
    """Everything the gate reads about one customer, with the moment each row was written."""

    customer: Customer
    phones: list[tuple[str, str, bool]]
    emails: list[str]
    suppressed: list[tuple[dt.datetime, str]] = field(default_factory=list)
    consents: list[Consent] = field(default_factory=list)
    touches: list[tuple[dt.datetime, int, str, str]] = field(default_factory=list)  # at, id, channel, purpose
    leads: list[tuple[dt.datetime, dt.datetime, dt.datetime | None]] = field(default_factory=list)
    stopped: tuple[dt.datetime, str] | None = None  # do not contact / deceased, and since when


def histories_load(customer_ids=None) -> dict[int, History]:
    """The histories of these customers (all when None) in a fixed number of queries."""
    customers = Customer.objects.select_related("rooftop__group").order_by("pk")
    if customer_ids is not None:
        customers = customers.filter(pk__in=list(customer_ids))
    found = {c.pk: History(customer=c, phones=[], emails=[]) for c in customers}
    ids = list(found)
    phones = defaultdict(list)
    for phone in CustomerPhone.objects.filter(customer_id__in=ids):
        phones[phone.customer_id].append(phone)
    for customer_id, rows in phones.items():
        order = sorted(rows, key=lambda ph: (not ph.preferred, ph.type != "mobile", ph.pk))  # as facts_load
        found[customer_id].phones = [(ph.number, ph.type, ph.verified) for ph in order]
    for customer_id, address in (
        CustomerEmail.objects.filter(customer_id__in=ids).order_by("pk").values_list("customer_id", "address")
    ):
        found[customer_id].emails.append(address)
    owners: dict[tuple[int, str], list[int]] = defaultdict(list)
    for h in found.values():
        for value in [p[0] for p in h.phones] + h.emails:
            owners[(h.customer.rooftop.group_id, value)].append(h.customer.pk)
    for group_id, value, at in Suppression.objects.values_list("group_id", "value", "at"):
        for customer_id in owners.get((group_id, value), ()):
            found[customer_id].suppressed.append((at, value))
    for consent in Consent.objects.filter(customer_id__in=ids).order_by("at", "id"):
        found[consent.customer_id].consents.append(consent)
    for customer_id, at, pk, channel, purpose in (
        Touch.objects.filter(customer_id__in=ids)
        .order_by("at", "id")
        .values_list("customer_id", "at", "id", "channel", "purpose")
    ):
        found[customer_id].touches.append((at, pk, channel, purpose))
    for customer_id, created, received, sold in Lead.objects.filter(customer_id__in=ids).values_list(
        "customer_id", "created_at", "received_at", "sold_at"
    ):
        found[customer_id].leads.append((created, received, sold))
    _stops_load(found)
    return found


def _stops_load(found: dict[int, History]) -> None:
    """Since when a customer now marked "do not contact" or deceased has been so, from the rows
    the stop services write: the refusals of `stop_request`, the internal list, and the closing
    of their leads."""
    flagged = {pk: h for pk, h in found.items() if h.customer.do_not_contact or h.customer.deceased}
    if not flagged:
        return
    moments: dict[int, list] = defaultdict(list)
    for customer_id, at in (
        Consent.objects.filter(customer_id__in=flagged, granted=False)
        .exclude(source__in=(Consent.Source.LEAD, Consent.Source.FORM))
        .values_list("customer_id", "at")
    ):
        moments[customer_id].append(at)
    for customer_id, at in Suppression.objects.filter(customer_id__in=flagged).values_list(
        "customer_id", "at"
    ):
        moments[customer_id].append(at)
    for customer_id, at in LeadEvent.objects.filter(
        lead__customer_id__in=flagged,
        kind=LeadEvent.Kind.STATUS,
        data__reason__in=["deceased", "do-not-contact"],
    ).values_list("lead__customer_id", "at"):
        moments[customer_id].append(at)
    for customer_id, h in flagged.items():
        if moments[customer_id]:
            h.stopped = (min(moments[customer_id]), "deceased" if h.customer.deceased else "do-not-contact")


def facts_before(
    history: History, at: dt.datetime, *, touch_id: int | None = None, registry=None
) -> tuple[Customer, Facts]:
    """The customer and the gate's `Facts` as they stood when a touch at `at` was decided.

    Rows written at `at` itself count as known (intake and the instant answer share a moment);
    of the touches at `at`, only those written before `touch_id`. `registry(at)` gives the numbers
    on the national registry then; without it, the registry as it is now (it is replaced whole by
    each copy, so the database keeps no history of it). Contacts carry no date: they are taken
    as they are now.
    """
    h = history
    facts = Facts(phones=list(h.phones), emails=list(h.emails))
    facts.suppressed = {value for when, value in h.suppressed if when <= at}
    listed = registry(at) if registry is not None else _registry_now()
    facts.on_registry = {number for number, _kind, _verified in h.phones if number in listed}
    for consent in h.consents:
        if consent.at <= at:
            facts.consents[(consent.channel, consent.purpose)] = consent
    week = at - dt.timedelta(days=7)
    facts.touches = [
        (channel, purpose, when)
        for when, pk, channel, purpose in h.touches
        if week < when <= at and (when < at or touch_id is None or pk < touch_id)
    ]
    facts.last_inquiry = max((received for created, received, _ in h.leads if created <= at), default=None)
    facts.last_purchase = max(
        (sold for _, _, sold in h.leads if sold is not None and sold <= at), default=None
    )
    customer = copy.copy(h.customer)
    stopped = h.stopped is not None and h.stopped[0] <= at
    customer.deceased = h.customer.deceased and stopped
    customer.do_not_contact = h.customer.do_not_contact and stopped
    return customer, facts


_REGISTRY_CACHE: dict[str, frozenset[str]] = {}


def _registry_now() -> frozenset[str]:
    if "now" not in _REGISTRY_CACHE:
        _REGISTRY_CACHE["now"] = frozenset(RegistryNumber.objects.values_list("number", flat=True))
    return _REGISTRY_CACHE["now"]


@dataclass(frozen=True)
class Violation:
    touch: int
    customer: int
    channel: str
    purpose: str
    at: dt.datetime
    rule: str
    detail: str

    def describe(self, zone) -> str:
        here = self.at.astimezone(zone)
        return (
            f"touch {self.touch}: {self.channel} ({self.purpose}) to customer {self.customer} at "
            f"{self.at:%Y-%m-%d %H:%M} UTC ({here:%a %H:%M} {zone.key}): {self.rule}: {self.detail}"
        )


def keyword_reply(touch: Touch, rooftop: Rooftop) -> bool:
    """The one reply the law asks for after a keyword (the STOP confirmation, the HELP answer):
    a transactional text the texting service sends without the gate and records as a touch."""
    if touch.channel != "text" or touch.purpose != "transactional" or not touch.automated:
        return False
    replies = (stop_confirmation(rooftop.name), start_confirmation(rooftop.name))
    replies += (help_reply(rooftop.name, rooftop.phone or "", rooftop.website or rooftop.email),)
    return touch.what in {r[:200] for r in replies}


def touch_check(
    history: History, touch: Touch, *, registry=None, stop=None, confirmation_due: bool = False
) -> Violation | None:
    """A touch the rules of its moment did not allow, or None. After a stop nothing may reach
    the customer but, when `confirmation_due`, the one keyword reply."""
    stop = stop or history.stopped
    if stop is not None and touch.at >= stop[0]:
        if confirmation_due and keyword_reply(touch, history.customer.rooftop):
            return None
        return Violation(
            touch.pk,
            touch.customer_id,
            touch.channel,
            touch.purpose,
            touch.at,
            f"after-stop:{stop[1]}",
            f"the customer stopped contact at {stop[0]:%Y-%m-%d %H:%M} UTC",
        )
    customer, facts = facts_before(history, touch.at, touch_id=touch.pk, registry=registry)
    answer = decide(
        customer,
        facts,
        channel=touch.channel,
        purpose=touch.purpose,
        at=touch.at,
        automated=touch.automated,
        rooftop=customer.rooftop,
    )
    if answer.allowed:
        return None
    return Violation(
        touch.pk,
        touch.customer_id,
        touch.channel,
        touch.purpose,
        touch.at,
        f"{answer.verdict}:{answer.rule}",
        answer.detail,
    )


def violations_find(*, registry=None, stops: dict | None = None) -> list[Violation]:
    """Every touch in the database judged again against the rules of its moment. `registry` and
    `stops` (customer -> (moment, how)) are what the simulation knows better than the database."""
    _REGISTRY_CACHE.clear()
    histories = histories_load()
    found = []
    confirmed: set[int] = set()  # customers whose one keyword reply after the stop was seen
    for touch in Touch.objects.order_by("at", "id").iterator(chunk_size=5000):
        history = histories[touch.customer_id]
        stop = (stops or {}).get(touch.customer_id) or history.stopped
        due = touch.customer_id not in confirmed
        violation = touch_check(history, touch, registry=registry, stop=stop, confirmation_due=due)
        if violation is None and stop is not None and touch.at >= stop[0]:
            confirmed.add(touch.customer_id)
        if violation is not None:
            found.append(violation)
    return found


def registry_at(copies: list[tuple[dt.datetime, frozenset[str]]]):
    """`registry` for `facts_before`: the numbers of the last copy imported at or before a moment."""

    def numbers(at: dt.datetime) -> frozenset[str]:
        current: frozenset[str] = frozenset()
        for imported, listed in copies:
            if imported > at:
                break
            current = listed
        return current

    return numbers


# --------------------------------------------------------------------------- the report


@dataclass
class Report:
    lines: list[str]
    violations: list[Violation]
    uncovered: int
    counts: Counter
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.violations and not self.uncovered

    def text(self) -> str:
        return "\n".join(self.lines)


def report_build(w: World, violations: list[Violation], seconds: float, check_seconds: float) -> Report:
    c = w.counts
    lines = [f"Simulated {w.rooftop.name} from {w.start:%Y-%m-%d} for {(w.end - w.start).days} days"]

    def add(label: str, value) -> None:
        lines.append(f"  {label:<42} {value}")

    def group(title: str, rows) -> None:
        lines.append(title)
        rows = list(rows)
        for label, value in rows:
            add(label, value)
        if not rows:
            add("none", 0)

    leads = Lead.objects.all()
    lines.append("People")
    add("customers", Customer.objects.count())
    add(
        "arrivals (internet / phone-up / walk-in)",
        f"{c['arrivals: internet']} / {c['arrivals: phone']} / {c['arrivals: walk-in']}",
    )
    add("leads", f"{leads.count()} ({c['re-inquiries']} re-inquiries on open leads)")
    add("leads open at the end", leads.filter(status__in=Lead.OPEN_STATUSES).count())
    group(
        "Touches (Touch rows)",
        [
            (f"{channel} {purpose} {'automatic' if automated else 'by hand'}", n)
            for channel, purpose, automated, n in Touch.objects.values_list("channel", "purpose", "automated")
            .annotate(n=Count("id"))
            .order_by("channel", "purpose", "automated")
        ],
    )
    add("all touches", Touch.objects.count())
    lines.append("Work")
    add("emails sent to customers (mail backend)", c["emails to customers"])
    add(
        "  of which automatic answers",
        OutboundEmail.objects.filter(kind="auto-response", status="sent").count(),
    )
    add(
        "  of which plan emails",
        OutboundEmail.objects.filter(kind__startswith="plan:", status="sent").count(),
    )
    add("emails to staff (notifications)", c["emails to staff"])
    add(
        "calls (talked / voicemail / no answer / bad number)",
        " / ".join(str(c[f"calls: {o}"]) for o in ("talked", "voicemail", "no-answer", "bad-number")),
    )
    add("new internet leads opened by their owner at once", c["first looks"])
    add("tasks skipped (their conditions)", c["tasks skipped (their conditions)"])
    add(
        "tasks held by the gate / denied",
        f"{c['tasks deferred by the gate']} / {c['tasks denied by the gate']}",
    )
    add("callbacks added / made (no Touch: see docs)", f"{c['callbacks added']} / {c['callbacks made']}")
    add("letters / videos", f"{c['letter tasks done']} / {c['videos sent']}")
    lines.append("Customers")
    add("replies (text / email)", f"{c['replies: text']} / {c['replies: email']}")
    add("leads with a reply", leads.filter(first_reply_at__isnull=False).count())
    add(
        "replies answered / left unanswered (gate)",
        f"{c['replies answered']} / {c['replies left unanswered (gate)']}",
    )
    add(
        "appointments set / shown / missed",
        f"{c['appointments set']} / {c['appointments shown']} / {c['appointments missed']}",
    )
    add("visits", c["visits"])
    add("sales (be-back sales)", f"{leads.filter(status=Lead.Status.SOLD).count()} ({c['be-back sales']})")
    add(
        "bought elsewhere",
        leads.filter(status=Lead.Status.LOST, lost_reason__istartswith="bought elsewhere").count(),
    )
    add("be-backs (came again after a visit without a sale)", c["be-backs"])
    add("inquiries again", c["inquiries again"])
    opt_outs = sorted((k.split(": ", 1)[1], v) for k, v in c.items() if k.startswith("opt-outs: "))
    add("opt-outs", f"{sum(v for _, v in opt_outs)} (" + ", ".join(f"{k} {v}" for k, v in opt_outs) + ")")
    add("plain-language stops flagged", c["plain-language stops flagged"])
    add("deceased", c["deceased"])
    add("customers marked do not contact", Customer.objects.filter(do_not_contact=True).count())
    add("numbers on the national registry (last copy)", RegistryNumber.objects.count())
    for verdict, title in (
        ("defer", "Deferrals by rule"),
        ("deny", "Denials by rule"),
        ("flag", "Flags by rule"),
    ):
        group(
            title,
            Decision.objects.filter(verdict=verdict)
            .values_list("rule")
            .annotate(n=Count("id"))
            .order_by("-n", "rule"),
        )
    add("actions the app refused (see below)", c["refused by the app"])
    for refusal in w.refusals:
        lines.append(f"    {refusal}")
    lines.append("Run")
    add(
        "events / worker runs / staff sessions", f"{c['events']} / {c['worker runs']} / {c['staff sessions']}"
    )
    add("simulation time", f"{seconds:.1f} s")
    add("check time", f"{check_seconds:.1f} s")
    if violations:
        lines.append(f"First violations (of {len(violations)}):")
        for v in violations[:5]:
            lines.append("  " + v.describe(w.rooftop.tz))
    lines.append(f"violations: {len(violations)}")
    lines.append(f"uncovered: {len(w.uncovered)}")
    return Report(lines=lines, violations=violations, uncovered=len(w.uncovered), counts=c, seconds=seconds)


def simulate(
    *, customers: int, days: int, seed: int, start: dt.date = DEFAULT_START, progress=None
) -> Report:
    """Run the simulation on the connected database (which must hold no rooftop yet) and check
    it. `progress(text)` is called about once a simulated month."""
    if Rooftop.objects.exists():
        raise ValueError("the simulation needs an empty database: this one already has a rooftop")
    began = time.monotonic()
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
        mail.outbox = []
        w = world_build(customers=customers, days=days, seed=seed, start=start)
        run(w, progress)
    simulated = time.monotonic() - began
    checking = time.monotonic()
    violations = violations_find(registry=registry_at(w.registry), stops=w.stops)
    return report_build(w, violations, simulated, time.monotonic() - checking)


def main_progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)

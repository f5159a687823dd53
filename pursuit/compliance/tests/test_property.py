"""The compliance issue's property: for random customers, plans and event sequences, no touch is
ever sent or offered outside the rules, and no message of any kind leaves after an opt-out other
than the one confirmation.

Each example sets a rooftop's caps and choices, makes one or two customers (address state, one
or two phones whose area codes may be another state's, email or not, written consent, national
registry, the group's own list, an inquiry inside or outside 90 days) and a small plan of
automatic emails and texts and call tasks, then plays a sequence of events on a moving clock
(never sleeping) from Friday 2026-03-06, across nights, a Sunday and the change to daylight
time. The real worker runs at every moment something falls due; agents work the call and text
tasks only when the gate says they may, and each "you may" is checked against the rules on the
spot; the customer texts STOP, unsubscribes, replies by text or email, books or cancels a visit,
buys, or staff mark them do-not-contact. At the end every Touch, every email and every text is
checked against the rules, from the records and from what the simulation itself did.

The rules are re-checked independently of the gate: the places come from the test's own table
of states and area codes, the hours from `pursuit.compliance.rules.window_check` (bound when this
module is imported, so a test that patches the gate's copy does not patch the check), the caps,
the registry exemption and the stops from the rows. The tests at the bottom break the gate on
purpose and show that the property then fails.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from email.message import EmailMessage as MIMEMessage
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from dateutil.relativedelta import relativedelta
from django.db import transaction
from django.db.models import Min
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from pursuit.appointments.models import Appointment
from pursuit.appointments.services import AppointmentError, appointment_cancel, appointment_set
from pursuit.compliance import gate
from pursuit.compliance import services as compliance_services
from pursuit.compliance.gate import decide, facts_load, may_contact
from pursuit.compliance.keywords import sms_keyword
from pursuit.compliance.models import Consent, Decision, Suppression, Touch
from pursuit.compliance.rules import Place, Verdict, place_duties
from pursuit.compliance.rules import window_check as rules_window_check
from pursuit.compliance.services import (
    consent_record,
    registry_import,
    staff_do_not_contact,
    text_received,
    unsubscribe,
    unsubscribe_token,
)
from pursuit.leads.models import Customer, CustomerEmail, CustomerPhone, Lead
from pursuit.leads.services import LeadError, attempt_log, lead_status_change
from pursuit.org.models import Role
from pursuit.outreach.inbound import email_inbound
from pursuit.outreach.models import OutboundEmail
from pursuit.plans.models import MessageTemplate, Step, Transition
from pursuit.plans.services import PlanError, enrol
from pursuit.plans.tests.test_plans import make_plan
from pursuit.texting.models import TextMessage
from pursuit.texting.services import KEYWORD_REPLY, text_inbound
from pursuit.work.models import Job
from pursuit.work.services import job_schedule, run_due_once

# Friday 2026-03-06, midnight UTC; the US moves to daylight time on Sunday 2026-03-08.
START = dt.datetime(2026, 3, 6, 0, 0, tzinfo=dt.UTC)
CHANNELS = ("call", "text", "email")
ZONES = {
    "FL": "America/New_York",
    "AL": "America/Chicago",
    "TX": "America/Chicago",
    "IL": "America/Chicago",
    "CA": "America/Los_Angeles",
}
# Area codes lying wholly in one state and one zone (libphonenumber agrees, for every exchange).
AREA_CODES = {
    "FL": ("305", "407", "813", "954"),
    "AL": ("205", "251", "334"),
    "TX": ("214", "512", "713", "210"),
    "IL": ("312", "773", "217"),
    "CA": ("213", "415", "916", "619"),
}
STATES = tuple(ZONES)
OFFSETS = (
    (0, "minutes"),
    (5, "minutes"),
    (45, "minutes"),
    (2, "hours"),
    (6, "hours"),
    (1, "days"),
    (2, "days"),
    (1, "business-days"),
    (2, "business-days"),
)
CALL_OUTCOMES = ("no-answer", "voicemail", "talked", "bad-number")
SENT = (TextMessage.Status.SENT, TextMessage.Status.DELIVERED)
TEXT_NUMBER = "+13125550199"
MAX_STOPS = 30  # clock stops per wait: every due moment, then the end of the wait
MAX_ROUNDS = 60  # worker batches at one moment before we call it a loop
_DAY = dt.timedelta(hours=24)
_WEEK = dt.timedelta(days=7)


# --------------------------------------------------------------------------- what is generated


@dataclass(frozen=True)
class House:
    """The rooftop's settings that the rules read."""

    cap_24h: int = 3
    cap_day: int = 5
    cap_week: int = 15
    texas_registered: bool = False
    everywhere: bool = True  # a stop on one channel stops them all
    postal: bool = True  # a street address for the CAN-SPAM footer
    texting: bool = True  # a texting number: automatic texts go out


@dataclass(frozen=True)
class PhoneSpec:
    state: str = "IL"
    area: str = "312"
    exchange: int = 234
    line: int = 56
    type: str = "mobile"
    preferred: bool = True
    registry: bool = False  # on the national registry
    listed: bool = False  # on the group's own list already


@dataclass(frozen=True)
class Who:
    """One customer: the postal address's state ("" for none), phones, and the rest."""

    address: str = "IL"
    phones: tuple = (PhoneSpec(),)
    email: bool = True
    written: frozenset = frozenset()  # channels with prior express written consent
    inquiry_days: int = 0  # days before the start the customer inquired
    inquiry_minutes: int = 0
    shares: bool = False  # the first phone is the first customer's first phone (a family's)


@dataclass(frozen=True)
class StepSpec:
    kind: str = "call"  # call (task) | text (send) | text-task | email (send)
    offset: tuple = (0, "minutes")
    window: str = "any"
    counted_from: str = "previous"
    purpose: str = "marketing"  # of an email's or a text's template
    skip: bool = False


@dataclass(frozen=True)
class Scenario:
    start: dt.datetime = START
    house: House = House()
    people: tuple = (Who(),)
    plan: tuple = (StepSpec(),)
    repeat_last: bool = False
    events: tuple = (("wait", 60),)
    outcomes: tuple = ("no-answer",)


@st.composite
def houses(draw) -> House:
    day = draw(st.sampled_from([1, 2, 5]))
    return House(
        cap_24h=draw(st.sampled_from([1, 2, 3, 3])),  # the compliance page allows 1-3
        cap_day=day,
        cap_week=draw(st.sampled_from([w for w in (2, 4, 15) if w >= day])),  # never below the day's
        texas_registered=draw(st.booleans()),
        everywhere=draw(st.sampled_from([True, True, False])),
        postal=draw(st.sampled_from([True, True, False])),
        texting=draw(st.sampled_from([True, True, False])),
    )


@st.composite
def phone_specs(draw, state: str) -> PhoneSpec:
    spec = PhoneSpec(
        state=state,
        area=draw(st.sampled_from(AREA_CODES[state])),
        exchange=draw(st.integers(200, 999)),
        line=draw(st.integers(0, 99)),
        type=draw(st.sampled_from(["mobile", "mobile", "home", "other"])),
        preferred=draw(st.booleans()),
        registry=draw(st.booleans()),
        listed=draw(st.sampled_from([False, False, False, False, True])),
    )
    assume(phonenumbers.is_valid_number(phonenumbers.parse(_number(spec, 0, 0))))
    return spec


@st.composite
def customers(draw) -> Who:
    state = draw(st.sampled_from(STATES))
    # The phone's state: the address's, or another (an address in one state, an area code of another).
    others = [s for s in STATES if s != state]
    count = draw(st.sampled_from([0, 1, 1, 1, 2, 2]))
    phones = tuple(draw(phone_specs(draw(st.sampled_from([state, state, *others])))) for _ in range(count))
    return Who(
        address=draw(st.sampled_from([state, state, ""])),
        phones=phones,
        email=draw(st.sampled_from([True, True, False])) if phones else True,
        written=draw(st.frozensets(st.sampled_from(["call", "text"]))),
        inquiry_days=draw(st.sampled_from([0, 0, 3, 45, 89, 90, 91, 120, 400])),
        inquiry_minutes=draw(st.sampled_from([0, 7, 600])),
        shares=bool(phones) and draw(st.sampled_from([False, False, True])),
    )


step_specs = st.builds(
    StepSpec,
    kind=st.sampled_from(["call", "call", "call", "email", "email", "text", "text", "text-task"]),
    offset=st.sampled_from(OFFSETS),
    window=st.sampled_from(["any", "business-hours", "customer-day"]),
    counted_from=st.sampled_from(["previous", "previous", "enrolment"]),
    purpose=st.sampled_from(["marketing", "marketing", "marketing", "transactional"]),
    skip=st.booleans(),
)

who = st.integers(0, 1)
waits = st.tuples(
    st.just("wait"),
    st.one_of(st.sampled_from([1, 15, 60, 180, 600, 24 * 60, 2 * 24 * 60]), st.integers(1, 3 * 24 * 60)),
)
stops = st.one_of(
    st.tuples(st.just("stop"), who, st.sampled_from(["STOP", "stop", " Quit ", "Unsubscribe", "STOPALL"])),
    st.tuples(st.just("unsubscribe"), who),
    st.tuples(st.just("do-not-contact"), who),
)
happenings = st.one_of(
    st.tuples(
        st.just("reply-text"), who, st.sampled_from(["Is it still available?", "please stop texting me"])
    ),
    st.tuples(st.just("reply-email"), who, st.sampled_from(["Send me the price", "stop emailing me"])),
    st.tuples(st.just("sold"), who),
    st.tuples(st.just("appointment"), who, st.sampled_from([3, 20, 30, 50])),
    st.tuples(st.just("cancel-appointment"), who),
)
# Mostly time passing; now and then the customer or staff do something.
events = st.one_of(waits, waits, waits, waits, happenings, stops)

scenarios = st.builds(
    Scenario,
    start=st.integers(0, 2 * 24 * 60).map(lambda m: START + dt.timedelta(minutes=m)),
    house=houses(),
    people=st.lists(customers(), min_size=1, max_size=2).map(tuple),
    plan=st.lists(step_specs, min_size=1, max_size=5).map(tuple),
    repeat_last=st.booleans(),
    events=st.lists(events, min_size=1, max_size=10).map(tuple),
    outcomes=st.lists(st.sampled_from(CALL_OUTCOMES), min_size=1, max_size=4).map(tuple),
)


def note(value: str) -> None:
    """hypothesis.event, or nothing when a plain test runs a scenario."""
    try:
        event(value)
    except InvalidArgument:
        pass


def _number(spec: PhoneSpec, customer: int, phone: int) -> str:
    # The customer's and the phone's index in the line: no two phones share a number.
    return f"+1{spec.area}{spec.exchange}{customer}{phone}{spec.line:02d}"


# --------------------------------------------------------------------------- the simulation


@dataclass
class Phone:
    number: str
    type: str
    preferred: bool
    state: str
    pk: int


@dataclass
class Person:
    """What the test knows about a customer it made, independently of the gate."""

    pk: int
    lead_pk: int
    address: str
    phones: list[Phone]
    email: str
    zone: ZoneInfo
    registry: set[str]

    def places(self, number: str) -> list[Place]:
        """Where the customer may be when `number` rings: the address, the area code, or with
        neither the rooftop's Chicago."""
        places = [Place("US", self.address, ZONES[self.address], "address")] if self.address else []
        state = next(p.state for p in self.phones if p.number == number)
        if state != self.address:
            places.append(Place("US", state, ZONES[state], "phone"))
        return places or [Place("US", "IL", "America/Chicago", "rooftop")]

    def dialled(self, channel: str) -> str:
        """The number a person calls or texts: the preferred, then a mobile, then the oldest (a
        text needs one that can take texts)."""
        for p in sorted(self.phones, key=lambda p: (not p.preferred, p.type != "mobile", p.pk)):
            if channel == "call" or p.type in ("mobile", "other"):
                return p.number
        return ""


@dataclass
class Stop:
    at: dt.datetime
    touches_before: int = 1 << 62  # the highest Touch id when the stop arrived
    emails_before: int = 1 << 62  # the highest OutboundEmail id
    texts_before: int = 1 << 62  # the highest TextMessage id


@dataclass
class World:
    rooftop: object
    manager: object
    scenario: Scenario
    now: dt.datetime = START
    people: list[Person] = field(default_factory=list)
    stops: dict = field(default_factory=dict)  # (customer, channel) -> Stop, from what we did
    number_stops: dict = field(default_factory=dict)  # number -> Stop: it texted STOP
    retry: set = field(default_factory=set)  # moments the gate said a held task may be done
    calls: int = 0
    offered: int = 0
    seq: int = 0

    # ----------------------------------------------------------------- set-up

    def build(self) -> None:
        sc, house, rooftop = self.scenario, self.scenario.house, self.rooftop
        self.now = sc.start
        rooftop.cap_calls_texts_24h, rooftop.cap_touches_day = house.cap_24h, house.cap_day
        rooftop.cap_touches_week, rooftop.texas_registered = house.cap_week, house.texas_registered
        rooftop.opt_out_everywhere = house.everywhere
        rooftop.street = "100 Lake St" if house.postal else ""
        rooftop.text_number = TEXT_NUMBER if house.texting else ""
        rooftop.save()
        templates = {
            (channel, purpose): MessageTemplate.objects.create(
                rooftop=rooftop,
                key=f"{channel}-{purpose}",
                name=f"{channel} {purpose}",
                channel=channel,
                purpose=purpose,
                subject="About your visit, {{ customer.first_name }}" if channel == "email" else "",
                body="Hi {{ customer.first_name }}, it's {{ owner.name }}.",
            )
            for channel in ("email", "text")
            for purpose in ("marketing", "transactional")
        }
        steps = []
        for position, spec in enumerate(sc.plan, start=1):
            channel = "text" if spec.kind.startswith("text") else spec.kind
            steps.append(
                {
                    "name": f"Step {position}: {spec.kind}",
                    "amount": spec.offset[0],
                    "unit": spec.offset[1],
                    "counted_from": spec.counted_from,
                    "window": spec.window,
                    "channel": channel,
                    "action": "send" if spec.kind in ("email", "text") else "task",
                    "template": templates.get((channel, spec.purpose)),
                    "skip_if": ([] if not spec.skip else ["talked"] if channel == "call" else ["replied"]),
                    "repeat": sc.repeat_last and position == len(sc.plan),
                }
            )
        new = make_plan(rooftop, "new-internet", steps, then="long-term")
        monthly = {
            "name": "Monthly email",
            "amount": 30,
            "unit": "days",
            "window": "business-hours",
            "channel": "email",
            "action": "send",
            "template": templates[("email", "marketing")],
            "repeat": True,
        }
        long_term = make_plan(rooftop, "long-term", [monthly])
        thanks = {"name": "Thank you", "amount": 1, "unit": "days", "channel": "call", "action": "task"}
        sold = make_plan(rooftop, "sold", [thanks])
        visit = make_plan(
            rooftop,
            "appointment",
            [
                {
                    "name": "Confirmation email",
                    "counted_from": "enrolment",
                    "window": "any",
                    "channel": "email",
                    "action": "send",
                    "template": templates[("email", "transactional")],
                    "skip_if": ["no-email"],
                },
                {
                    "name": "Confirmation text",
                    "counted_from": "enrolment",
                    "window": "customer-day",
                    "channel": "text",
                    "action": "send",
                    "template": templates[("text", "transactional")],
                    "skip_if": ["no-mobile"],
                },
                {
                    "name": "Reminder call",
                    "amount": 1,
                    "unit": "days",
                    "counted_from": "appointment",
                    "window": "customer-day",
                    "channel": "call",
                    "action": "task",
                },
                {
                    "name": "Reminder text",
                    "amount": 2,
                    "unit": "hours",
                    "counted_from": "appointment",
                    "window": "customer-day",
                    "channel": "text",
                    "action": "send",
                    "template": templates[("text", "transactional")],
                },
            ],
            kind="transactional",
        )
        for name, plan in (
            ("arrived", new),
            ("plan-finished", long_term),
            ("sold", sold),
            ("appointment-set", visit),
        ):
            Transition.objects.create(rooftop=rooftop, event=name, condition="", plan=plan)

        agents = list(rooftop.staff.filter(role=Role.BDC_AGENT).order_by("pk")) or [self.manager]
        registry = []
        for index, w in enumerate(sc.people):
            email = f"buyer{index}@buyers.example" if w.email else ""
            inquired = self.now - dt.timedelta(days=w.inquiry_days, minutes=w.inquiry_minutes)
            first = w.phones[0].state if w.phones else ""
            zone = ZONES[w.address] if w.address else ZONES[first] if first else ""
            customer = Customer.objects.create(
                rooftop=rooftop,
                first_name=f"Buyer{index}",
                last_name="Test",
                region=w.address,
                country="US" if w.address else "",
                time_zone=zone,
                created_at=inquired,
            )
            phones = []
            for i, spec in enumerate(w.phones):
                number, state = _number(spec, index, i), spec.state
                family = self.people[0].phones if index and self.people else []
                if i == 0 and w.shares and family:
                    number, state = family[0].number, family[0].state
                row = CustomerPhone.objects.create(
                    customer=customer,
                    rooftop=rooftop,
                    number=number,
                    match_key=number,
                    verified=True,
                    type=spec.type,
                    preferred=spec.preferred,
                )
                phones.append(Phone(number, spec.type, spec.preferred, state, row.pk))
                if spec.registry:
                    registry.append(number[2:] + "\n")
                if spec.listed:
                    Suppression.objects.get_or_create(
                        group=rooftop.group,
                        kind="phone",
                        value=number,
                        defaults={"source": "staff", "at": self.now - dt.timedelta(days=1)},
                    )
            if email:
                CustomerEmail.objects.create(customer=customer, rooftop=rooftop, address=email)
            lead = Lead.objects.create(
                rooftop=rooftop,
                customer=customer,
                owner=agents[index % len(agents)],
                received_at=inquired,
                created_at=self.now,
                assigned_at=self.now,
            )
            for channel in sorted(w.written):
                consent_record(
                    customer=customer,
                    channel=channel,
                    granted=True,
                    written=True,
                    source="form",
                    evidence="ticked: you may call and text me about vehicles",
                    at=inquired,
                    lead=lead,
                )
            if w.inquiry_days == 0:  # a fresh inquiry gets the automatic first answer
                job_schedule(
                    kind="auto-response",
                    due_at=self.now,
                    now=self.now,
                    lead=lead,
                    key=f"auto-response:{lead.pk}",
                    priority=0,
                )
            enrol(lead=lead, plan=new, now=self.now, reason="arrived")
            self.people.append(
                Person(
                    pk=customer.pk,
                    lead_pk=lead.pk,
                    address=w.address,
                    phones=phones,
                    email=email,
                    zone=ZoneInfo(zone or rooftop.time_zone),
                    registry={p.number for p, spec in zip(phones, w.phones, strict=True) if spec.registry},
                )
            )
        if registry:
            registry_import(lines=registry, copied_on=(self.now - dt.timedelta(days=3)).date(), at=self.now)
        for person in self.people:  # a family's number is on the registry whoever put it there
            person.registry = {p.number for p in person.phones if p.number[2:] + "\n" in registry}

    # ----------------------------------------------------------------- the clock

    def play(self) -> None:
        self.drain()
        for happening in self.scenario.events:
            self.apply(happening)
        self.wait(4 * 24 * 60)  # long enough for anything still queued to show itself

    def wait(self, minutes: int) -> None:
        """Move the clock on, stopping at every moment something falls due on the way (the worker
        and the agents are always there), then at the end of the wait."""
        target = self.now + dt.timedelta(minutes=minutes)
        for _ in range(MAX_STOPS):
            following = self._next_moment(target)
            if following is None:
                break
            self.now = following
            self.drain()
        self.now = target
        self.drain()

    def _next_moment(self, target: dt.datetime) -> dt.datetime | None:
        window = {"due_at__gt": self.now, "due_at__lte": target}
        leads = [p.lead_pk for p in self.people]
        moments = [
            Step.objects.filter(lead_id__in=leads, status="pending", **window).aggregate(m=Min("due_at"))[
                "m"
            ],
            Job.objects.filter(status="pending", **window).aggregate(m=Min("due_at"))["m"],
            *[m for m in self.retry if self.now < m <= target],
        ]
        moments = [m for m in moments if m is not None]
        return min(moments) if moments else None

    def drain(self) -> None:
        """The worker until nothing is due, and the agents, until neither has anything to do."""
        for _ in range(MAX_ROUNDS):
            rounds = 0
            while run_due_once(now=self.now):
                rounds += 1
                assert rounds < MAX_ROUNDS, f"the worker never settles at {self.now}"
            if not self.agents_work():
                return
        raise AssertionError(f"the agents and the worker never settle at {self.now}")

    def agents_work(self) -> bool:
        """Each due call or text task: ask the gate as the lead's page does (for a sale), and only
        when it says yes, check the yes against the rules and make the call (or send the text)
        and log it. True when anyone did something."""
        self.retry = {m for m in self.retry if m > self.now}
        did = False
        tasks = list(
            Step.objects.filter(
                lead_id__in=[p.lead_pk for p in self.people],
                status="pending",
                action="task",
                channel__in=("call", "text"),
                due_at__lte=self.now,
            )
            .order_by("due_at", "id")
            .values_list("pk", "lead_id", "channel")
        )
        for pk, lead_id, channel in tasks:
            if not Step.objects.filter(pk=pk, status="pending").exists():
                continue  # an earlier attempt finished it
            lead = Lead.objects.select_related("customer__rooftop", "owner").get(pk=lead_id)
            customer = lead.customer
            answer = may_contact(customer, channel, "marketing", self.now, record=False)
            again = decide(
                customer,
                facts_load([customer], at=self.now)[customer.pk],
                channel=channel,
                purpose="marketing",
                at=self.now,
            )
            assert (answer.verdict, answer.rule) == (again.verdict, again.rule), (answer, again)
            note(f"agent's {channel}: {answer.verdict} {answer.rule.split(':')[0]}")
            if not answer.allowed:
                if answer.until is not None:
                    self.retry.add(answer.until)
                continue
            self.offered += 1
            person = self.person(customer.pk)
            number = person.dialled(channel)
            assert answer.inputs.get("address") == number, (answer.inputs, number)
            faults = self.faults(
                person, channel, "marketing", False, self.now, number, self.touches(person), 1
            )
            assert not faults, f"the gate offered a {channel} at {self.now} outside the rules: {faults}"
            outcomes = self.scenario.outcomes
            outcome = "sent" if channel == "text" else outcomes[self.calls % len(outcomes)]
            attempt_log(
                lead=lead, user=lead.owner or self.manager, channel=channel, outcome=outcome, now=self.now
            )
            self.calls += 1
            did = True
        return did

    # ----------------------------------------------------------------- events

    def apply(self, happening: tuple) -> None:
        kind = happening[0]
        if kind == "wait":
            self.wait(happening[1])
            return
        person = self.people[happening[1] % len(self.people)]
        customer = Customer.objects.select_related("rooftop__group").get(pk=person.pk)
        lead = Lead.objects.get(pk=person.lead_pk)
        everything = self.rooftop.opt_out_everywhere
        mobile = next((p.number for p in person.phones if p.type in ("mobile", "other")), "")
        if kind == "stop" and mobile:
            self.stopped(person, CHANNELS if everything else ("text",), number=mobile)
            self.text_in(mobile, happening[2])
        elif kind == "unsubscribe" and person.email:
            self.stopped(person, CHANNELS if everything else ("email",))
            unsubscribe(token=unsubscribe_token(customer, person.email), at=self.now)
        elif kind == "do-not-contact":
            self.stopped(person, CHANNELS)
            staff_do_not_contact(customer=customer, at=self.now, by=self.manager, note="asked on the phone")
        elif kind == "reply-text" and mobile:
            self.text_in(mobile, happening[2])
        elif kind == "reply-email" and person.email:
            self.seq += 1
            message = MIMEMessage()
            message["From"], message["To"] = person.email, self.rooftop.email
            message["Subject"], message["Message-ID"] = "Re: your visit", f"<r{self.seq}@buyers.example>"
            message.set_content(happening[2])
            email_inbound(message=message, channel="webhook", now=self.now)
        elif kind == "sold":
            try:
                lead_status_change(lead=lead, user=self.manager, status="sold", now=self.now)
            except (LeadError, PlanError):
                pass  # a refused change changes nothing
        elif kind == "appointment":
            try:
                starts = self.now + dt.timedelta(hours=happening[2])
                appointment_set(lead=lead, starts_at=starts, by=self.manager, now=self.now)
            except (AppointmentError, PlanError):
                pass
        elif kind == "cancel-appointment":
            for appointment in Appointment.objects.filter(lead=lead, status=Appointment.Status.SET):
                appointment_cancel(
                    appointment=appointment, by=self.manager, now=self.now, reason="can't come"
                )
        self.drain()

    def text_in(self, number: str, body: str) -> None:
        """A text from the customer: through the provider's webhook to the rooftop's texting
        number; for a rooftop without one (the provider's own number, which answers STOP itself),
        straight to the keyword layer."""
        self.seq += 1
        if not self.rooftop.text_number:
            text_received(rooftop=self.rooftop, number=number, body=body, at=self.now)
            return
        text_inbound(
            rooftop=self.rooftop, from_number=number, body=body, provider_id=f"SM{self.seq}", now=self.now
        )

    def stopped(self, person: Person, channels, number: str = "") -> None:
        """The customer asked us to stop (from `number`, by text): remember when, and what
        existed just before."""

        def last(model) -> int:
            return model.objects.order_by("-pk").values_list("pk", flat=True).first() or 0

        mark = Stop(self.now, last(Touch), last(OutboundEmail), last(TextMessage))
        if number:
            self.number_stops.setdefault(number, mark)
            if any(
                number in [p.number for p in other.phones] for other in self.people if other is not person
            ):
                return  # a family's phone: which of them it stops is the system's choice (its rows say)
        for channel in channels:
            self.stops.setdefault((person.pk, channel), mark)

    # ----------------------------------------------------------------- the rules, again

    def person(self, pk: int) -> Person:
        return next(p for p in self.people if p.pk == pk)

    @staticmethod
    def touches(person: Person) -> list[Touch]:
        return list(Touch.objects.filter(customer_id=person.pk).order_by("at", "id"))

    def faults(
        self, person: Person, channel: str, purpose: str, automated: bool, at, number, touches, extra=0
    ) -> list[str]:
        """What is wrong with a `channel` touch for `purpose` at `at` (to `number` for a call or a
        text), given the customer's `touches` (the touch itself among them, or `extra`=1 for one
        about to happen)."""
        rooftop = self.rooftop
        # What was on record at the moment: for a touch about to happen, everything up to now;
        # for one that happened, what came strictly before it (a stop at the same instant came
        # after it, or the id checks of property 3 say so).
        before = "at__lte" if extra else "at__lt"
        found = []
        marketing = [t for t in touches if t.purpose == "marketing" and t.at <= at]
        if channel in ("call", "text"):
            if not number:
                return [f"{channel} at {at} to a customer with no number for it"]
            places = person.places(number)
            verdict: Verdict = rules_window_check(places, at, channel=channel, purpose=purpose)
            if not verdict.allowed:
                found.append(f"{channel} at {at} outside the calling hours: {verdict.detail}")
            if _listed(rooftop, number, at, before):
                found.append(f"{channel} at {at} to {number}, on the internal do-not-contact list")
            if purpose == "marketing":
                duties = place_duties(places, channel=channel, purpose="marketing")
                cap = min(c for c in (rooftop.cap_calls_texts_24h, duties.frequency_cap_24h) if c)
                day = sum(1 for t in marketing if t.channel in ("call", "text") and at - _DAY < t.at) + extra
                if day > cap:
                    found.append(
                        f"{channel} at {at}: {day} sales calls and texts in 24 h, over the cap of {cap}"
                    )
                written = _written(person, channel, at, before)
                if number in person.registry and not written and not _ebr(person, at):
                    found.append(
                        f"{channel} at {at} to {number} on the registry, "
                        "with no written consent and no business relationship"
                    )
                texas = any(p.region == "TX" for p in places)
                if channel == "text" and texas and not rooftop.texas_registered:
                    found.append(f"marketing text at {at} to Texas without the rooftop's registration")
                if channel == "text" and automated and not written:
                    found.append(f"automatic marketing text at {at} without written consent")
        if channel == "email":
            if _listed(rooftop, person.email, at, before):
                found.append(f"email at {at} to {person.email}, on the internal do-not-contact list")
            if purpose == "marketing" and automated:
                if _refused(person, "email", at, before):
                    found.append(f"automatic marketing email at {at} after the customer opted out of email")
                if not rooftop.street:
                    found.append(f"marketing email at {at} with no postal address to put in it")
        if purpose == "marketing":
            date = at.astimezone(person.zone).date()
            today = sum(1 for t in marketing if t.at.astimezone(person.zone).date() == date) + extra
            if today > rooftop.cap_touches_day:
                found.append(
                    f"{today} marketing touches on {date}, over the cap of {rooftop.cap_touches_day}"
                )
            week = sum(1 for t in marketing if at - _WEEK < t.at) + extra
            if week > rooftop.cap_touches_week:
                found.append(
                    f"{week} marketing touches in 7 days to {at}, over the cap of {rooftop.cap_touches_week}"
                )
        return found

    def check(self) -> None:
        """Properties 1-3 over everything that happened."""
        self.rooftop.refresh_from_db()
        found = []
        for person in self.people:
            touches = self.touches(person)
            texts = list(
                TextMessage.objects.filter(direction="out", customer_id=person.pk, status__in=SENT).order_by(
                    "pk"
                )
            )
            # The replies the law asks for (a STOP's confirmation, HELP): one per keyword text of
            # the customer's, sent whatever their state, and nothing else gets that pass.
            confirmations = [t for t in texts if (t.key or "").startswith(KEYWORD_REPLY)]
            for reply in confirmations:
                asked = TextMessage.objects.get(pk=int(reply.key.removeprefix(KEYWORD_REPLY)))
                if not sms_keyword(asked.body) or asked.from_number != reply.to_number:
                    found.append(f"keyword reply {reply.body!r} to {asked.body!r}, which asked for none")
            excused = {(t.sent_at, t.body[:200]) for t in confirmations}
            sent_to = {(t.sent_at, t.body[:200]): t.to_number for t in texts}

            # 1 and 2: every touch inside the rules at its moment.
            for t in touches:
                if t.channel == "text" and (t.at, t.what) in excused:
                    continue
                number = sent_to.get((t.at, t.what)) or person.dialled(t.channel)
                found += self.faults(person, t.channel, t.purpose, t.automated, t.at, number, touches)
            for t in texts:
                # A text goes to the number the gate cleared (its hours, lists and registry).
                if t not in confirmations and t.to_number != person.dialled("text"):
                    found.append(
                        f"text at {t.sent_at} to {t.to_number}, but the gate cleared "
                        f"{person.dialled('text') or 'no number'}"
                    )
                # Every text that left was recorded as a touch.
                if (t.sent_at, t.body[:200]) not in {(x.at, x.what) for x in touches if x.channel == "text"}:
                    found.append(f"text {t.pk} to {t.to_number} at {t.sent_at} left without a touch")

            # 3: nothing after a stop. The moment is the first one we made, or the first refusal on
            # record (every channel's, when the rooftop stops everywhere).
            stops = {channel: self.stops.get((person.pk, channel)) for channel in CHANNELS}
            for refusal in Consent.objects.filter(customer_id=person.pk, granted=False).order_by("at", "id"):
                for channel in CHANNELS if self.rooftop.opt_out_everywhere else (refusal.channel,):
                    if stops[channel] is None or refusal.at < stops[channel].at:
                        stops[channel] = Stop(refusal.at)
            for t in touches:
                stop = stops.get(t.channel)
                late = stop is not None and (t.at > stop.at or t.pk > stop.touches_before)
                if late and not (t.channel == "text" and (t.at, t.what) in excused):
                    found.append(f"{t.channel} touch at {t.at} ({t.what}) after the stop at {stop.at}")
            if person.email and stops["email"] is not None:
                stop = stops["email"]
                for mail in OutboundEmail.objects.filter(to=person.email, status="sent"):
                    if mail.sent_at > stop.at or mail.pk > stop.emails_before:
                        found.append(f"email {mail.kind!r} at {mail.sent_at} after the stop at {stop.at}")
            if stops["text"] is not None:
                stop = stops["text"]
                for t in texts:
                    late = t.sent_at > stop.at or t.pk > stop.texts_before
                    if late and t not in confirmations:
                        found.append(f"text {t.body!r} at {t.sent_at} after the stop at {stop.at}")
        # A number that texted STOP gets nothing more but the confirmation, whoever else uses it
        # (CTIA: the opt-out is the number's).
        for number, stop in self.number_stops.items():
            for t in TextMessage.objects.filter(direction="out", to_number=number, status__in=SENT):
                late = t.sent_at > stop.at or t.pk > stop.texts_before
                if late and not (t.key or "").startswith(KEYWORD_REPLY):
                    found.append(
                        f"text {t.body!r} to {number} at {t.sent_at}, after it texted STOP at {stop.at}"
                    )
        assert not found, "\n".join(dict.fromkeys(found))
        self.report()

    def report(self) -> None:
        """What the example exercised (--hypothesis-show-statistics)."""
        ids = [p.pk for p in self.people]
        touches = Touch.objects.filter(customer_id__in=ids)
        for channel in CHANNELS:
            note(f"{channel} touches: {min(touches.filter(channel=channel).count(), 3)}+")
        note(f"stops: {len({pk for pk, _ in self.stops})}")
        for rule in Decision.objects.filter(customer_id__in=ids).values_list("rule", flat=True).distinct():
            note(f"decision {rule.split(':')[0]}")


def _listed(rooftop, value: str, at: dt.datetime, before: str) -> bool:
    return (
        bool(value) and Suppression.objects.filter(group=rooftop.group, value=value, **{before: at}).exists()
    )


def _latest(person: Person, channel: str, at: dt.datetime, before: str) -> Consent | None:
    """The consent standing at `at`. With `before`="at__lt" (a touch that happened), a refusal
    at the very moment is left out (it came after the touch, or property 3 says so) but a grant
    is kept (given at the inquiry, before anything was sent)."""
    rows = Consent.objects.filter(customer_id=person.pk, channel=channel, purpose="marketing", at__lte=at)
    for consent in rows.order_by("-at", "-id"):
        if before == "at__lt" and consent.at == at and not consent.granted:
            continue
        return consent
    return None


def _written(person: Person, channel: str, at: dt.datetime, before: str) -> bool:
    consent = _latest(person, channel, at, before)
    return consent is not None and consent.granted and consent.written


def _refused(person: Person, channel: str, at: dt.datetime, before: str) -> bool:
    consent = _latest(person, channel, at, before)
    return consent is not None and not consent.granted


def _ebr(person: Person, at: dt.datetime) -> bool:
    """A purchase within 18 months or an inquiry within 90 days (day 90 inside) before `at`."""
    for received, sold in Lead.objects.filter(customer_id=person.pk).values_list("received_at", "sold_at"):
        if sold is not None and sold <= at <= sold + relativedelta(months=18):
            return True
        if received <= at <= received + dt.timedelta(days=90):
            return True
    return False


class Rollback(Exception):
    pass


def run(rooftop, manager, scenario: Scenario) -> World:
    world = World(rooftop=rooftop, manager=manager, scenario=scenario)
    world.build()
    world.play()
    world.check()
    return world


@pytest.fixture
def quiet_mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.TEXT_URL = "outbox"


# --------------------------------------------------------------------------- the property


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario=scenarios)
def test_no_touch_outside_the_rules_and_nothing_after_a_stop(
    rooftop, bdc_team, manager, quiet_mail, scenario
):
    try:
        with transaction.atomic():
            run(rooftop, manager, scenario)
            raise Rollback
    except Rollback:
        pass


# --------------------------------------------------------------------------- the property can fail

# A Florida customer with a call task due at 20:30 Florida time on a Friday (Florida allows 8-20).
FLORIDA_EVENING = Scenario(
    start=dt.datetime(2026, 3, 7, 1, 30, tzinfo=dt.UTC),
    people=(Who(address="FL", phones=(PhoneSpec(state="FL", area="305"),), email=False),),
    plan=(StepSpec(kind="call"),),
    events=(("wait", 60),),
)


def test_the_florida_evening_call_waits_for_the_morning(rooftop, bdc_team, manager, quiet_mail):
    world = run(rooftop, manager, FLORIDA_EVENING)
    [call] = Touch.objects.filter(channel="call")
    assert (
        call.at == dt.datetime(2026, 3, 7, 8, 0, tzinfo=ZoneInfo("America/New_York")) and world.offered == 1
    )


def test_a_gate_that_skips_the_hours_fails_the_property(rooftop, bdc_team, manager, quiet_mail, monkeypatch):
    def always(places, at, *, channel, purpose, rules=None):
        return Verdict(True, at, "allowed", "the hours are not checked")

    monkeypatch.setattr(gate.law, "window_check", always)
    with pytest.raises(AssertionError, match="outside the calling hours"):
        run(rooftop, manager, FLORIDA_EVENING)


def test_a_gate_without_caps_fails_the_property(rooftop, bdc_team, manager, quiet_mail, monkeypatch):
    monkeypatch.setattr(gate, "_caps", lambda *args, **kwargs: [])
    three_calls = Scenario(
        start=dt.datetime(2026, 3, 10, 15, 0, tzinfo=dt.UTC),  # Tuesday 10:00 in Chicago
        house=House(cap_24h=2),
        plan=(StepSpec(kind="call"), StepSpec(kind="call"), StepSpec(kind="call", offset=(5, "minutes"))),
    )
    with pytest.raises(AssertionError, match="over the cap"):
        run(rooftop, manager, three_calls)


def test_a_stop_that_is_not_honoured_fails_the_property(rooftop, bdc_team, manager, quiet_mail, monkeypatch):
    monkeypatch.setattr(compliance_services, "stop_request", lambda **kwargs: [])
    stop_then_email = Scenario(
        start=dt.datetime(2026, 3, 10, 15, 0, tzinfo=dt.UTC),
        plan=(StepSpec(kind="email"), StepSpec(kind="email", offset=(1, "days"))),
        events=(("wait", 5), ("stop", 0, "STOP")),
    )
    with pytest.raises(AssertionError, match="after the stop"):
        run(rooftop, manager, stop_then_email)


# --------------------------------------------------------------------------- bugs it found (now regression tests)


def test_an_automatic_text_goes_to_the_number_the_gate_cleared(rooftop, bdc_team, manager, quiet_mail):
    home_listed_and_mobile = Scenario(
        start=dt.datetime(2026, 3, 10, 15, 0, tzinfo=dt.UTC),  # Tuesday 10:00 in Chicago
        people=(
            Who(
                phones=(
                    PhoneSpec(type="home", preferred=True, listed=True),
                    PhoneSpec(area="773", type="mobile", preferred=False),
                ),
                written=frozenset({"text"}),
            ),
        ),
        plan=(StepSpec(kind="text"),),
    )
    run(rooftop, manager, home_listed_and_mobile)  # was a bug: the text went to the listed home line


def test_a_stop_from_a_shared_number_stops_texts_to_that_number(rooftop, bdc_team, manager, quiet_mail):
    family_phone = Scenario(
        start=dt.datetime(2026, 3, 10, 15, 0, tzinfo=dt.UTC),  # Tuesday 10:00 in Chicago
        house=House(everywhere=False),
        people=(Who(written=frozenset({"text"})), Who(written=frozenset({"text"}), shares=True)),
        plan=(StepSpec(kind="text", offset=(1, "days")),),
        events=(("stop", 0, "STOP"),),
    )
    run(rooftop, manager, family_phone)  # was a bug: the other customer on the number was texted

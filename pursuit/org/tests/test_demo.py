"""`pursuit load-demo`: a believable dealership, made through the real services, fast."""

from __future__ import annotations

import datetime as dt
import io
import time

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command
from django.db.models import Count

from pursuit.intake.models import AssignmentRule, LeadSource, Payload, token_hash
from pursuit.leads.models import Customer, Lead, LeadEvent
from pursuit.lib import clock
from pursuit.org.models import Role, Rooftop, Team, User
from pursuit.outreach.models import OutboundEmail, ResponseTemplate
from pursuit.work.models import Job
from pursuit.work.services import run_due_once

pytestmark = pytest.mark.django_db


def load(*args) -> str:
    out = io.StringIO()
    call_command("load_demo", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def demo() -> tuple[str, float]:
    started = time.monotonic()
    output = load()
    return output, time.monotonic() - started


def test_demo_dealership(demo):
    output, seconds = demo
    assert seconds < 10
    rooftop = Rooftop.objects.get(name="Lakeside Honda")
    assert (rooftop.time_zone, rooftop.country, rooftop.email) == (
        "America/Chicago",
        "US",
        "sales@lakeside-honda.example",
    )
    assert rooftop.phone and rooftop.street and rooftop.business_hours
    assert rooftop.holidays.count() == 2
    assert ResponseTemplate.objects.filter(rooftop=rooftop).count() == 1
    assert {t.name for t in Team.objects.filter(rooftop=rooftop)} == {"BDC", "Sales floor"}
    assert AssignmentRule.objects.filter(rooftop=rooftop).count() >= 3
    assert set(LeadSource.objects.filter(rooftop=rooftop).values_list("name", flat=True)) == {
        "Cars.com",
        "AutoTrader",
        "Website",
        "OEM",
        "Walk-in",
        "Phone",
    }
    assert "Open http://127.0.0.1:8000/ (admin at /admin/)" in output


def test_demo_logins(demo):
    output, _ = demo
    roles = dict(User.objects.values_list("username", "role"))
    assert roles == {
        "admin": Role.ADMIN,
        "maria": Role.MANAGER,
        "alice": Role.BDC_AGENT,
        "bob": Role.BDC_AGENT,
        "dana": Role.BDC_AGENT,
        "carl": Role.CONSULTANT,
        "erin": Role.CONSULTANT,
    }
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff
    for username in roles:
        user = authenticate(username=username, password="pursuit-demo")
        assert user is not None, username
        assert user.email == f"{username}@lakeside-honda.example" and user.get_full_name()
        assert user.direct_line.startswith("+1")
        assert f"{username}" in output
    assert "pursuit-demo" in output


def test_demo_customers_and_leads(demo):
    rooftop = Rooftop.objects.get()
    assert 30 <= Customer.objects.filter(rooftop=rooftop).count() <= 60
    statuses = set(Lead.objects.values_list("status", flat=True))
    assert {"new", "working", "appointment", "sold", "lost"} <= statuses
    assert (
        Lead.objects.filter(status="lost").exclude(lost_reason="").count()
        == Lead.objects.filter(status="lost").count()
    )
    assert Lead.objects.filter(owner__isnull=True).count() == 0
    assert [lead.flags for lead in Lead.objects.exclude(flags=[])] == [["no-contact"]]
    assert LeadEvent.objects.filter(kind=LeadEvent.Kind.REINQUIRY).count() >= 2
    assert LeadEvent.objects.filter(kind=LeadEvent.Kind.ATTEMPT).count() > 30
    assert {"internet", "phone", "walk-in"} <= set(Lead.objects.values_list("type", flat=True))
    # Every lead came through intake: a payload each.
    assert not Lead.objects.filter(payload__isnull=True).exists()
    # One open lead per customer, as the app requires.
    doubled = (
        Lead.objects.filter(status__in=Lead.OPEN_STATUSES)
        .values("customer")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    assert not doubled.exists()
    # A be-back: a customer with a lost lead and a later open one.
    assert Customer.objects.annotate(n=Count("leads")).filter(n__gt=1).exists()


def test_demo_history_is_in_the_past_and_spread_over_a_month(demo):
    now = clock.now()
    assert not LeadEvent.objects.filter(at__gt=now).exists()
    assert not Lead.objects.filter(created_at__gt=now).exists()
    oldest = Lead.objects.order_by("created_at").first().created_at
    assert 20 <= (now - oldest).days <= 30


def test_demo_fresh_leads_wait_for_the_worker(demo):
    now = clock.now()
    fresh = Lead.objects.filter(created_at__gte=now - dt.timedelta(hours=1))
    assert 3 <= fresh.count() <= 6
    assert not fresh.filter(first_attempt_at__isnull=False).exists()
    auto = Job.objects.filter(kind="auto-response", status=Job.Status.PENDING)
    assert set(auto.values_list("lead_id", flat=True)) == set(fresh.values_list("pk", flat=True))
    # Historical leads got no automatic answers, and staff get no email now about last month's leads.
    old = Job.objects.filter(
        kind="notify-email", status=Job.Status.PENDING, due_at__lt=now - dt.timedelta(hours=1)
    )
    assert not old.exists()
    # The worker can run everything that is due, without a failure.
    run_due_once(now=clock.now(), limit=200)
    assert not Job.objects.filter(status=Job.Status.FAILED).exists()
    assert OutboundEmail.objects.filter(kind="auto-response", status="sent").count() == fresh.count()


def test_demo_failed_payloads(demo):
    failed = Payload.objects.filter(status=Payload.Status.FAILED)
    assert failed.count() == 2
    assert set(failed.values_list("channel", flat=True)) == {Payload.Channel.ADF_HTTP}
    reasons = " ".join(failed.values_list("reason", flat=True))
    assert "not well-formed" in reasons and "entities" in reasons


def test_demo_prints_a_working_website_token(demo, client):
    output, _ = demo
    tokens = [line.strip() for line in output.splitlines() if line.strip().startswith("pst_")]
    assert len(tokens) == 1
    assert LeadSource.objects.get(token_hash=token_hash(tokens[0])).name == "Website"


def test_if_empty_twice_loads_once(db):
    first = load("--if-empty")
    assert "Lakeside Honda" in first
    counts = (Customer.objects.count(), Lead.objects.count(), User.objects.count(), Payload.objects.count())
    second = load("--if-empty")
    assert "not loaded" in second
    assert (
        Customer.objects.count(),
        Lead.objects.count(),
        User.objects.count(),
        Payload.objects.count(),
    ) == counts


def test_if_empty_leaves_other_data_alone(rooftop):
    assert "not loaded" in load("--if-empty")
    assert Rooftop.objects.count() == 1 and not Lead.objects.exists()


def test_refuses_to_load_twice(demo):
    with pytest.raises(CommandError, match="already exists"):
        load()
    assert Rooftop.objects.count() == 1


def test_existing_users_are_left_alone(db):
    User.objects.create_superuser(username="admin", password="my-own-secret-pw", email="me@example.com")
    output = load()
    admin = User.objects.get(username="admin")
    assert admin.check_password("my-own-secret-pw") and admin.email == "me@example.com"
    assert "left as they are: admin" in output
    assert Lead.objects.count() > 30

"""The compliance gate at the edges of each rule, with a moved clock (no sleeping)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from pursuit.compliance.gate import may_contact, touch_record
from pursuit.compliance.models import Decision, RegistryCopy, RegistryNumber
from pursuit.compliance.services import consent_record, registry_import, stop_request, text_received
from pursuit.leads.models import Customer, CustomerEmail, CustomerPhone, Lead

CHICAGO = ZoneInfo("America/Chicago")
NEW_YORK = ZoneInfo("America/New_York")


def at(zone, y, m, d, hh, mm=0) -> dt.datetime:
    return dt.datetime(y, m, d, hh, mm, tzinfo=zone).astimezone(dt.UTC)


def customer(
    rooftop, *, phone="+13122345678", region="IL", email="ann@example.com", inquired=None, kind="mobile"
):
    c = Customer.objects.create(
        rooftop=rooftop,
        first_name="Ann",
        last_name="Lee",
        region=region,
        country="US",
        created_at=inquired or at(CHICAGO, 2026, 1, 5, 9),
    )
    if phone:
        CustomerPhone.objects.create(
            customer=c, rooftop=rooftop, number=phone, match_key=phone, verified=True, type=kind
        )
    if email:
        CustomerEmail.objects.create(customer=c, rooftop=rooftop, address=email)
    if inquired:
        Lead.objects.create(rooftop=rooftop, customer=c, received_at=inquired, created_at=inquired)
    return c


def test_federal_hours_end_at_21_local(rooftop):
    ann = customer(rooftop)
    assert may_contact(ann, "call", "marketing", at(CHICAGO, 2026, 3, 10, 20, 59)).allowed
    late = may_contact(ann, "call", "marketing", at(CHICAGO, 2026, 3, 10, 21, 0))
    assert late.verdict == "defer" and late.rule == "quiet-hours:federal"
    assert late.until == at(CHICAGO, 2026, 3, 11, 8, 0)
    log = Decision.objects.get(customer=ann)
    assert log.verdict == "defer" and log.rule == "quiet-hours:federal" and log.until == late.until
    # Email has no calling hours.
    assert may_contact(ann, "email", "marketing", at(CHICAGO, 2026, 3, 10, 23, 0)).allowed


def test_a_florida_number_at_20_is_too_late_even_with_an_illinois_address(rooftop):
    bo = customer(rooftop, phone="+13052345678", region="IL")
    answer = may_contact(bo, "call", "marketing", at(NEW_YORK, 2026, 3, 10, 20, 0), record=False)
    assert answer.verdict == "defer" and answer.rule == "quiet-hours:FL"
    # 8:00 in Florida is 7:00 in Chicago, where the address says he may be: the federal 8:00
    # there comes later, and both must allow.
    assert answer.until == at(CHICAGO, 2026, 3, 11, 8, 0)


def test_sunday_in_alabama_waits_for_monday_but_a_reminder_may_go(rooftop):
    cy = customer(rooftop, phone="+12052345678", region="AL")
    sunday = at(CHICAGO, 2026, 3, 15, 11, 0)
    answer = may_contact(cy, "call", "marketing", sunday, record=False)
    assert answer.verdict == "defer" and answer.rule == "sunday:AL"
    assert answer.until == at(CHICAGO, 2026, 3, 16, 8, 0)
    assert may_contact(cy, "call", "transactional", sunday, record=False).allowed


def test_registry_number_is_callable_until_day_90_after_an_inquiry(rooftop):
    inquiry = at(CHICAGO, 2026, 1, 5, 10)
    dee = customer(rooftop, inquired=inquiry)
    registry_import(lines=["3122345678\n"], copied_on=dt.date(2026, 1, 1), at=inquiry)
    day90 = inquiry + dt.timedelta(days=90)
    assert may_contact(dee, "call", "marketing", day90, record=False).allowed
    answer = may_contact(dee, "call", "marketing", inquiry + dt.timedelta(days=91), record=False)
    assert answer.verdict == "deny" and answer.rule == "dnc-registry" and answer.ends_channel
    # Written consent is the other way past the registry.
    consent_record(
        customer=dee,
        channel="call",
        granted=True,
        written=True,
        source="staff",
        evidence="signed form",
        at=day90,
    )
    assert may_contact(dee, "call", "marketing", inquiry + dt.timedelta(days=91), record=False).allowed


def test_the_fourth_sales_call_in_24_hours_waits(rooftop):
    ed = customer(rooftop)
    first = at(CHICAGO, 2026, 3, 10, 9, 0)
    for hours in (0, 2, 4):
        touch_record(customer=ed, channel="call", purpose="marketing", at=first + dt.timedelta(hours=hours))
    fourth = may_contact(ed, "call", "marketing", first + dt.timedelta(hours=6), record=False)
    assert fourth.verdict == "defer" and fourth.rule.startswith("cap:")
    assert fourth.until == first + dt.timedelta(hours=24)
    # A reply the customer asked for is not a sales touch.
    assert may_contact(ed, "call", "transactional", first + dt.timedelta(hours=6), record=False).allowed


def test_rooftop_caps_per_day_across_channels(rooftop):
    rooftop.cap_touches_day = 2
    rooftop.save()
    fay = customer(rooftop)
    morning = at(CHICAGO, 2026, 3, 10, 9, 0)
    touch_record(customer=fay, channel="email", purpose="marketing", at=morning)
    touch_record(customer=fay, channel="call", purpose="marketing", at=morning + dt.timedelta(hours=1))
    answer = may_contact(fay, "email", "marketing", morning + dt.timedelta(hours=2), record=False)
    assert answer.verdict == "defer" and answer.rule == "cap:day"
    assert answer.until == at(CHICAGO, 2026, 3, 11, 0, 0)


def test_hours_across_the_spring_forward_night(rooftop):
    gus = customer(rooftop)
    # Saturday 7 March 2026 at 22:00 CST; the clocks go forward at 2:00 on Sunday 8 March.
    answer = may_contact(gus, "call", "marketing", at(CHICAGO, 2026, 3, 7, 22, 0), record=False)
    assert answer.until == dt.datetime(2026, 3, 8, 13, 0, tzinfo=dt.UTC)  # 8:00 CDT


def test_automatic_texts_need_written_consent_and_a_one_to_one_answer_needs_an_inquiry(rooftop):
    hal = customer(rooftop)
    noon = at(CHICAGO, 2026, 3, 10, 12)
    assert (
        may_contact(hal, "text", "marketing", noon, automated=True, record=False).rule == "no-written-consent"
    )
    assert may_contact(hal, "text", "marketing", noon, record=False).rule == "no-consent"
    Lead.objects.create(rooftop=rooftop, customer=hal, received_at=noon, created_at=noon)
    assert may_contact(hal, "text", "marketing", noon, record=False).allowed
    consent_record(
        customer=hal, channel="text", granted=True, written=True, source="form", evidence="ticked", at=noon
    )
    assert may_contact(hal, "text", "marketing", noon, automated=True, record=False).allowed


def test_texas_marketing_texts_need_the_rooftops_registration(rooftop):
    ida = customer(rooftop, phone="+12142345678", region="TX")
    consent_record(
        customer=ida,
        channel="text",
        granted=True,
        written=True,
        source="form",
        evidence="ticked",
        at=at(CHICAGO, 2026, 3, 1, 9),
    )
    noon = at(CHICAGO, 2026, 3, 10, 12)
    assert may_contact(ida, "text", "marketing", noon, automated=True, record=False).rule == "registration:TX"
    rooftop.texas_registered = True
    rooftop.save()
    ida.rooftop.refresh_from_db()
    assert may_contact(ida, "text", "marketing", noon, automated=True, record=False).allowed


def test_marketing_email_needs_the_rooftops_postal_address(rooftop):
    rooftop.street = ""
    rooftop.save()
    jo = customer(rooftop)
    jo.rooftop.refresh_from_db()
    answer = may_contact(jo, "email", "marketing", at(CHICAGO, 2026, 3, 10, 12), record=False)
    assert answer.verdict == "deny" and answer.rule == "no-postal-address" and not answer.ends_channel
    assert may_contact(jo, "email", "transactional", at(CHICAGO, 2026, 3, 10, 12), record=False).allowed


def test_stop_by_text_ends_every_channel_at_once_and_the_group_list_keeps_the_number(rooftop, other_rooftop):
    kim = customer(rooftop, inquired=at(CHICAGO, 2026, 3, 1, 9))
    reply = text_received(
        rooftop=rooftop, number="(312) 234-5678", body=" Stop. ", at=at(CHICAGO, 2026, 3, 10, 12)
    )
    assert "Lakeside Honda" in reply and "START" in reply
    kim.refresh_from_db()
    assert kim.do_not_contact
    for channel in ("call", "text", "email"):
        for purpose in ("marketing", "transactional"):
            assert (
                may_contact(kim, channel, purpose, at(CHICAGO, 2026, 3, 10, 12, 1), record=False).verdict
                == "deny"
            )
    # The same number at another customer of the group is on the internal list too.
    other = customer(rooftop, email="other@example.com")
    answer = may_contact(other, "call", "marketing", at(CHICAGO, 2026, 3, 10, 13), record=False)
    assert answer.rule == "internal-dnc"
    # START brings texts back (and only texts).
    again = text_received(
        rooftop=rooftop, number="+13122345678", body="START", at=at(CHICAGO, 2026, 3, 11, 12)
    )
    assert "subscribed to our text messages again" in again
    kim.refresh_from_db()
    assert not kim.do_not_contact and kim.opted_out == ["call", "email"]


def test_help_is_answered_and_a_plain_language_stop_is_flagged(rooftop, agent):
    lee = customer(rooftop, inquired=at(CHICAGO, 2026, 3, 1, 9))
    Lead.objects.filter(customer=lee).update(owner=agent)
    assert "Msg & data rates may apply" in text_received(
        rooftop=rooftop, number="+13122345678", body="help", at=at(CHICAGO, 2026, 3, 10, 12)
    )
    assert (
        text_received(
            rooftop=rooftop,
            number="+13122345678",
            body="please stop texting me",
            at=at(CHICAGO, 2026, 3, 10, 12),
        )
        == ""
    )
    flag = Decision.objects.get(customer=lee, verdict="flag")
    assert flag.rule == "possible-stop" and "stop texting me" in flag.detail
    assert agent.notifications.filter(kind="possible-stop").exists()
    lee.refresh_from_db()
    assert not lee.do_not_contact  # a person confirms first


@pytest.mark.parametrize("scope", [True, False])
def test_unsubscribe_scope_follows_the_rooftop(rooftop, scope):
    rooftop.opt_out_everywhere = scope
    rooftop.save()
    mo = customer(rooftop, inquired=at(CHICAGO, 2026, 3, 1, 9))
    stop_request(customer=mo, channel="email", source="unsubscribe link", at=at(CHICAGO, 2026, 3, 10, 12))
    mo.refresh_from_db()
    assert may_contact(mo, "email", "marketing", at(CHICAGO, 2026, 3, 10, 13), record=False).verdict == "deny"
    call = may_contact(mo, "call", "marketing", at(CHICAGO, 2026, 3, 10, 13), record=False)
    assert (call.verdict == "deny") is scope


def test_registry_import_replaces_the_copy_and_reports_bad_lines(rooftop):
    copy, problems = registry_import(
        lines=["AreaCode,PhoneNumber\n", "312,2345678\n", "312-234-5679\n", "2125550123\n"],
        copied_on=dt.date(2026, 3, 1),
        at=at(CHICAGO, 2026, 3, 2, 9),
    )
    assert copy.numbers == 2 and [line for line, _ in problems] == [3]
    registry_import(lines=["4155550123\n"], copied_on=dt.date(2026, 4, 1), at=at(CHICAGO, 2026, 4, 2, 9))
    assert list(RegistryNumber.objects.values_list("number", flat=True)) == ["+14155550123"]
    assert RegistryCopy.objects.count() == 2


def test_consent_evidence_from_every_intake_path_lands_in_the_ledger(rooftop, bdc_team, agent):
    from pursuit.compliance.models import Consent
    from pursuit.intake.parsed import ParsedConsent, ParsedProspect
    from pursuit.intake.services import csv_import, lead_intake, payload_store

    now = at(CHICAGO, 2026, 3, 10, 10)
    content = (
        b"first_name,last_name,email,text_opt_in\nNed,Lu,ned@example.com,yes\nOla,Ma,ola@example.com,no\n"
    )
    csv_import(
        payload=payload_store(rooftop=rooftop, channel="import-csv", now=now, name="x.csv", content=content),
        now=now,
    )
    assert sorted(
        Consent.objects.values_list("customer__first_name", "channel", "granted", "written", "source")
    ) == [
        ("Ned", "text", True, False, "lead"),
        ("Ola", "text", False, False, "lead"),
    ]
    # Staff ticking the form's box attest written consent.
    prospect = ParsedProspect(first_name="Pat", emails=["pat@example.com"], lead_type="phone")
    prospect.consents = [ParsedConsent("text", True, "text_opt_in: True")]
    lead_intake(rooftop=rooftop, prospect=prospect, now=now, actor=agent)
    pat = Consent.objects.get(customer__first_name="Pat")
    assert pat.written and pat.source == "form" and pat.by == agent

"""The contact window at its edges: closing minutes, Sundays, holidays, mixed zones and DST nights.

Every expected moment is written out in UTC, so a wrong zone or a lost hour fails loudly.
"""

import datetime as dt
import textwrap
from zoneinfo import ZoneInfo

import pytest

from pursuit.compliance.rules import (
    Place,
    RulesError,
    place_duties,
    recipient_places,
    rules_load,
    window_check,
)

CHI = ZoneInfo("America/Chicago")
NYC = ZoneInfo("America/New_York")
TOR = ZoneInfo("America/Toronto")

CHICAGO_PHONE = "+13125550100"
MIAMI_PHONE = "+13055550100"
HOUSTON_PHONE = "+12813308004"


def utc(y, m, d, hh, mm=0):
    return dt.datetime(y, m, d, hh, mm, tzinfo=dt.UTC)


def places(country="US", region="", phone=""):
    return recipient_places(country=country, region=region, phone=phone, rooftop_zone="America/Chicago")


def call(where, at, purpose="marketing"):
    return window_check(where, at, channel="call", purpose=purpose)


def table(tmp_path, text):
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return path


MINIMAL = textwrap.dedent("""\
    reviewed: 2026-11-23
    countries:
      US:
        national:
          name: United States
          code: federal
          reviewed: 2026-11-23
          source: test
          hours:
            mon-sun: ["08:00", "21:00"]
        regions:
    """)


def region(code, body=""):
    """A region entry for MINIMAL's `regions:`, with `body` (flush left) as its extra fields."""
    fields = f"name: {code}\nreviewed: 2026-11-23\nsource: test\n" + textwrap.dedent(body)
    return f"      {code}:\n" + textwrap.indent(fields, "        ")


# --------------------------------------------------------------------------- federal only


ILLINOIS = [Place("US", "IL", "America/Chicago", "address")]


def test_illinois_places_are_one_when_address_and_phone_agree():
    assert places(region="IL", phone=CHICAGO_PHONE) == ILLINOIS


def test_federal_window_last_minute_is_allowed():
    at = dt.datetime(2026, 11, 24, 20, 59, tzinfo=CHI)
    verdict = call(ILLINOIS, at)
    assert (verdict.allowed, verdict.next_at, verdict.rule) == (True, at, "allowed")


def test_federal_window_closes_at_21_and_reopens_at_8_next_day():
    verdict = call(ILLINOIS, dt.datetime(2026, 11, 24, 21, 0, tzinfo=CHI))
    assert not verdict.allowed
    assert verdict.rule == "quiet-hours:federal"
    assert verdict.next_at == utc(2026, 11, 25, 14, 0)  # Wed 8:00 CST
    assert verdict.next_at.tzinfo == dt.UTC
    assert "allows calls 8:00-21:00" in verdict.detail
    assert "next allowed Wed 25 Nov 8:00 in America/Chicago" in verdict.detail


def test_before_8_waits_for_8_the_same_day():
    verdict = call(ILLINOIS, dt.datetime(2026, 11, 24, 7, 59, tzinfo=CHI))
    assert verdict.next_at == utc(2026, 11, 24, 14, 0)


# --------------------------------------------------------------------------- Florida


def test_florida_number_at_20_local_waits_for_8_next_day():
    where = places(phone=MIAMI_PHONE)
    assert where == [Place("US", "FL", "America/New_York", "phone")]
    assert call(where, dt.datetime(2026, 11, 23, 19, 59, tzinfo=NYC)).allowed
    verdict = call(where, dt.datetime(2026, 11, 23, 20, 0, tzinfo=NYC))
    assert (verdict.allowed, verdict.rule) == (False, "quiet-hours:FL")
    assert verdict.next_at == utc(2026, 11, 24, 13, 0)  # Tue 8:00 EST
    assert verdict.detail.startswith(
        "Florida allows calls 8:00-20:00; it is Mon 23 Nov 20:00 in America/New_York"
    )


def test_florida_area_code_with_illinois_address_keeps_both():
    where = places(region="IL", phone=MIAMI_PHONE)
    assert where == [
        Place("US", "IL", "America/Chicago", "address"),
        Place("US", "FL", "America/New_York", "phone"),
    ]
    # Florida's 20:00 Eastern is 19:00 in Chicago; Florida's 8:00 read in Chicago is 8:00 there.
    assert call(where, dt.datetime(2026, 11, 23, 18, 59, tzinfo=CHI)).allowed
    evening = call(where, dt.datetime(2026, 11, 23, 19, 0, tzinfo=CHI))
    assert (evening.allowed, evening.rule, evening.next_at) == (
        False,
        "quiet-hours:FL",
        utc(2026, 11, 24, 14, 0),
    )
    assert "next allowed Tue 24 Nov 8:00 in America/Chicago" in evening.detail
    morning = call(where, dt.datetime(2026, 11, 24, 7, 59, tzinfo=CHI))  # 8:59 in Miami
    assert (morning.rule, morning.next_at) == ("quiet-hours:FL", utc(2026, 11, 24, 14, 0))


def test_florida_duties_cap_and_written_consent():
    duties = place_duties(places(region="IL", phone=MIAMI_PHONE), channel="text", purpose="marketing")
    assert (duties.frequency_cap_24h, duties.cap_rule) == (3, "cap:FL")
    assert duties.written_consent == ("FL",)
    assert duties.registration == ()


def test_house_cap_applies_where_no_state_caps():
    duties = place_duties(ILLINOIS, channel="call", purpose="marketing")
    assert (duties.frequency_cap_24h, duties.cap_rule, duties.written_consent) == (3, "cap:house", ())


# --------------------------------------------------------------------------- Alabama

ALABAMA = [Place("US", "AL", "America/Chicago", "address")]


def test_alabama_sunday_waits_for_monday_8():
    verdict = call(ALABAMA, dt.datetime(2026, 11, 22, 10, 0, tzinfo=CHI))
    assert (verdict.allowed, verdict.rule) == (False, "sunday:AL")
    assert verdict.next_at == utc(2026, 11, 23, 14, 0)
    assert "Alabama bans marketing calls on Sundays" in verdict.detail


def test_alabama_saturday_evening_skips_sunday():
    verdict = call(ALABAMA, dt.datetime(2026, 11, 21, 20, 0, tzinfo=CHI))
    assert (verdict.rule, verdict.next_at) == ("quiet-hours:AL", utc(2026, 11, 23, 14, 0))


def test_alabama_sunday_ban_is_for_marketing_only_but_hours_still_bind():
    assert call(ALABAMA, dt.datetime(2026, 11, 22, 10, 0, tzinfo=CHI), purpose="transactional").allowed
    late = call(ALABAMA, dt.datetime(2026, 11, 22, 20, 0, tzinfo=CHI), purpose="transactional")
    assert (late.rule, late.next_at) == ("quiet-hours:AL", utc(2026, 11, 23, 14, 0))


def test_alabama_christmas_is_a_blackout():
    verdict = call(ALABAMA, dt.datetime(2026, 12, 25, 10, 0, tzinfo=CHI))
    assert (verdict.rule, verdict.next_at) == ("holiday:AL", utc(2026, 12, 26, 14, 0))
    assert "(Christmas Day)" in verdict.detail


def test_alabama_sunday_holiday_rolls_to_monday():
    # 4 July 2027 is a Sunday: Monday the 5th is blocked too, so the next call is Tuesday 8:00 CDT.
    verdict = call(ALABAMA, dt.datetime(2027, 7, 5, 10, 0, tzinfo=CHI))
    assert (verdict.rule, verdict.next_at) == ("holiday:AL", utc(2027, 7, 6, 13, 0))
    assert call(ALABAMA, dt.datetime(2027, 7, 4, 10, 0, tzinfo=CHI)).next_at == utc(2027, 7, 6, 13, 0)


def test_sunday_roll_comes_from_the_table_not_only_the_library(tmp_path):
    path = table(
        tmp_path,
        MINIMAL
        + region(
            "AL",
            """\
            holidays:
              sunday_rolls_to_monday: true
              add:
                - {name: Founders Day, month: 11, day: 22}
            """,
        ),
    )
    rules = rules_load(path)
    # 22 Nov 2026 is a Sunday; the table's own roll blocks Monday the 23rd.
    verdict = window_check(
        ALABAMA,
        dt.datetime(2026, 11, 23, 10, 0, tzinfo=CHI),
        channel="text",
        purpose="marketing",
        rules=rules,
    )
    assert (verdict.rule, verdict.next_at) == ("holiday:AL", utc(2026, 11, 24, 14, 0))
    assert "Founders Day (observed)" in verdict.detail


def test_pennsylvania_good_friday_added_by_the_table():
    pa = [Place("US", "PA", "America/New_York", "address")]
    verdict = call(pa, dt.datetime(2026, 4, 3, 10, 0, tzinfo=NYC))
    assert (verdict.rule, verdict.next_at) == ("holiday:PA", utc(2026, 4, 4, 12, 0))  # Sat 8:00 EDT


# --------------------------------------------------------------------------- Texas


def test_texas_sunday_opens_at_noon():
    texas = places(region="TX", phone=HOUSTON_PHONE)
    assert texas == [Place("US", "TX", "America/Chicago", "address")]
    before = call(texas, dt.datetime(2026, 11, 22, 11, 59, tzinfo=CHI))
    assert (before.allowed, before.rule, before.next_at) == (
        False,
        "quiet-hours:TX",
        utc(2026, 11, 22, 18, 0),
    )
    assert "Texas allows calls 12:00-21:00 on Sundays" in before.detail
    assert call(texas, dt.datetime(2026, 11, 22, 12, 0, tzinfo=CHI)).allowed
    # Texas's hours are hours, not a Sunday ban: transactional messages keep them too.
    assert not call(texas, dt.datetime(2026, 11, 22, 11, 59, tzinfo=CHI), purpose="transactional").allowed


def test_texas_marketing_texts_need_registration_transactional_do_not():
    texas = [Place("US", "TX", "America/Chicago", "address")]
    assert place_duties(texas, channel="text", purpose="marketing").registration == ("TX",)
    assert place_duties(texas, channel="call", purpose="marketing").registration == ()
    assert place_duties(texas, channel="text", purpose="transactional").registration == ()


# --------------------------------------------------------------------------- Canada

ONTARIO = [Place("CA", "ON", "America/Toronto", "address")]


def test_canada_saturday_closes_at_18_and_sunday_opens_at_10():
    assert places(country="CA", region="ON", phone="+14165550100") == ONTARIO
    assert call(ONTARIO, dt.datetime(2026, 11, 21, 17, 59, tzinfo=TOR)).allowed
    verdict = call(ONTARIO, dt.datetime(2026, 11, 21, 18, 0, tzinfo=TOR))
    assert (verdict.rule, verdict.next_at) == ("quiet-hours:CRTC", utc(2026, 11, 22, 15, 0))


def test_canada_sunday_18_waits_for_monday_9():
    verdict = call(ONTARIO, dt.datetime(2026, 11, 22, 18, 0, tzinfo=TOR))
    assert verdict.next_at == utc(2026, 11, 23, 14, 0)


def test_canada_weekday_closes_at_21_30():
    assert call(ONTARIO, dt.datetime(2026, 11, 23, 21, 29, tzinfo=TOR)).allowed
    verdict = call(ONTARIO, dt.datetime(2026, 11, 23, 21, 30, tzinfo=TOR))
    assert verdict.next_at == utc(2026, 11, 24, 14, 0)


# --------------------------------------------------------------------------- daylight saving


def test_spring_forward_night_opens_at_8_daylight_time():
    # Sat 7 Mar 2026 21:00 CST; clocks jump at 2:00, so Sunday 8:00 CDT is 13:00 UTC, not 14:00.
    verdict = call(ILLINOIS, dt.datetime(2026, 3, 7, 21, 0, tzinfo=CHI))
    assert verdict.next_at == utc(2026, 3, 8, 13, 0)


def test_fall_back_night_opens_at_8_standard_time():
    # Sat 31 Oct 2026 21:00 CDT; clocks go back at 2:00, so Sunday 8:00 CST is 14:00 UTC.
    verdict = call(ILLINOIS, dt.datetime(2026, 10, 31, 21, 0, tzinfo=CHI))
    assert verdict.next_at == utc(2026, 11, 1, 14, 0)


def test_fall_back_with_two_zones():
    # Florida number, Illinois address, on the fall-back night: Chicago 8:00 CST (14:00 UTC)
    # is 9:00 EST in Miami, inside Florida's window.
    where = places(region="IL", phone=MIAMI_PHONE)
    verdict = call(where, dt.datetime(2026, 10, 31, 19, 0, tzinfo=CHI))
    assert verdict.next_at == utc(2026, 11, 1, 14, 0)


# --------------------------------------------------------------------------- places


def test_unknown_address_and_phone_fall_back_to_the_rooftop():
    where = recipient_places(
        country="", region="", phone="call me", rooftop_zone="America/Denver", rooftop_region="NM"
    )
    assert where == [Place("US", "NM", "America/Denver", "rooftop")]
    verdict = call(where, dt.datetime(2026, 11, 24, 8, 30, tzinfo=ZoneInfo("America/Denver")))
    assert (verdict.rule, verdict.next_at) == ("quiet-hours:NM", utc(2026, 11, 24, 16, 0))


def test_a_number_with_two_zones_keeps_both():
    assert places(phone="+17095550100") == [
        Place("CA", "NL", "America/Halifax", "phone"),
        Place("CA", "NL", "America/St_Johns", "phone"),
    ]


def test_presumption_mode_keeps_only_the_zone_of_a_non_presuming_area_code(tmp_path):
    path = table(
        tmp_path,
        MINIMAL.replace(
            "reviewed: 2026-11-23\n",
            "reviewed: 2026-11-23\ndefaults:\n  phone_region_rules: presumption\n",
            1,
        )
        + region("FL", "presumed_resident_by_area_code: true\n")
        + region("GA"),
    )
    rules = rules_load(path)
    atlanta = recipient_places(
        country="US", region="IL", phone="+14045550100", rooftop_zone="UTC", rules=rules
    )
    assert atlanta[1] == Place("US", "", "America/New_York", "phone")
    miami = recipient_places(country="US", region="IL", phone=MIAMI_PHONE, rooftop_zone="UTC", rules=rules)
    assert miami[1] == Place("US", "FL", "America/New_York", "phone")


# --------------------------------------------------------------------------- the table


def test_the_shipped_table_loads_and_every_entry_is_dated_and_sourced():
    rules = rules_load()
    assert rules.reviewed == dt.date(2026, 11, 23)
    entries = [*rules.national.values(), *rules.regional.values()]
    assert len(entries) == 19
    assert all(r.reviewed and r.source for r in entries)


def test_a_table_without_any_hour_answers_no_window_and_stops(tmp_path):
    rules = rules_load(table(tmp_path, MINIMAL.replace('mon-sun: ["08:00", "21:00"]', "mon-sun: null")))
    verdict = window_check(ILLINOIS, utc(2026, 11, 24, 15), channel="call", purpose="marketing", rules=rules)
    assert (verdict.allowed, verdict.next_at, verdict.rule) == (False, None, "no-window")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("reviewed: [2026-11-23\n", "not valid YAML"),
        (MINIMAL.replace('"08:00"', "8:00"), 'expected a quoted 24-hour time such as "09:00", got 480'),
        (MINIMAL.replace('"21:00"', '"07:00"'), "the window must start before it ends"),
        (MINIMAL.replace("mon-sun", "mon-sum"), "'mon-sum' is not a day"),
        (MINIMAL.replace("      source: test\n", "", 1), "countries.US.national: needs a source"),
        (MINIMAL.replace("national:", "national:\n      no_sundays: true", 1), "unknown field 'no_sundays'"),
        (MINIMAL.replace("reviewed: 2026-11-23\n", "reviewed: soon\n", 1), "reviewed: expected a date"),
        (MINIMAL + "  US:\n    regions:\n", "the key 'US' is written twice"),
    ],
)
def test_a_malformed_table_is_refused_with_the_reason(tmp_path, text, message):
    with pytest.raises(RulesError) as caught:
        rules_load(table(tmp_path, text))
    assert message in str(caught.value)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="aware"):
        call(ILLINOIS, dt.datetime(2026, 11, 24, 12, 0))
    with pytest.raises(ValueError, match="channel"):
        window_check(ILLINOIS, utc(2026, 11, 24, 15), channel="email", purpose="marketing")
    with pytest.raises(ValueError, match="purpose"):
        window_check(ILLINOIS, utc(2026, 11, 24, 15), channel="call", purpose="survey")

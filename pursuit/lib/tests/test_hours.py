"""Opening hours and offsets across weekends, holidays and daylight-saving changes."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from pursuit.lib.hours import Hours, add_offset, is_open, local, next_open

CHI = ZoneInfo("America/Chicago")
WEEK = {d: [["09:00", "20:00"]] for d in ("mon", "tue", "wed", "thu", "fri")} | {
    "sat": [["09:00", "18:00"]],
    "sun": [],
}
HOURS = Hours.build(time_zone="America/Chicago", business_hours=WEEK, holidays=[dt.date(2026, 12, 25)])


def elapsed(a, b):
    return b.astimezone(dt.UTC) - a.astimezone(dt.UTC)


def at(y, m, d, hh, mm=0):
    return dt.datetime(y, m, d, hh, mm, tzinfo=CHI)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (at(2026, 3, 10, 8, 59), at(2026, 3, 10, 9, 0)),  # before opening: today's opening
        (at(2026, 3, 10, 9, 0), at(2026, 3, 10, 9, 0)),  # the opening minute is open
        (at(2026, 3, 10, 19, 59), at(2026, 3, 10, 19, 59)),
        (at(2026, 3, 10, 20, 0), at(2026, 3, 11, 9, 0)),  # closing time is closed
        (at(2026, 3, 14, 18, 30), at(2026, 3, 16, 9, 0)),  # Saturday evening: Sunday is closed
        (at(2026, 12, 24, 21, 0), at(2026, 12, 26, 9, 0)),  # Christmas is a holiday
    ],
)
def test_next_open(moment, expected):
    assert next_open(moment, HOURS) == expected
    assert is_open(next_open(moment, HOURS), HOURS)


def test_business_days_skip_sundays_and_holidays():
    assert add_offset(at(2026, 3, 13, 10), 1, "business-days", HOURS) == at(2026, 3, 14, 10)  # Fri -> Sat
    assert add_offset(at(2026, 3, 14, 10), 1, "business-days", HOURS) == at(2026, 3, 16, 10)  # Sat -> Mon
    assert add_offset(at(2026, 12, 24, 10), 1, "business-days", HOURS) == at(2026, 12, 26, 10)


def test_days_keep_the_local_time_across_daylight_saving():
    # 8 March 2026: clocks go forward in Chicago; the day has 23 hours.
    saturday = at(2026, 3, 7, 10)
    assert add_offset(saturday, 1, "days", HOURS) == at(2026, 3, 8, 10)
    assert elapsed(saturday, add_offset(saturday, 1, "days", HOURS)) == dt.timedelta(hours=23)
    assert add_offset(saturday, 24, "hours", HOURS) == at(2026, 3, 8, 11)  # elapsed time is elapsed
    # 1 November 2026: clocks go back; the day has 25 hours.
    before = at(2026, 10, 31, 10)
    assert elapsed(before, add_offset(before, 1, "days", HOURS)) == dt.timedelta(hours=25)


def test_a_skipped_local_time_is_read_after_the_change():
    moment = local(dt.date(2026, 3, 8), dt.time(2, 30), CHI)
    assert (moment.hour, moment.minute, moment.utcoffset()) == (3, 30, dt.timedelta(hours=-5))


def test_a_rooftop_with_no_hours_is_an_error_not_a_loop():
    closed = Hours.build(time_zone="UTC", business_hours={})
    with pytest.raises(ValueError, match="never open"):
        next_open(at(2026, 3, 10, 10), closed)
    assert next_open(at(2026, 3, 10, 3), Hours.always("America/Chicago")) == at(2026, 3, 10, 3)

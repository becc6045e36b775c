"""due_date: one month from receipt (GDPR Art. 12(3)), counted as Regulation 1182/71 says."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from form_service.deadlines import RIGA, add_one_month, due_date, is_working_day

ZONES = [dt.UTC, RIGA, ZoneInfo("America/New_York"), ZoneInfo("Asia/Tokyo")]
receipts = st.datetimes(
    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2099, 11, 30),
    timezones=st.sampled_from(ZONES),
)


def riga(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=RIGA)


@pytest.mark.parametrize(
    ("received", "due"),
    [
        # 28 Feb 2027 (month end, since 31 Feb does not exist) is a Sunday.
        (riga(2027, 1, 31, 12), dt.date(2027, 3, 1)),
        # 2028 is a leap year: 29 Feb exists and is a Tuesday.
        (riga(2028, 1, 31, 12), dt.date(2028, 2, 29)),
        # An ordinary Wednesday.
        (riga(2026, 11, 30, 9), dt.date(2026, 12, 30)),
        # 18 Nov 2027, Proclamation Day, is a Thursday.
        (riga(2027, 10, 18, 9), dt.date(2027, 11, 19)),
        # 18 Nov 2023 was a Saturday and Monday 20 Nov the day off in its place.
        (riga(2023, 10, 20, 9), dt.date(2023, 11, 21)),
        # Christmas Eve 2027 is a Friday: Fri, Sat, Sun off; Latvia adds no day for it.
        (riga(2027, 11, 24, 9), dt.date(2027, 12, 27)),
        # Good Friday 26 Mar 2027, Easter Sunday, Easter Monday 29 Mar.
        (riga(2027, 2, 26, 9), dt.date(2027, 3, 30)),
        # New Year's Day 2027 is a Friday.
        (riga(2026, 12, 1, 9), dt.date(2027, 1, 4)),
        # Midsummer Eve and Day 2027 are Wednesday and Thursday.
        (riga(2027, 5, 23, 9), dt.date(2027, 6, 25)),
        # 22:30 UTC on 14 March is already 15 March in Riga (UTC+2).
        (dt.datetime(2027, 3, 14, 22, 30, tzinfo=dt.UTC), dt.date(2027, 4, 15)),
        (dt.datetime(2027, 3, 14, 21, 30, tzinfo=dt.UTC), dt.date(2027, 4, 14)),
    ],
)
def test_examples(received: dt.datetime, due: dt.date) -> None:
    """Known receipts give the due date worked out by hand from the Latvian calendar."""
    assert due_date(received) == due


def test_naive_receipt_is_refused() -> None:
    """A receipt time without a time zone is refused: its Riga date would be a guess."""
    with pytest.raises(ValueError, match="timezone-aware"):
        due_date(dt.datetime(2027, 1, 1, 12))


@given(receipts)
def test_due_date_is_the_first_working_day_from_one_month_on(received: dt.datetime) -> None:
    """The due date is a working day, at least a calendar month on, with only days off between."""
    local = received.astimezone(RIGA).date()
    month_on = add_one_month(local)
    due = due_date(received)
    assert is_working_day(due)
    assert month_on <= due <= month_on + dt.timedelta(days=7)
    assert (due.year, due.month) >= (month_on.year, month_on.month) > (local.year, local.month)
    day = month_on
    while day < due:
        assert not is_working_day(day)
        day += dt.timedelta(days=1)


@given(receipts, receipts)
def test_due_date_never_goes_backwards(a: dt.datetime, b: dt.datetime) -> None:
    """A later receipt never has an earlier due date."""
    first, second = sorted((a, b))
    assert due_date(first) <= due_date(second)


@given(st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2099, 12, 31)))
def test_one_month_is_the_same_date_or_the_month_end(day: dt.date) -> None:
    """A month runs to the same date next month, or that month's last day (1182/71 Art. 3(2)(c))."""
    later = add_one_month(day)
    assert (later.year * 12 + later.month) - (day.year * 12 + day.month) == 1
    assert later.day == day.day or (later.day < day.day and (later + dt.timedelta(1)).day == 1)


@pytest.mark.parametrize(
    ("received", "months", "due"),
    [
        # Three months from 31 January end on 30 April (a Friday), not on the 28th.
        (riga(2027, 1, 31, 12), 3, dt.date(2027, 4, 30)),
        # Two months from 1 December 2026: 1 February 2027, a Monday.
        (riga(2026, 12, 1, 9), 2, dt.date(2027, 2, 1)),
        # Three months from 4 February 2027: 4 May 2027 (Restoration of Independence,
        # a Tuesday), so the next working day.
        (riga(2027, 2, 4, 9), 3, dt.date(2027, 5, 5)),
    ],
)
def test_extended_periods(received: dt.datetime, months: int, due: dt.date) -> None:
    """An extended period (GDPR Art. 12(3)) runs from receipt, with the same working-day rule."""
    assert due_date(received, months) == due


@pytest.mark.parametrize("months", [0, 4])
def test_no_period_beyond_three_months(months: int) -> None:
    """One month plus at most two further months: any other period is refused."""
    with pytest.raises(ValueError, match="months"):
        due_date(riga(2027, 1, 1, 12), months)

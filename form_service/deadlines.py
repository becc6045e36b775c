"""When the answer to a rights request is due.

GDPR Art. 12(3): the controller acts "within one month of receipt of the
request". How a month is counted comes from Regulation (EEC, Euratom) No
1182/71: Art. 3(2)(c) runs it to the same date in the next month, ending on
that month's last day where that date does not exist, and Art. 3(4) moves an
end that falls on a Saturday, Sunday or public holiday to the next working day.
"""

from __future__ import annotations

import calendar
import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

# The shop and its supervisory authority are in Latvia, so "the day of receipt"
# is the calendar day in Riga, not in UTC.
RIGA = ZoneInfo("Europe/Riga")


@lru_cache(maxsize=256)
def _public_holidays(year: int) -> frozenset[dt.date]:
    # The holidays package knows Latvia's fixed and moving holidays and the days
    # off the Cabinet moves or adds (e.g. 18 November observed on a Monday).
    return frozenset(holidays.country_holidays("LV", years=year))


def is_working_day(day: dt.date) -> bool:
    """Regulation 1182/71 Art. 2(2): every day but public holidays, Saturdays and Sundays."""
    return day.weekday() < 5 and day not in _public_holidays(day.year)


def add_months(day: dt.date, months: int) -> dt.date:
    """The same date `months` later, or that month's last day where the date does not exist.

    Counted from `day` itself, never month by month: three months from 31 January
    end on 30 April, not on the 28th (Regulation 1182/71 Art. 3(2)(c)).
    """
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return dt.date(year, month + 1, min(day.day, last))


def add_one_month(day: dt.date) -> dt.date:
    """The same date next month, or that month's last day where the date does not exist."""
    return add_months(day, 1)


def due_date(received: dt.datetime, months: int = 1) -> dt.date:
    """The last day on which the answer is in time (GDPR Art. 12(3)).

    `months` is 1 for the ordinary period, 2 or 3 once it has been extended by
    one or two further months.
    """
    if received.tzinfo is None or received.utcoffset() is None:
        raise ValueError(f"received={received!r} must be timezone-aware")
    if not 1 <= months <= 3:
        raise ValueError(f"months={months} must be 1, 2 or 3 (GDPR Art. 12(3))")
    day = add_months(received.astimezone(RIGA).date(), months)
    while not is_working_day(day):
        day += dt.timedelta(days=1)
    return day

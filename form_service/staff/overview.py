"""The console's overview: open requests by status, what is due, what is late, and two
charts drawn here as SVG (no third-party script: the CSP allows none, and none is needed).

Counts come from the requests the store still holds: confirmed requests of the
last 12 months (retention is longer, so none of them is purged yet).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

from form_service.deadlines import RIGA
from form_service.records import CLOSED, OPEN, RequestRecord

WEEKS = 52
MONTHS = 12
# One colour per request type, in the order of rights.yml; each has a contrast of at
# least 3:1 against white (WCAG 2.2 SC 1.4.11, non-text contrast).
PALETTE = ("#1f5fa8", "#b4441c", "#2e7d32", "#6a3d9a", "#8a6d00", "#00796b", "#ad1457",
           "#455a64", "#5d4037")


@dataclass(frozen=True)
class Late:
    record: RequestRecord
    days: int  # days past the due date (negative: days left)


@dataclass
class Overview:
    by_status: dict[str, int]
    overdue: list[Late]
    due_soon: list[Late]
    weeks: list[dt.date]  # the Monday of each week, oldest first
    per_week: dict[str, list[int]]  # request type -> count per week
    months: list[dt.date]  # the first of each month, oldest first
    on_time: list[tuple[int, int]]  # per month: (answered on time, answered)
    totals: dict[str, int] = field(default_factory=dict)

    @property
    def answered(self) -> int:
        return sum(n for _, n in self.on_time)

    @property
    def answered_on_time(self) -> int:
        return sum(k for k, _ in self.on_time)


def _monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def _first_of_month(day: dt.date, back: int = 0) -> dt.date:
    index = day.year * 12 + day.month - 1 - back
    return dt.date(index // 12, index % 12 + 1, 1)


def build(records: Sequence[RequestRecord], types: Sequence[str], today: dt.date) -> Overview:
    by_status = Counter(r.status for r in records if r.status in OPEN)
    open_records = [r for r in records if r.is_open]
    overdue = sorted((Late(r, (today - r.due_at).days) for r in open_records
                      if r.due_at < today), key=lambda late: -late.days)
    soon = sorted((Late(r, (today - r.due_at).days) for r in open_records
                   if today <= r.due_at <= today + dt.timedelta(days=6)),
                  key=lambda late: (late.record.due_at, late.record.reference))

    first_week = _monday(today) - dt.timedelta(weeks=WEEKS - 1)
    weeks = [first_week + dt.timedelta(weeks=i) for i in range(WEEKS)]
    per_week = {t: [0] * WEEKS for t in types}
    months = [_first_of_month(today, back) for back in range(MONTHS - 1, -1, -1)]
    on_time = [[0, 0] for _ in months]
    for record in records:
        if record.verified_at is None:
            continue  # never confirmed: not a request staff had to answer
        week = (_monday(record.submitted_at.astimezone(RIGA).date()) - first_week).days // 7
        if 0 <= week < WEEKS:
            per_week.setdefault(record.request_type, [0] * WEEKS)[week] += 1
        if record.status in CLOSED and record.closed_at is not None:
            closed = record.closed_at.astimezone(RIGA).date()
            month = _first_of_month(closed)
            if month in months:
                slot = on_time[months.index(month)]
                slot[1] += 1
                slot[0] += closed <= record.due_at
    return Overview(
        by_status={status: by_status.get(status, 0) for status in OPEN},
        overdue=overdue, due_soon=soon, weeks=weeks, per_week=per_week, months=months,
        on_time=[(k, n) for k, n in on_time],
        totals={t: sum(counts) for t, counts in per_week.items()},
    )


def colours(types: Sequence[str]) -> dict[str, str]:
    return {t: PALETTE[i % len(PALETTE)] for i, t in enumerate(types)}


def _nice_ceiling(value: int) -> int:
    for step in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000):
        if value <= step * 4:
            return step * 4 if value > 4 else 4
    return value


def weekly_chart(overview: Overview, labels: Mapping[str, str], title: str, desc: str,
                 week_label: str, date_format: str = "{d}.{m}.") -> str:
    """Requests per week by type, stacked bars, as an SVG element (escaped throughout)."""
    width, height, left, bottom, top = 760, 260, 40, 34, 12
    plot_w, plot_h = width - left - 10, height - bottom - top
    palette = colours(list(overview.per_week))
    totals = [sum(counts[i] for counts in overview.per_week.values())
              for i in range(len(overview.weeks))]
    ceiling = _nice_ceiling(max(totals, default=0))
    slot = plot_w / len(overview.weeks)
    parts = [
        f'<svg class="console-chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="weekly-title weekly-desc" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="weekly-title">{escape(title)}</title>',
        f'<desc id="weekly-desc">{escape(desc)}</desc>',
    ]
    for tick in range(5):
        value = ceiling * tick // 4
        y = top + plot_h - plot_h * tick / 4
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - 10}" y2="{y:.1f}" '
                     f'stroke="#c8c8c8" stroke-width="1"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
                     f'fill="#333">{value}</text>')
    for i, monday in enumerate(overview.weeks):
        x = left + i * slot + 1
        y = top + plot_h
        counts = [(t, c[i]) for t, c in overview.per_week.items() if c[i]]
        if counts:
            summary = ", ".join(f"{n} {labels.get(t, t)}" for t, n in counts)
            parts.append(f"<g><title>{escape(week_label.format(date=monday.isoformat()))}: "
                         f"{escape(summary)}</title>")
            for request_type, n in counts:
                h = plot_h * n / ceiling
                y -= h
                parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot - 2:.1f}" '
                             f'height="{h:.1f}" fill={quoteattr(palette[request_type])}/>')
            parts.append("</g>")
        if i % 4 == 0:
            label = date_format.format(d=monday.day, m=monday.month, y=monday.year)
            parts.append(f'<text x="{x:.1f}" y="{height - bottom + 16}" font-size="11" '
                         f'fill="#333">{escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def on_time_chart(overview: Overview, month_names: Sequence[str], title: str, desc: str,
                  none_label: str) -> str:
    """The share of requests answered by their due date, per month, as SVG bars."""
    width, height, left, bottom, top = 760, 200, 40, 34, 12
    plot_w, plot_h = width - left - 10, height - bottom - top
    slot = plot_w / len(overview.months)
    parts = [
        f'<svg class="console-chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="ontime-title ontime-desc" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="ontime-title">{escape(title)}</title>',
        f'<desc id="ontime-desc">{escape(desc)}</desc>',
    ]
    for tick in range(5):
        y = top + plot_h - plot_h * tick / 4
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - 10}" y2="{y:.1f}" '
                     f'stroke="#c8c8c8" stroke-width="1"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
                     f'fill="#333">{tick * 25}%</text>')
    for i, (month, (kept, answered)) in enumerate(zip(overview.months, overview.on_time,
                                                      strict=True)):
        x = left + i * slot + 6
        name = f"{month_names[month.month - 1]} {month.year}"
        if answered:
            share = kept / answered
            h = plot_h * share
            parts.append(f"<g><title>{escape(name)}: {kept}/{answered} "
                         f"({round(100 * share)}%)</title>"
                         f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{slot - 12:.1f}" '
                         f'height="{h:.1f}" fill="#2e7d32"/></g>')
            parts.append(f'<text x="{x + (slot - 12) / 2:.1f}" y="{top + plot_h - h - 3:.1f}" '
                         f'text-anchor="middle" font-size="11" fill="#333">'
                         f"{round(100 * share)}%</text>")
        else:
            parts.append(f'<text x="{x + (slot - 12) / 2:.1f}" y="{top + plot_h - 3:.1f}" '
                         f'text-anchor="middle" font-size="11" fill="#555">'
                         f"{escape(none_label)}</text>")
        parts.append(f'<text x="{x + (slot - 12) / 2:.1f}" y="{height - bottom + 16}" '
                     f'text-anchor="middle" font-size="11" fill="#333">'
                     f"{escape(month_names[month.month - 1][:3])}</text>")
    parts.append("</svg>")
    return "".join(parts)

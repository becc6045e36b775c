"""The register of requests (GDPR Art. 5(2), 30): every field of every request, for the
records, as CSV or JSON. Shared by `policy-site requests export` and the console's export.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Iterable
from typing import Any

from form_service.deadlines import RIGA
from form_service.delivery.emails import policy_url
from form_service.records import CLOSED, Event, RequestRecord
from form_service.settings import Settings
from form_service.store import Store
from form_service.text import one_line, plain_text
from site_config.facts import Site

# C0 and C1 controls, DEL, and the bidirectional overrides that can make
# text read differently from what it is (CVE-2021-42574, "Trojan Source").
# U+2028/U+2029: line breaks to Python's splitlines(), so a one-line value could add lines.
UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# A spreadsheet runs a cell that starts with one of these as a formula (CWE-1236).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FREE_TEXT = ("name", "email", "phone", "order_number", "details", "close_reason")


def register_entries(store: Store, site: Site, settings: Settings,
                     today: dt.date) -> list[dict[str, Any]]:
    """Every request but the discarded ones, oldest first, as the register's entries."""
    records = store.list_requests()
    extensions = store.events_by_reference("extended")
    return [_register_entry(r, extensions.get(r.reference, []), site, settings, today)
            for r in records]


def register_text(entries: list[dict[str, Any]], fmt: str, now: dt.datetime) -> str:
    if fmt == "json":
        return json.dumps(
            {"exported_at": _iso(now), "requests": entries}, ensure_ascii=False, indent=2
        ) + "\n"
    return _csv(entries)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(RIGA).isoformat(timespec="seconds")


REGISTER_FIELDS = (
    "reference", "request_type", "article", "status", "outcome",
    "name", "email", "phone", "order_number", "language", "details",
    "policy_version", "policy_language", "policy_sha256", "policy_url", "policy_viewed_at",
    "submitted_at", "verified_at", "original_due_at", "extended_months", "extensions",
    "due_at", "overdue", "closed_at", "close_reason",
)


def _register_entry(
    record: RequestRecord, extensions: list[Event], site: Site, settings: Settings,
    today: dt.date,
) -> dict[str, Any]:
    right = site.right(record.request_type)
    entry: dict[str, Any] = {
        "reference": record.reference,
        "request_type": record.request_type,
        "article": right.article if right else None,
        "status": record.status,
        "outcome": record.status if record.status in CLOSED else None,
        # Neutralised as everywhere customer text is shown (text.py); JSON keeps the
        # words exactly, without the controls that would make them read otherwise.
        "name": one_line(record.name),
        "email": record.email,
        "phone": one_line(record.phone) if record.phone else record.phone,
        "order_number": one_line(record.order_number) if record.order_number else None,
        "language": record.language,
        "details": plain_text(record.details),
        "policy_version": record.policy_version,
        "policy_language": record.policy_language,
        "policy_sha256": record.policy_sha256,
        "policy_url": policy_url(record, site, settings),
        "policy_viewed_at": _iso(record.policy_viewed_at),
        "submitted_at": _iso(record.submitted_at),
        "verified_at": _iso(record.verified_at) if record.verified_at else None,
        "original_due_at": record.first_month_due.isoformat(),
        "extended_months": record.extended_months,
        "extensions": [
            {"at": _iso(e.at), "months": (e.detail or {}).get("months"),
             "due_at": (e.detail or {}).get("due_at"), "reason": (e.detail or {}).get("reason")}
            for e in extensions
        ],
        "due_at": record.due_at.isoformat(),
        "overdue": record.overdue(today),
        "closed_at": _iso(record.closed_at) if record.closed_at else None,
        "close_reason": plain_text(record.close_reason) if record.close_reason else None,
    }
    return entry


def _csv(entries: Iterable[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180
    writer.writerow(REGISTER_FIELDS)
    for entry in entries:
        row = dict(entry)
        row["extensions"] = " | ".join(
            f"{e['at']}: +{e['months']} until {e['due_at']}: {e['reason']}"
            for e in entry["extensions"]
        )
        for name in _FREE_TEXT:
            row[name] = _cell(row[name])
        writer.writerow(["" if row[n] is None else row[n] for n in REGISTER_FIELDS])
    return buffer.getvalue()


def _cell(value: str | None) -> str | None:
    """Typed text, made inert for spreadsheets and terminals.

    A leading ' stops a formula; control characters (but line breaks and tabs)
    become U+FFFD. The JSON export keeps the exact text.
    """
    if not value:
        return value
    value = value.replace("\r\n", "\n")
    value = UNSAFE.sub(lambda m: m[0] if m[0] in "\n\t" else "\ufffd", value)
    return "'" + value if value.startswith(_FORMULA_START) else value

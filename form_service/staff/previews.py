"""What a staff decision will do, shown before it is done: the new due date, whether GDPR
Art. 12(3) allows it, and the exact e-mail the customer will get (rendered by the same
code, delivery/emails.py, that renders it when it is sent)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from form_service.deadlines import RIGA, due_date
from form_service.delivery.emails import render
from form_service.records import RequestRecord, extension_refusal
from form_service.settings import Settings


@dataclass(frozen=True)
class MailPreview:
    to: str
    subject: str
    body: str
    language: str


@dataclass(frozen=True)
class ExtensionPlan:
    months: int
    previous_due: dt.date
    new_due: dt.date
    first_month_due: dt.date
    total_months: int
    refusal: str | None  # records.extension_refusal's reason, None when allowed


def plan_extension(record: RequestRecord, months: int, today: dt.date) -> ExtensionPlan:
    """The extension as Store.extend would make it (the store checks again when it is done)."""
    total = record.extended_months + months
    return ExtensionPlan(
        months=months,
        previous_due=record.due_at,
        # GDPR Art. 12(3): one month plus the extension, all from receipt.
        new_due=due_date(record.submitted_at, 1 + total),
        first_month_due=record.first_month_due,
        total_months=total,
        refusal=extension_refusal(record, months, today),
    )


def extension_payload(plan: ExtensionPlan, reason: str) -> dict[str, Any]:
    return {
        "months": plan.months,
        "extended_months": plan.total_months,
        "reason": reason,
        "previous_due_at": plan.previous_due.isoformat(),
        "due_at": plan.new_due.isoformat(),
    }


def close_payload(record: RequestRecord, outcome: str, reason: str,
                  at: dt.datetime) -> dict[str, Any]:
    return {
        "outcome": outcome,
        "reason": reason,
        "closed_at": at.astimezone(dt.UTC).isoformat(),
        "due_at": record.due_at.isoformat(),
        "late": at.astimezone(RIGA).date() > record.due_at,
    }


def preview_mail(kind: str, record: RequestRecord, payload: dict[str, Any],
                 settings: Settings, now: dt.datetime) -> MailPreview:
    outgoing = render(kind, record, message_id="<preview@localhost>", settings=settings,
                      now=now, payload=payload)
    message = outgoing.message
    body = message.get_body()
    text = str(body.get_content()) if body is not None else ""
    return MailPreview(to=", ".join(outgoing.recipients), subject=str(message["Subject"]),
                       body=text.replace("\r\n", "\n"), language=str(message["Content-Language"]))

"""`policy-site requests`: what staff do with rights requests, from the command line.

    list      the requests, with due dates, OVERDUE marks and failed deliveries
    show      everything about one request: evidence, history, messages
    overdue   open requests past (or, with --within, near) their due date
    extend    extend the period by one or two months (GDPR Art. 12(3))
    close     record the answer, done or refused (GDPR Art. 12(4))
    export    the register of requests, as CSV or JSON
    ask       ask the customer for information (GDPR Art. 12(6)); they reply on the status page
    answer    answer with files (a copy of the data), sealed at rest, fetched with a code
    retry     put the messages that failed delivery back in the queue
    verify-log  walk the history's hash chain and name the first broken link
    backup    a consistent copy of the SQLite database, while the service runs

Every change goes through the store, which writes the append-only event and
the customer's e-mail (an outbox row) in one transaction; the delivery worker
of `policy-site serve` sends it. Each action and each `show` is an event naming
the operating-system user who ran it (GDPR Art. 5(2)). Customer text is printed with control
characters replaced, so a name cannot move the cursor or recolour the terminal.
"""

from __future__ import annotations

import argparse
import datetime as dt
import errno
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from sqlalchemy.exc import SQLAlchemyError

from form_service.acting import acting_as, cli_actor
from form_service.deadlines import RIGA
from form_service.delivery.emails import policy_url
from form_service.records import (
    CLOSED,
    MAX_EXTENSION_MONTHS,
    OPEN,
    REFUSED,
    STATUSES,
    RequestRecord,
    StoreError,
    UnknownRequest,
)
from form_service.settings import Settings, SettingsError, load_settings
from form_service.staff.backup import BackupError, backup
from form_service.staff.register import UNSAFE as _UNSAFE
from form_service.staff.register import register_entries, register_text
from form_service.store import Store
from site_config.facts import FactsError, Site, load_site

PROG = "policy-site requests"

Action = Callable[[Store, argparse.Namespace, "_Context"], int]


class _Parser(argparse.ArgumentParser):
    """A usage error is one plain sentence and exit status 1, like every other error here."""

    def error(self, message: str) -> NoReturn:
        self.exit(1, f"{self.prog}: {message} (see --help).\n")


class _Context:
    """What every action needs besides the store: the time, the settings and the site."""

    def __init__(self, settings: Settings, now: dt.datetime) -> None:
        self.settings = settings
        self.site: Site = load_site(settings.root)
        self.now = now
        self.today = now.astimezone(RIGA).date()


# -- the command line -------------------------------------------------------


def add_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `requests` and its actions on policy-site's subcommands."""
    description = (
        "Staff: list, show, extend and close rights requests; overdue ones; the register. "
        "The database is the one in POLICY_DATABASE_URL."
    )
    p = sub.add_parser("requests", help="Staff: list, show, extend, close and export requests.",
                       description=description)
    p.set_defaults(func=run, action=None)
    actions = p.add_subparsers(
        dest="action", metavar="ACTION", parser_class=_Parser, title="actions"
    )

    def add(name: str, func: Action, help_: str) -> argparse.ArgumentParser:
        q = actions.add_parser(name, help=help_, description=help_)
        q.set_defaults(action_func=func)
        return q

    q = add("list", _list, "List requests (oldest first), and every message that failed.")
    q.add_argument("--status", choices=[*STATUSES, "open", "closed"],
                   help="only requests with this status (open: verified or extended; "
                        "closed: done or refused)")
    q.add_argument("--type", dest="request_type", metavar="TYPE",
                   help="only requests of this type (access, erasure, ...)")

    q = add("show", _show, "Show everything about one request: evidence, history, messages.")
    q.add_argument("reference", metavar="REF", help="the request's reference, e.g. PO-7K3M-9QXD")

    q = add("overdue", _overdue, "List open requests whose answer is overdue.")
    q.add_argument("--within", type=_days, metavar="N",
                   help="also those due today or within the next N days")

    q = add("extend", _extend, "Extend the time to answer by one or two months "
            "(GDPR Art. 12(3)) and tell the customer why.")
    q.add_argument("reference", metavar="REF", help="the request's reference")
    q.add_argument("--reason", required=True, metavar="TEXT",
                   help="why more time is needed; the customer is sent it")
    q.add_argument("--months", type=int, choices=range(1, MAX_EXTENSION_MONTHS + 1), default=1,
                   help="how many months to add (default 1; at most 2 in total, and only "
                        "within the first month)")

    q = add("close", _close, "Record the answer and tell the customer: done, or refused "
            "with the reasons and their right to complain (GDPR Art. 12(4)).")
    q.add_argument("reference", metavar="REF", help="the request's reference")
    q.add_argument("--outcome", required=True, choices=CLOSED,
                   help="done: carried out; refused: not acted on")
    q.add_argument("--reason", required=True, metavar="TEXT",
                   help="what was done, or why not; the customer is sent it")

    q = add("ask", _ask, "Ask the customer for information (GDPR Art. 12(6): to confirm "
            "who they are, or to say what the request is about); they are e-mailed and "
            "reply on their request's status page.")
    q.add_argument("reference", metavar="REF", help="the request's reference")
    q.add_argument("--question", required=True, metavar="TEXT",
                   help="what you need to know; the customer is sent it")

    q = add("answer", _answer, "Answer with files (ZIP, PDF, CSV, JSON, TXT): they are "
            "encrypted at rest, the customer is e-mailed that the answer is ready, and "
            "downloads it from the status page with a code sent at that moment. Closes the "
            "request as done. Needs POLICY_FILES_KEY.")
    q.add_argument("reference", metavar="REF", help="the request's reference")
    q.add_argument("--file", dest="files", action="append", required=True, type=Path,
                   metavar="FILE", help="a file of the answer (repeat for more)")
    q.add_argument("--message", required=True, metavar="TEXT",
                   help="what the files are and what was done; shown on the status page")

    q = add("backup", _backup, "Copy the SQLite database to FILE, consistent while the "
            "service runs (for PostgreSQL use pg_dump).")
    q.add_argument("file", type=Path, metavar="FILE",
                   help="a new file (never overwritten), readable by its owner only")
    q.set_defaults(uses_store=False)

    q = add("export", _export, "Write the register of requests (every field) as CSV or JSON.")
    q.add_argument("--format", choices=("csv", "json"), default="csv", help="default: csv")
    q.add_argument("--output", type=Path, metavar="FILE",
                   help="write here (readable by its owner only) instead of to standard output")

    q = add("retry", _retry, "Put messages that failed delivery back in the queue "
            "(same Message-ID); the delivery worker of `policy-site serve` sends them.")
    which = q.add_mutually_exclusive_group(required=True)
    which.add_argument("reference", metavar="REF", nargs="?",
                       help="this request's failed messages")
    which.add_argument("--failed", action="store_true",
                       help="every failed message (after fixing what made them fail)")

    add("verify-log", _verify_log, "Walk the history's hash chain: say that no event was "
        "changed or deleted, or name the first broken link.")


def _days(value: str) -> int:
    try:
        days = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of days") from None
    if days < 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not zero or more days")
    return days


def run(args: argparse.Namespace) -> int:
    from alembic.util import CommandError as AlembicError  # only when a database is opened

    if args.action is None:
        return fail(PROG, None, "name an action: list, show, overdue, extend, close, ask, answer, "
                                "export, backup, retry or verify-log (see --help)")
    try:
        settings = load_settings(root=args.root)
        if not getattr(args, "uses_store", True):
            # backup: the database as it is, neither opened through the store nor migrated
            # (a backup taken before an upgrade must be of the old schema).
            return int(args.action_func(None, args, settings))
        context = _Context(settings, dt.datetime.now(dt.UTC))
        # A command may read the whole register (export, verify-log): no request's
        # statement timeout on PostgreSQL (db.create).
        store = Store.from_settings(settings, statement_timeouts=False)
    except (SettingsError, FactsError, BackupError) as exc:
        return fail(PROG, args.action, str(exc))
    try:
        store.migrate()
        # Every event written by this command names who ran it (acting.py).
        with acting_as(cli_actor()):
            return int(args.action_func(store, args, context))
    except (StoreError, ValueError, FactsError, SettingsError) as exc:
        return fail(PROG, args.action, str(exc))
    except AlembicError as exc:
        return fail(PROG, args.action, f"the database in POLICY_DATABASE_URL cannot be brought up "
                                       f"to date: {exc}")
    except SQLAlchemyError as exc:
        # The URL may hold a password: name the variable, never its value.
        return fail(PROG, args.action, f"the database in POLICY_DATABASE_URL cannot be used "
                                       f"({type(exc).__name__}); check the setting and that the "
                                       "server is running")
    except OSError as exc:
        return fail(PROG, args.action, f"cannot write {exc.filename}: {exc.strerror}")
    finally:
        store.close()


def fail(prog: str, action: str | None, message: str) -> int:
    """`PROG ACTION: message.` on stderr, and the exit status 1 (member_commands.py too)."""
    where = f"{prog} {action}" if action else prog
    print(f"{where}: {message.rstrip('.')}.", file=sys.stderr)
    return 1


# -- the actions ------------------------------------------------------------


def _list(store: Store, args: argparse.Namespace, ctx: _Context) -> int:
    statuses = {"open": OPEN, "closed": CLOSED}.get(args.status) or (
        (args.status,) if args.status else None
    )
    if args.request_type is not None:
        known = [r.id for r in ctx.site.rights]
        if args.request_type not in known:
            raise ValueError(f"there is no request type {args.request_type!r}; "
                             f"the types are {', '.join(known)}")
    records = store.list_requests(statuses=statuses, request_type=args.request_type)
    if not records:
        print("No requests match." if statuses or args.request_type else "No requests yet.")
    else:
        _print_table(records, ctx)
        print(f"{_count(len(records), 'request')}.")
    listed = {r.reference for r in records}
    failed = [(ref, m) for ref, m in store.failed_messages() if ref in listed]
    if failed:
        print()
        print("Failed deliveries: these were NOT sent. Act on them by hand "
              f"(`{PROG} show REF` has the details).")
        rows = [(ref, m.kind, str(m.attempts), _line(m.last_error or "", 100))
                for ref, m in failed]
        print_rows(("REFERENCE", "KIND", "TRIES", "REASON"), rows)
    return 0


def _show(store: Store, args: argparse.Namespace, ctx: _Context) -> int:
    # Shown to someone: recorded, with who ran the command (GDPR Art. 5(2)).
    record = store.record_view(args.reference, ctx.now)
    right = ctx.site.right(record.request_type)
    label = right.label.get(ctx.site.staff_language, right.id) if right else "?"
    article = f"GDPR {right.article}" if right else "GDPR ?"
    due = record.due_at.isoformat() + ("  OVERDUE" if record.overdue(ctx.today) else "")
    extended = f"extended by {record.extended_months} of at most {MAX_EXTENSION_MONTHS} " \
               "further months" if record.extended_months else "not extended"
    facts = [
        ("Reference", record.reference),
        ("Request", f"{record.request_type} ({article}): {label}"),
        ("Status", record.status),
        ("Name", _line(record.name)),
        ("E-mail", _line(record.email)),
        ("Phone", _line(record.phone or "-")),
        ("Order number", _line(record.order_number or "-")),
        ("Language", record.language),
        ("Policy version", f"{record.policy_version} ({record.policy_language})"),
        ("Policy SHA-256", record.policy_sha256),
        ("Policy text", policy_url(record, ctx.site, ctx.settings)),
        ("Policy shown", _iso(record.policy_viewed_at)),
        ("Submitted", _iso(record.submitted_at)),
        ("Verified", _iso(record.verified_at) if record.verified_at else "not yet"),
        ("Due", due),
        ("First month ends", f"{record.first_month_due.isoformat()} ({extended})"),
    ]
    if record.closed_at is not None:
        facts.append(("Closed", f"{_iso(record.closed_at)}, {record.status}"))
    width = max(len(name) for name, _ in facts) + 2
    for name, value in facts:
        print(f"{name + ':':<{width}}{value}")
    print("Details:")
    print(_block(record.details, "  > "))
    if record.close_reason:
        print("Reason given on closing:")
        print(_block(record.close_reason, "  "))

    print()
    print("History (append-only):")
    print_rows(("TIME", "EVENT", "DETAIL"),
                [(_iso(e.at), e.kind, _line(_detail(e.detail), 120))
                 for e in store.events(record.reference)])

    print()
    messages = store.messages(record.reference)
    if not messages:
        print("Messages: none.")
        return 0
    print("Messages:")
    rows = []
    for m in messages:
        if m.status == "sent" and m.sent_at is not None:
            note = f"sent {_iso(m.sent_at)}"
        elif m.status == "pending":
            note = f"next try {_iso(m.next_attempt_at)}"
        else:
            note = "NOT SENT"
        rows.append((m.kind, m.status, str(m.attempts), note, m.message_id))
    print_rows(("KIND", "STATUS", "TRIES", "WHEN", "MESSAGE-ID"), rows)
    for m in messages:
        if m.last_error:
            print(f"  last error of {m.kind}: {_line(m.last_error)}")
    return 0


def _overdue(store: Store, args: argparse.Namespace, ctx: _Context) -> int:
    records = store.overdue(ctx.today, args.within)
    if args.within is None:
        heading = f"overdue on {ctx.today.isoformat()}"
    else:
        until = ctx.today + dt.timedelta(days=args.within)
        heading = f"overdue or due by {until.isoformat()}"
    if not records:
        print(f"No open request is {heading}.")
        return 0
    print(f"{_count(len(records), 'open request')} {heading}:")
    _print_table(records, ctx)
    return 0


def _extend(store: Store, args: argparse.Namespace, ctx: _Context) -> int:
    record = store.extend(args.reference, args.months, args.reason, ctx.now)
    print(f"{record.reference}: the answer is now due {record.due_at.isoformat()} "
          f"(extended by {record.extended_months} of at most {MAX_EXTENSION_MONTHS} further "
          f"months). The customer will be e-mailed the new date and your reason "
          f"(language: {record.language}).")
    return 0


def _close(store: Store, args: argparse.Namespace, ctx: _Context) -> int:
    record = store.close_request(args.reference, args.outcome, args.reason, ctx.now)
    told = "your reason"
    if record.status == REFUSED:
        authority = ctx.site.authority.get("name", {}).get(ctx.site.default_language, "")
        told = (f"your reasons, their right to complain to the {authority} "
                "and to seek a judicial remedy")
    print(f"{record.reference}: closed as {record.status}. The customer will be e-mailed "
          f"{told} (language: {record.language}).")
    return 0


def _ask(store: Store, args: argparse.Namespace, ctx: _Context) -> int:
    from form_service.followup import FollowUp

    record = FollowUp(store).ask(args.reference, args.question, ctx.now)
    print(f"{record.reference}: the customer will be e-mailed your question (language: "
          f"{record.language}) and can reply on the request's status page; the reply comes "
          f"to {ctx.settings.staff_email} on the ticket's thread.")
    return 0


def _answer(store: Store, args: argparse.Namespace, ctx: _Context) -> int:
    from form_service import answer_files

    settings = ctx.settings
    settings.require_files_key()  # before any file is read: one sentence, exit status 1
    if len(args.files) > answer_files.MAX_FILES:
        raise answer_files.AnswerFileError(
            f"an answer carries at most {answer_files.MAX_FILES} files")
    record = store.get(args.reference)
    if record is None:
        raise UnknownRequest(args.reference)
    sealed: list[answer_files.StoredFile] = []
    try:
        for path in args.files:
            sealed.append(answer_files.seal_file(settings, path))
        record = answer_files.AnswerFiles(store, settings).answer(
            args.reference, args.message, sealed, ctx.now)
    except BaseException:
        answer_files.discard(settings, sealed)
        raise
    until = (ctx.now + dt.timedelta(days=settings.answer_files_days)).astimezone(RIGA).date()
    print(f"{record.reference}: answered with {_count(len(sealed), 'file')}, encrypted at "
          f"rest until {until.isoformat()}; closed as done. The customer will be e-mailed that "
          f"the answer is ready (language: {record.language}) and downloads it from the status "
          "page with a code sent to their address.")
    return 0


def _export(store: Store, args: argparse.Namespace, ctx: _Context) -> int:
    entries = register_entries(store, ctx.site, ctx.settings, ctx.today)
    text = register_text(entries, args.format, ctx.now)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    # The register holds personal data: readable by its owner only (GDPR Art. 32),
    # and never written through a symbolic link, which may lead to anyone's file.
    refusal = (f"{args.output} is a symbolic link; the register is written only to a "
               "file named directly")
    if args.output.is_symlink():
        raise ValueError(refusal)
    try:
        fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # made a link between the check and the open
            raise ValueError(refusal) from None
        raise
    os.fchmod(fd, 0o600)  # also when the file was already there, with wider rights
    with open(fd, "w", encoding="utf-8", newline="") as out:
        out.write(text)
    print(f"Wrote {_count(len(entries), 'request')} to {args.output}.")
    return 0


def _retry(store: Store, args: argparse.Namespace, ctx: _Context) -> int:
    count = store.retry_failed(args.reference, ctx.now)
    where = f" of {args.reference}" if args.reference else ""
    if not count:
        print(f"No failed message{where} to retry.")
    else:
        print(f"{_count(count, 'message')}{where} back in the queue; `policy-site serve` "
              "sends them with the same Message-ID.")
    return 0


def _backup(_store: Any, args: argparse.Namespace, settings: Settings) -> int:
    made = backup(settings.database_url, args.file)
    print(f"Backed up {_count(made.requests, 'request')} ({made.size} bytes) to {made.path}.")
    return 0


def _verify_log(store: Store, args: argparse.Namespace, ctx: _Context) -> int:
    verdict, reference = store.verify_log()
    if verdict.intact:
        print(f"The history is intact: {_count(verdict.events, 'event')}, each linked to the "
              f"one before it; the newest hash is {verdict.head}.")
        return 0
    link = verdict.broken_at
    if link is None:
        where = f"after the last of {_count(verdict.events, 'intact event')}"
    else:
        whose = f"request {reference}" if reference else (
            "the register" if link.request_id is None else f"deleted request #{link.request_id}")
        where = f"at event {link.id} ({link.kind}, {_iso(link.at)}, {whose})"
    return fail(PROG, "verify-log", f"the history is broken {where}: {verdict.problem}; the "
                                     f"{_count(verdict.events, 'event')} before it are intact")


# -- printing ---------------------------------------------------------------


def _print_table(records: list[RequestRecord], ctx: _Context) -> None:
    rows = [
        (
            r.reference,
            r.request_type,
            r.status,
            r.submitted_at.astimezone(RIGA).strftime("%Y-%m-%d %H:%M"),
            r.due_at.isoformat() + (" OVERDUE" if r.overdue(ctx.today) else ""),
            r.language,
        )
        for r in records
    ]
    print_rows(("REFERENCE", "TYPE", "STATUS", "SUBMITTED", "DUE", "LANG"), rows)


def print_rows(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    for row in (header, *rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _iso(moment: dt.datetime) -> str:
    """Riga time with its offset: exact, and what the ticket e-mail shows."""
    return moment.astimezone(RIGA).isoformat(timespec="seconds")


def _line(text: str, limit: int | None = None) -> str:
    """Text on one line, with every control character replaced; cut to `limit`."""
    flat = " ".join(_UNSAFE.sub(" ", text).split())
    if limit is not None and len(flat) > limit:
        return flat[: limit - 1] + "…"
    return flat


def _block(text: str, prefix: str) -> str:
    """Multi-line text, each line prefixed, with every control character replaced."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    ")
    lines = text.strip("\n").split("\n")
    return "\n".join(f"{prefix}{_UNSAFE.sub('?', line)}".rstrip() for line in lines)


def _detail(detail: dict[str, Any] | None) -> str:
    if not detail:
        return ""
    return ", ".join(f"{key}={value}" for key, value in detail.items())

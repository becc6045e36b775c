"""Logging of `policy-site serve`: one line per event, nothing secret or personal in it.

GDPR Art. 32 and 5(1)(c): logs are kept longer and read more widely than the
database, so they hold neither secrets nor customers' data:

- the tokens in link paths (`/request/verify/<token>`: whoever reads the log
  could confirm a stranger's request; the confirmation page's token carries
  the reference) are replaced, in every logger and in tracebacks too;
- query strings are never logged (a GET carrying form fields would put a
  name, an address and tokens in the access log);
- delivery failures name the reference and Message-ID, never the recipient
  (mailer.py takes addresses out of the server's replies).

One line per event, so that a log collector never splits an event: a
traceback is folded into its line (text) or is one JSON string
(POLICY_LOG_FORMAT=json).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import traceback
from typing import Any

# The last path segment after verify/, sent/ or status/ (the language prefix may precede),
# and the staff console's one-time enrolment link (whoever reads it could enrol).
_TOKEN_PATH = re.compile(r"(/request/(?:verify|sent|status)/|/staff/enrol/)[^/?#\s\"']+")
# A query string after a path: from "?" to the next space or quote.
_QUERY = re.compile(r"(/[^\s?#\"']*)\?[^\s#\"']*")
REDACTED = "…"


def redact(text: str) -> str:
    """`text` with link tokens and query strings replaced by "…"."""
    return _QUERY.sub(rf"\g<1>?{REDACTED}", _TOKEN_PATH.sub(rf"\g<1>{REDACTED}", text))


class Redact(logging.Filter):
    """Rewrites every record it sees (message, arguments and traceback) through redact().

    On the handlers, so that records of every logger pass it, whichever logger
    they were made by (uvicorn's access and error logs, Starlette, ours).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(_one_line_exception(record.exc_info[1]))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text.replace("\n", " | "))
        return True


def _one_line_exception(exc: BaseException) -> str:
    """The exception, its message and where it was raised, on one line."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else ""
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message}{where}"


class TextFormatter(logging.Formatter):
    """`2026-12-01T09:30:00Z INFO uvicorn.access: message [exception]` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_utc(record)} {record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_text:
            line += f" [{record.exc_text}]"
        return " ".join(line.splitlines())

    def formatException(self, ei: Any) -> str:
        return _one_line_exception(ei[1]) if ei and ei[1] is not None else ""


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, and the exception if any."""

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "time": _utc(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_text:
            event["exception"] = record.exc_text
        return json.dumps(event, ensure_ascii=False)

    def formatException(self, ei: Any) -> str:
        return _one_line_exception(ei[1]) if ei and ei[1] is not None else ""


def _utc(record: logging.LogRecord) -> str:
    moment = dt.datetime.fromtimestamp(record.created, dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def log_config(log_format: str = "text") -> dict[str, Any]:
    """The logging set-up of `policy-site serve` (uvicorn's loggers and ours), for dictConfig."""
    formatter = JsonFormatter if log_format == "json" else TextFormatter
    handler = {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
               "formatter": "line", "filters": ["redact"]}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": Redact}},
        "formatters": {"line": {"()": formatter}},
        "handlers": {"line": handler},
        "loggers": {
            name: {"handlers": ["line"], "level": "INFO", "propagate": False}
            for name in ("uvicorn", "uvicorn.access", "form_service")
        } | {"uvicorn.error": {"level": "INFO"}},
        "root": {"handlers": ["line"], "level": "WARNING"},
    }

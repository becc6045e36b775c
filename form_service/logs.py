"""Logging of `policy-site serve`: uvicorn's, with the links' tokens taken out.

The access log would otherwise hold every confirmation link in full
(`/request/verify/<token>`): anyone who can read the log could confirm a
stranger's request, and the confirmation page's token carries the reference.
GDPR Art. 32: logs are kept longer and read more widely than the database.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

# The last path segment after verify/ or sent/ (the language prefix may precede them).
_TOKEN_PATH = re.compile(r"(/request/(?:verify|sent)/)[^/?#\s]+")
REDACTED = "…"


def redact(path: str) -> str:
    return _TOKEN_PATH.sub(rf"\g<1>{REDACTED}", path)


class RedactTokens(logging.Filter):
    """Rewrites the path in uvicorn's access records (args: client, method, path, ...)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact(args[2]), *args[3:])
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's own logging set-up, with RedactTokens on its access log."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_tokens"] = {"()": RedactTokens}
    config["handlers"]["access"]["filters"] = ["redact_tokens"]
    return config

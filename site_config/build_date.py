"""The date a build treats as today, so an upcoming version becomes current on its day."""

from __future__ import annotations

import datetime as dt
import os

ENV = "POLICY_BUILD_DATE"


def build_date() -> dt.date:
    raw = os.environ.get(ENV)
    if raw:
        try:
            return dt.date.fromisoformat(raw)
        except ValueError:
            raise ValueError(f"{ENV}={raw!r} is not a date like 2026-12-31.") from None
    return dt.date.today()

"""One outbox worker in a process of its own, for the kill test: `python worker_process.py
DATABASE_URL SMTP_URL OWNER LEASE_SECONDS`. It sends until nothing has been due for 3 s."""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
import time

from site_tree import ROOT

from form_service.delivery.worker import Worker
from form_service.settings import load_settings
from form_service.store import Store


async def main(database_url: str, smtp_url: str, owner: str, lease_seconds: float) -> None:
    settings = load_settings({
        "POLICY_SECRET_KEY": "worker-process-test-key-long-enough-for-256-bits",
        "POLICY_SMTP_URL": smtp_url,
        "POLICY_DATABASE_URL": database_url,
        "POLICY_VAR_DIR": "/nonexistent-var",
    }, root=ROOT)
    store = Store(database_url)
    worker = Worker(store, settings, owner=owner, batch_size=10,
                    lease=dt.timedelta(seconds=lease_seconds))
    idle_since = time.monotonic()
    while time.monotonic() - idle_since < 3:
        if await worker.run_once():
            idle_since = time.monotonic()
        else:
            await asyncio.sleep(0.1)
    store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])))

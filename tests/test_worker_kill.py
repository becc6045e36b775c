"""Four worker processes share 1,000 messages; one is killed with SIGKILL midway."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from delivery_support import bulk_requests
from smtp_server import SmtpServer

from form_service.store import Store

pytestmark = pytest.mark.slow
WORKER = Path(__file__).with_name("worker_process.py")


def test_each_message_is_sent_once_when_a_worker_is_killed(database_url: str,
                                                           smtp_server: SmtpServer) -> None:
    """The killed worker's claimed messages are taken over when its lease runs out; every
    message arrives, and none twice except, at most, the one being sent as it died."""
    setup = Store(database_url)
    setup.migrate()
    # Due now: the processes run on the real clock.
    now = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    references = bulk_requests(database_url, 1000, at=now)
    setup.close()
    workers = [
        subprocess.Popen([sys.executable, str(WORKER), database_url, smtp_server.url,
                          f"w{i}", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for i in range(4)
    ]
    try:
        deadline = time.monotonic() + 60
        while len(smtp_server.messages) < 250 and time.monotonic() < deadline:
            time.sleep(0.01)
        victim = workers[0]
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        sent_when_killed = len(smtp_server.messages)
        for worker in workers[1:]:
            assert worker.wait(timeout=120) == 0
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    assert 250 <= sent_when_killed < 1000, "the kill did not happen midway"
    counts = Counter(smtp_server.message_ids())
    expected = {f"<{r}.verify@pulkstenu-outlets.lv>" for r in references}
    assert set(counts) == expected
    assert sum(n - 1 for n in counts.values()) <= 1

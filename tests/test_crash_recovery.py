"""SIGKILL in the middle of a stream of submissions loses nothing that was acknowledged."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx2
import pytest
from live_service import HIDDEN, REFERENCE, LiveService
from site_tree import ROOT
from smtp_server import SmtpServer

from form_service.store import Store
from site_config.build_site import build_site

pytestmark = pytest.mark.slow


def _submit_forever(base_url: str, shown: list[str], stop: threading.Event, n: int) -> None:
    """One customer after another: GET the form, POST it, keep the reference shown."""
    i = 0
    while not stop.is_set():
        i += 1
        try:
            with httpx2.Client(base_url=base_url, timeout=5,
                               headers={"Origin": base_url}) as client:
                form = client.get("/en/request/?type=access")
                fields = {m["name"]: m["value"] for m in HIDDEN.finditer(form.text)}
                fields.update(name=f"Client {n}-{i}", email=f"c{n}-{i}@example.lv",
                              request_type="access", details="Please send my data.")
                answer = client.post("/en/request/", data=fields, follow_redirects=True)
        except httpx2.HTTPError:
            continue  # the server is down: nothing was shown to this customer
        match = REFERENCE.search(answer.text)
        if answer.status_code == 200 and match:
            shown.append(match[0])


def test_acknowledged_requests_survive_sigkill(tmp_path: Path) -> None:
    """Every reference a client saw is stored after restart, and its e-mail is delivered."""
    smtp = SmtpServer()
    smtp.start()
    site_dir = build_site(ROOT, tmp_path / "site")
    # A short lease, so that the killed worker's claimed messages are taken over soon.
    live = LiveService(tmp_path / "var", site_dir, smtp.url, POLICY_OUTBOX_LEASE_SECONDS="3")
    live.start()
    shown: list[str] = []
    stop = threading.Event()
    clients = [threading.Thread(target=_submit_forever, args=(live.base_url, shown, stop, n))
               for n in range(4)]
    try:
        for c in clients:
            c.start()
        deadline = time.monotonic() + 30
        while len(shown) < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        live.kill()  # mid-stream: clients are posting as it dies
        time.sleep(0.5)
        stop.set()
        for c in clients:
            c.join(timeout=10)
        acknowledged = list(shown)
        assert len(acknowledged) >= 40, "the stream was too slow to test anything"

        live.start()  # same database, same SMTP server
        store = Store(live.database_url)
        try:
            missing = [ref for ref in acknowledged if store.get(ref) is None]
            assert missing == []
        finally:
            store.close()

        wanted = {f"<{ref}.verify@pulkstenu-outlets.lv>" for ref in acknowledged}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not wanted <= set(smtp.message_ids()):
            time.sleep(0.2)
        ids = smtp.message_ids()
        assert wanted <= set(ids)
        # A message being sent at the instant of the kill may go twice (at-least-once);
        # its stable Message-ID lets the receiver see it is the same message.
        duplicated = {i for i in ids if ids.count(i) > 1}
        assert len(duplicated) <= 20
    finally:
        stop.set()
        live.stop()
        smtp.stop()

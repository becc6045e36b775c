"""The whole service as customers meet it: `policy-site serve` in a process of its own.

Used by the end-to-end, crash and load tests: a real uvicorn on a loopback
port, a real SQLite file, a real SMTP server; it can be killed with SIGKILL
and started again on the same data.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from site_tree import ROOT
from smtp_server import free_port

HIDDEN = re.compile(r'<input type="hidden" name="(?P<name>[a-z_]+)" value="(?P<value>[^"]*)">')
REFERENCE = re.compile(r"PO-[0-9A-Z]{4}-[0-9A-Z]{4}")


class LiveService:
    def __init__(self, var_dir: Path, site_dir: Path, smtp_url: str | None,
                 project: Path = ROOT, **extra_env: str) -> None:
        self.project = project
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "NO_MKDOCS_2_WARNING": "1",
            "POLICY_VAR_DIR": str(var_dir),
            "POLICY_SITE_DIR": str(site_dir),
            "POLICY_BASE_URL": self.base_url,
            "POLICY_SECRET_KEY": "live-service-test-secret-key-0123456789-abcdefghij",
            "POLICY_STAFF_EMAIL": "staff@pulkstenu-outlets.lv",
            "POLICY_MAIL_FROM": "privacy@pulkstenu-outlets.lv",
            "POLICY_RATE_LIMIT_PER_IP": "100000/hour",
            **extra_env,
        }
        if smtp_url:
            self.env["POLICY_SMTP_URL"] = smtp_url
        self.database_url = self.env.get(
            "POLICY_DATABASE_URL", f"sqlite:///{var_dir / 'requests.sqlite3'}"
        )
        self.log = var_dir / "service.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        # The log goes to a file: a pipe nobody reads would stall a chatty server.
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "form_service.cli", "--project", str(self.project), "serve",
                 "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the service exited at start: {self.log.read_text()}")
            try:
                with urllib.request.urlopen(self.base_url + "/healthz", timeout=2) as r:  # noqa: S310
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the service did not answer /healthz in time")

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, as in a power cut or an OOM kill."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def submit(client: Any, email: str, path: str = "/en/request/") -> tuple[str, str]:
    """Fill in and send the form as a browser would (an httpx client with Origin set);
    return the reference shown and the confirmation page's address."""
    form = client.get(path, params={"type": "access"})
    fields = {m["name"]: m["value"] for m in HIDDEN.finditer(form.text)}
    fields.update(name="Test Person", email=email, request_type="access",
                  details="Please send me my data.")
    answer = client.post(path, data=fields)
    assert answer.status_code == 303, answer.text[:300]
    location = answer.headers["location"]
    found = REFERENCE.search(client.get(location).text)
    assert found, "no reference on the confirmation page"
    return found[0], location

"""`policy-site serve`: a real server process with the site, the form and the worker."""

from __future__ import annotations

import email
import email.policy
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2 as httpx
import pytest
from web_support import ROOT, SECRET, built_site, verify_link

from form_service.settings import secret_bits


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A clean environment: nothing POLICY_* leaks in from the one running the tests."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLICY_")}
    env.update({
        "POLICY_VAR_DIR": str(tmp_path / "var"),
        "POLICY_SECRET_KEY": SECRET,
        "POLICY_SITE_DIR": str(built_site()),
    })
    env.update(extra)
    return {k: v for k, v in env.items() if v}


def _command(port: int) -> list[str]:
    return [sys.executable, "-m", "form_service.cli", "serve", "--port", str(port)]


@contextmanager
def _server(env: dict[str, str], logs: list[str] | None = None) -> Iterator[str]:
    """Run `policy-site serve` until /healthz answers; stop it with Ctrl+C afterwards.

    `logs` receives everything the server printed, once it has stopped."""
    port = _free_port()
    process = subprocess.Popen(_command(port), env=env, cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.communicate()[0]
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start in 30 s"
            time.sleep(0.1)
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        try:
            output = process.communicate(timeout=15)[0]
        except subprocess.TimeoutExpired:
            process.kill()
            output = process.communicate()[0]
        if logs is not None:
            logs.append(output)
    assert process.returncode == 0, output
    assert "Traceback" not in output, output


def test_serve_runs_the_site_and_the_form(tmp_path: Path) -> None:
    """One process serves the policy pages, the form (a full submission) and our 404 page,
    and the e-mail's link points at the port it was started on."""
    logs: list[str] = []
    with _server(_env(tmp_path), logs) as base, httpx.Client(base_url=base) as client:
        home = client.get("/")
        assert home.status_code == 200 and "konfidencialitātes politika" in home.text
        assert "content-security-policy" in home.headers
        form = client.get("/en/request/?type=access")
        assert form.status_code == 200
        hidden = dict(re.findall(r'name="([a-z_]+)" value="([^"]*)"', form.text))
        response = client.post("/en/request/", headers={"Origin": base}, data={
            "csrf_token": hidden["csrf_token"], "form_token": hidden["form_token"],
            "name": "Anna", "email": "anna@example.lv", "request_type": "access",
            "details": "Please send me my data.",
        })
        assert response.status_code == 303
        confirmation = response.headers["location"]
        assert client.get(confirmation).status_code == 200
        reference = re.search(r"PO-[0-9A-Z]{4}-[0-9A-Z]{4}", client.get(confirmation).text)[0]
        link = verify_link(reference)
        assert client.get(link).status_code == 200
        missing = client.get("/no/such/page/")
        assert missing.status_code == 404 and "Lapa nav atrasta" in missing.text
        assert missing.headers["x-content-type-options"] == "nosniff"
        assert "server" not in response.headers
    # The worker ran in the same process: the verification e-mail is in the Maildir, and
    # its link is on the port this server listens on (POLICY_BASE_URL follows --port).
    [mail] = list((tmp_path / "var" / "maildir" / "new").iterdir())
    message = email.message_from_bytes(mail.read_bytes(), policy=email.policy.default)
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert f"{base}/request/verify/" in body
    # The access log shows the requests, but neither link's token (form_service/web/logs.py).
    [output] = logs
    assert '"GET /request/verify/… HTTP/1.1" 200' in output
    assert '"GET /en/request/sent/… HTTP/1.1" 200' in output
    for token in (link.rsplit("/", 1)[1], confirmation.rsplit("/", 1)[1]):
        assert token not in output


def test_serve_builds_the_site_when_it_is_missing(tmp_path: Path) -> None:
    """Without site/versions.json the site is built first, then served."""
    site_dir = tmp_path / "site"
    with _server(_env(tmp_path, POLICY_SITE_DIR=str(site_dir))) as base:
        assert httpx.get(f"{base}/versions.json").status_code == 200
    assert (site_dir / "versions.json").is_file()


def _start_fails(tmp_path: Path, **env: str) -> str:
    result = subprocess.run(_command(_free_port()), env=_env(tmp_path, **env), cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_missing_secret_in_production_is_one_sentence(tmp_path: Path) -> None:
    """An https base URL without POLICY_SECRET_KEY stops with one sentence naming it."""
    line = _start_fails(tmp_path, POLICY_BASE_URL="https://privacy.example.lv",
                        POLICY_SECRET_KEY="")
    assert "POLICY_SECRET_KEY" in line


@pytest.mark.parametrize("key", ["short", "x" * 100, "0123456789abcdef" * 3,
                                 "live-service-test-secret-key-0123456789"])
def test_a_weak_secret_key_is_refused_at_start(tmp_path: Path, key: str) -> None:
    """POLICY_SECRET_KEY must carry 256 bits: a short, repetitive or 192-bit key stops
    the service with one sentence that says how to make a good one."""
    line = _start_fails(tmp_path, POLICY_BASE_URL="https://privacy.example.lv",
                        POLICY_SECRET_KEY=key)
    assert "POLICY_SECRET_KEY" in line and "policy-site secret" in line
    assert key not in line


def test_policy_site_secret_prints_a_key_the_service_accepts() -> None:
    """`policy-site secret` prints only a fresh 256-bit key, different each time."""
    keys = {subprocess.run([sys.executable, "-m", "form_service.cli", "secret"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout for _ in range(2)}
    assert len(keys) == 2
    for key in keys:
        assert key.endswith("\n") and key.count("\n") == 1
        assert secret_bits(key.strip()) >= 256


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"POLICY_DATABASE_URL": "postgresql+psycopg://admin:hunter2@127.0.0.1:1/x"},
         "POLICY_DATABASE_URL"),
        ({"POLICY_TRUSTED_PROXIES": "10.0.0.0/8,the-proxy"}, "POLICY_TRUSTED_PROXIES"),
        ({"POLICY_RATE_LIMIT_PER_IP": "many"}, "POLICY_RATE_LIMIT_PER_IP"),
        ({"POLICY_LOG_FORMAT": "xml"}, "POLICY_LOG_FORMAT"),
        ({"POLICY_SMTPUTF8": "perhaps"}, "POLICY_SMTPUTF8"),
        ({"POLICY_HEADER_TIMEOUT_SECONDS": "0"}, "POLICY_HEADER_TIMEOUT_SECONDS"),
        ({"POLICY_DATABASE_TIMEOUT_SECONDS": "soon"}, "POLICY_DATABASE_TIMEOUT_SECONDS"),
        ({"POLICY_MIN_FREE_MB": "0"}, "POLICY_MIN_FREE_MB"),
    ],
)
def test_bad_setting_is_one_sentence(tmp_path: Path, env: dict[str, str], named: str) -> None:
    """A setting the service cannot use stops it with one sentence naming the variable."""
    line = _start_fails(tmp_path, **env)
    assert named in line
    assert "hunter2" not in line

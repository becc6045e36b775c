"""The production topology of deploy/, run for real on loopback: Caddy with the shipped
Caddyfile in front of several `policy-site serve` on one fresh PostgreSQL database and
Redis, with mail to an aiosmtpd server. Used by tests/test_topology.py and
bench/topology.py.

Caddy runs with `tls internal`: its own CA, written under this run's folder
(XDG_DATA_HOME), which the clients here trust explicitly (`ssl_context`).
Nothing is installed into the system's trust store and nothing leaves the machine.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
import psycopg
from live_service import LiveService
from site_tree import ROOT as DEFAULT_ROOT
from smtp_server import free_port

from form_service.publish import publish
from site_config.build_site import build_site

CADDYFILE = DEFAULT_ROOT / "deploy" / "Caddyfile"
PG_HOST, PG_PORT, PG_ADMIN_DB, PG_USERS = "127.0.0.1", 5432, "test", ("postgres", "root")
REDIS_URL = "redis://127.0.0.1:6379"


@dataclass
class Caddy:
    """`caddy run` on the shipped Caddyfile; every path and port through its placeholders."""

    work: Path
    site_dir: Path
    headers_file: Path
    upstreams: list[str]
    read_header_timeout: str = "10s"
    https_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def root_ca(self) -> Path:
        return self.work / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"

    @property
    def log(self) -> Path:
        return self.work / "caddy.log"

    def env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            # Caddy keeps its CA, certificates and autosaved config under these.
            "HOME": str(self.work / "home"),
            "XDG_DATA_HOME": str(self.work / "data"),
            "XDG_CONFIG_HOME": str(self.work / "config"),
            "CADDY_ADMIN": f"127.0.0.1:{free_port()}",
            "POLICY_SITE_ADDRESS": self.base_url,
            "POLICY_TLS": "internal",
            "POLICY_BIND": "127.0.0.1",
            "POLICY_HTTP_PORT": str(free_port()),
            "POLICY_HTTPS_PORT": str(self.https_port),
            "POLICY_SITE_DIR": str(self.site_dir),
            "POLICY_SITE_HEADERS": str(self.headers_file),
            "POLICY_UPSTREAMS": " ".join(self.upstreams),
            "POLICY_HEALTH_INTERVAL": "1s",
            "POLICY_READ_HEADER_TIMEOUT": self.read_header_timeout,
        }

    def start(self, timeout: float = 30) -> None:
        caddy = shutil.which("caddy")
        if caddy is None:
            raise RuntimeError("caddy is not installed: run `make caddy` (Debian's package)")
        self.work.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [caddy, "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
                env=self.env(), stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"caddy exited at start: {self.log.read_text()}")
            if self.root_ca.is_file():
                try:
                    with httpx2.Client(verify=self.ssl_context(), timeout=2) as client:
                        if client.get(self.base_url + "/versions.json").status_code == 200:
                            return
                except (httpx2.HTTPError, ssl.SSLError):
                    pass
            time.sleep(0.1)
        raise RuntimeError(f"caddy did not serve the site in time: {self.log.read_text()}")

    def ssl_context(self) -> ssl.SSLContext:
        """Trusts Caddy's local CA and nothing else: the certificate chain is checked."""
        return ssl.create_default_context(cafile=str(self.root_ca))

    def client(self, source: str | None = None, **options: object) -> httpx2.Client:
        """A client of the public address, connecting from `source` (any 127.x address)."""
        transport = httpx2.HTTPTransport(verify=self.ssl_context(), local_address=source)
        options.setdefault("timeout", 15)
        return httpx2.Client(base_url=self.base_url, transport=transport, **options)  # type: ignore[arg-type]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextlib.contextmanager
def fresh_postgres() -> Iterator[str]:
    """A new, empty PostgreSQL database for one topology, dropped afterwards."""
    admin, user, errors = None, "", []
    for user in PG_USERS:
        try:
            admin = psycopg.connect(host=PG_HOST, port=PG_PORT, user=user, dbname=PG_ADMIN_DB,
                                    autocommit=True, connect_timeout=5)
            break
        except psycopg.OperationalError as exc:
            errors.append(str(exc).strip())
    if admin is None:
        raise RuntimeError(f"PostgreSQL is not reachable on {PG_HOST}:{PG_PORT} "
                           f"(start it with `make services`): {errors}")
    name = f"topology_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql://{user}@{PG_HOST}:{PG_PORT}/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def published_site(work: Path) -> tuple[Path, Path]:
    """The site as the daily rebuild leaves it: built, compressed, its headers written."""
    site_dir = build_site(DEFAULT_ROOT, work / "site")
    headers = work / "site-headers.caddy"
    publish(site_dir, headers)
    return site_dir, headers


def run_migrate(env: dict[str, str]) -> str:
    """`policy-site migrate`, once, before any instance starts (as deploy/ does)."""
    done = subprocess.run(
        [sys.executable, "-m", "form_service.cli", "--root", str(DEFAULT_ROOT), "migrate"],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=120, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"policy-site migrate failed: {done.stderr}")
    return done.stdout.strip()


@dataclass
class Topology:
    caddy: Caddy
    instances: list[LiveService]
    database_url: str
    secret_key: str

    @property
    def base_url(self) -> str:
        return self.caddy.base_url


@contextlib.contextmanager
def topology(work: Path, *, instances: int, smtp_url: str, site: tuple[Path, Path] | None = None,
             read_header_timeout: str = "10s", **env: str) -> Iterator[Topology]:
    """Caddy in front of `instances` services sharing one fresh PostgreSQL and Redis."""
    site_dir, headers = site or published_site(work)
    secret_key = secrets.token_urlsafe(32)  # 256 bits, as production requires
    https_port = free_port()
    with fresh_postgres() as database_url:
        shared = {
            "POLICY_BASE_URL": f"https://127.0.0.1:{https_port}",
            "POLICY_SECRET_KEY": secret_key,
            "POLICY_DATABASE_URL": database_url,
            "POLICY_RATE_LIMIT_STORAGE": REDIS_URL,
            # Counts of this run only: nothing left in Redis by another run is shared.
            "POLICY_RATE_LIMIT_KEY_PREFIX": f"topology-{uuid.uuid4().hex[:8]}",
            # Caddy connects from loopback: its X-Forwarded-For is believed, no one else's.
            "POLICY_TRUSTED_PROXIES": "127.0.0.1/32",
            **env,
        }
        run_migrate(shared)
        services = [LiveService(work / f"var{i}", site_dir, smtp_url, **shared)
                    for i in range(instances)]
        caddy = Caddy(work / "caddy", site_dir, headers,
                      [f"127.0.0.1:{s.port}" for s in services],
                      read_header_timeout=read_header_timeout, https_port=https_port)
        try:
            for service in services:
                service.start()
            caddy.start()
            yield Topology(caddy, services, database_url, secret_key)
        finally:
            caddy.stop()
            for service in services:
                service.stop()

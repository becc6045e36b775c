"""Load on the request form: the real service against a bare insert-only app.

For each level of concurrency (1, 8, 32 clients by default) this script starts
a fresh server process, warms it up, and has that many asyncio clients (one
httpx2.AsyncClient, so one keep-alive connection, each) send a fixed number of
valid submissions in total on loopback. It runs three kinds of load:

  service-post  `policy-site serve` (uvicorn, SQLite, mail to a Maildir, the
                delivery worker running). Each client GETs all its forms first
                (CSRF cookie, hidden tokens), then only the POSTs of the valid
                submissions are timed. The targets compare this with bare.
  service       the same server, each submission as a browser makes it: GET the
                form, then POST it. Throughput counts whole submissions (GET +
                POST) per second, for information; latency is the POST's and,
                apart, the GET's.
  bare          a minimal Starlette app defined below, under the same uvicorn
                settings: one endpoint that parses the same urlencoded fields
                and inserts the same `requests` row with form_service's own
                engine setup (SQLite, WAL, synchronous=FULL, busy_timeout,
                BEGIN IMMEDIATE) through run_in_threadpool. No CSRF, no forms,
                no history rows, no outbox.

Every run is repeated --repeat times (on a new server each time) and the
medians are printed: requests/s, p50/p99 latency in ms, and the server's peak
RSS (VmHWM from /proc at the end of the run), and for the service how long
after the last POST its e-mails were all sent (the worker gives way to
customers, form_service/web/activity.py). Then PASS/FAIL for the targets
"service-post >= 0.7 x bare throughput" and "service-post p99 < 50 ms at 32
clients".
When a target is missed (or with --profile always) one more service run at
the highest level is made under cProfile (main thread and worker threads
apart), and its hot spots are printed.

    .venv/bin/python bench/form_load.py                          # 300 per level, 3 repeats
    .venv/bin/python bench/form_load.py --requests 60 --repeat 1 # quick look

Everything runs on 127.0.0.1 in a temporary folder that is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pstats
import random
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# As in tests/live_service.py: the form's hidden fields and a request's reference.
HIDDEN = re.compile(r'<input type="hidden" name="(?P<name>[a-z_]+)" value="(?P<value>[^"]*)">')
REFERENCE = re.compile(r"PO-[0-9A-Z]{4}-[0-9A-Z]{4}")
FORM_PATH = "/en/request/"
SENT_PATH = "/en/request/sent/"
DETAILS = "Please send me a copy of all the personal data you hold about me."
SECRET = "bench-form-load-secret-key-0123456789-abcdefghij"  # noqa: S105 (a benchmark's)
PROJECT_DIRS = ("form_service", "site_config")
TARGET_RATIO = 0.7
TARGET_P99_MS = 50.0
# The issue's "posts valid submissions ... and the same against a bare endpoint":
# the service's POSTs against the bare POSTs.
TARGET_KIND = "service-post"


# --- servers -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def site_dir() -> Path:
    """The project's built site (the service serves it; the benchmark does not fetch it)."""
    built = ROOT / "site"
    if (built / "versions.json").is_file():
        return built
    raise SystemExit("site/ is not built: run `.venv/bin/policy-site build` first.")


def service_env(var_dir: Path, base_url: str, **extra: str) -> dict[str, str]:
    """The service's settings, as tests/live_service.py sets them, with limits raised."""
    return {
        **os.environ,
        "NO_MKDOCS_2_WARNING": "1",
        "POLICY_VAR_DIR": str(var_dir),
        "POLICY_SITE_DIR": str(site_dir()),
        "POLICY_BASE_URL": base_url,
        "POLICY_SECRET_KEY": SECRET,
        "POLICY_STAFF_EMAIL": "staff@pulkstenu-outlets.lv",
        "POLICY_MAIL_FROM": "privacy@pulkstenu-outlets.lv",
        "POLICY_RATE_LIMIT_PER_IP": "10000000/hour",
        **extra,
    }


@dataclass
class Server:
    kind: str
    proc: subprocess.Popen[bytes]
    base_url: str
    database: Path
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def peak_rss_mib(self) -> float:
        """VmHWM: the most resident memory the process has had so far."""
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return float("nan")
        match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
        return int(match[1]) / 1024 if match else float("nan")

    def cpu_seconds(self) -> float:
        """User + system CPU time the process (all its threads) has used so far."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        # utime and stime are fields 14 and 15 of stat(5); [0] here is field 3.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        """SIGINT: uvicorn shuts down cleanly (and a profiled server writes its profile)."""
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited at start:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 (loopback)
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"the server did not answer {url} within {timeout} s")


def start_service(workdir: Path, *, profile: Path | None = None, timeout: float = 60,
                  **extra_env: str) -> Server:
    """`python -m form_service.cli serve`, as tests/live_service.py starts it.

    With `profile`, the same command runs under this script's cProfile wrapper
    (the flag exists only on the benchmark's command line, not in the project).
    """
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    var_dir = workdir / "var"
    var_dir.mkdir(parents=True, exist_ok=True)
    env = service_env(var_dir, base_url, **extra_env)
    cli = ["--project", str(ROOT), "serve", "--host", "127.0.0.1", "--port", str(port)]
    if profile is None:
        command = [sys.executable, "-m", "form_service.cli", *cli]
    else:
        command = [sys.executable, str(Path(__file__).resolve()), "_profiled", str(profile),
                   "--", *cli]
    log = workdir / "service.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                cwd=workdir)
    _wait_ready(proc, base_url + "/healthz", log, timeout)
    return Server("service", proc, base_url, var_dir / "requests.sqlite3", log)


def start_bare(workdir: Path, timeout: float = 60) -> Server:
    port = free_port()
    database = workdir / "bare.sqlite3"
    log = workdir / "bare.log"
    command = [sys.executable, str(Path(__file__).resolve()), "_bare", "--port", str(port),
               "--database-url", f"sqlite:///{database}"]
    with log.open("ab") as out:
        proc = subprocess.Popen(command, env={**os.environ}, stdout=out,
                                stderr=subprocess.STDOUT, cwd=workdir)
    base_url = f"http://127.0.0.1:{port}"
    _wait_ready(proc, base_url + "/ready", log, timeout)
    return Server("bare", proc, base_url, database, log)


# --- the bare baseline (runs in its own process: `form_load.py _bare`) -------------------


def bare_app(database_url: str) -> Any:
    """One endpoint that stores the submitted fields as a `requests` row, nothing else.

    The engine is form_service.db's (the same pragmas, BEGIN IMMEDIATE for the
    write) and the schema is the project's migrations, so the insert costs what
    it costs the service; the row is the one the service writes for a request.
    /ready exists only so that the benchmark knows when the server listens.
    """
    import datetime as dt
    import uuid

    from sqlalchemy.orm import sessionmaker
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request as HttpRequest
    from starlette.responses import PlainTextResponse, RedirectResponse, Response
    from starlette.routing import Route

    from form_service import db
    from form_service.deadlines import due_date
    from form_service.models import Request
    from form_service.references import new_reference

    engine = db.create(database_url)
    db.migrate(engine)
    writes = sessionmaker(db.writer(engine), expire_on_commit=False)

    def insert(values: dict[str, Any]) -> str:
        with writes.begin() as session:
            session.add(Request(**values))
        return str(values["reference"])

    async def submit(request: HttpRequest) -> Response:
        form = await request.form(max_files=0, max_fields=50)
        now = dt.datetime.now(dt.UTC)
        due = due_date(now)
        values = {
            "reference": new_reference(),
            "submission_id": uuid.uuid4().hex,
            "request_type": str(form["request_type"]),
            "name": str(form["name"]),
            "email": str(form["email"]),
            "phone": str(form.get("phone") or "") or None,
            "order_number": str(form.get("order_number") or "") or None,
            "details": str(form["details"]),
            "language": "en",
            "policy_version": "1.0",
            "policy_sha256": "0" * 64,
            "policy_language": "en",
            "policy_viewed_at": now,
            "submitted_at": now,
            "verified_at": None,
            "due_at": due,
            "original_due_at": due,
            "extended_months": 0,
            "status": "unverified",
        }
        reference = await run_in_threadpool(insert, values)
        return RedirectResponse(f"{SENT_PATH}{reference}", status_code=303)

    async def ready(request: HttpRequest) -> Response:
        return PlainTextResponse("ok\n")

    return Starlette(routes=[Route(FORM_PATH, submit, methods=["POST"]),
                             Route("/ready", ready)])


def bare_main(argv: Sequence[str]) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(prog="form_load.py _bare")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url", required=True)
    args = parser.parse_args(argv)
    # The same uvicorn settings as form_service/serve.py (access log included).
    uvicorn.run(bare_app(args.database_url), host="127.0.0.1", port=args.port,
                proxy_headers=False, server_header=False, log_level="info")
    return 0


# --- the profiled service (runs in its own process: `form_load.py _profiled OUT -- ...`) --


def profiled_main(argv: Sequence[str]) -> int:
    """form_service.cli.main(argv) under cProfile: one profile for the main thread (the
    event loop) and one merging every other thread (run_in_threadpool, asyncio.to_thread),
    written to OUT.main.prof and OUT.threads.prof when the server stops."""
    import cProfile
    import threading

    out, argv = argv[0], list(argv[1:])
    if argv and argv[0] == "--":
        argv = argv[1:]
    finished: list[cProfile.Profile] = []
    lock = threading.Lock()
    original = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]

    def profiled_bootstrap(self: threading.Thread) -> None:
        profile = cProfile.Profile()
        profile.enable()
        try:
            original(self)
        finally:
            profile.disable()
            with lock:
                finished.append(profile)

    threading.Thread._bootstrap_inner = profiled_bootstrap  # type: ignore[attr-defined]
    from form_service.cli import main

    profile = cProfile.Profile()
    profile.enable()
    try:
        status = main(argv)
    except KeyboardInterrupt:
        status = 130
    finally:
        profile.disable()
        profile.dump_stats(f"{out}.main.prof")
        for thread in threading.enumerate():
            if thread is not threading.current_thread() and not thread.daemon:
                thread.join(timeout=5)
        with lock:
            profiles = list(finished)
        if profiles:
            merged = pstats.Stats(profiles[0])
            for other in profiles[1:]:
                merged.add(other)
            merged.dump_stats(f"{out}.threads.prof")
    return status


def _where(key: tuple[str, int, str]) -> str:
    filename, line, function = key
    if filename == "~":
        return function  # a built-in
    path = Path(filename)
    with contextlib.suppress(ValueError):
        return f"{path.relative_to(ROOT)}:{line}:{function}"
    parts = path.parts
    if "site-packages" in parts:
        return f"{'/'.join(parts[parts.index('site-packages') + 1:])}:{line}:{function}"
    return f"{path.name}:{line}:{function}"


def hot_spots(prof_file: Path, *, top: int = 25, project_top: int = 20) -> str:
    """The functions that take the most time: overall by own time and by cumulative
    time, and the project's own functions by cumulative time."""
    stats = pstats.Stats(str(prof_file))
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = [(key, nc, tt, ct) for key, (_cc, nc, tt, ct, _callers) in raw.items()]
    lines = [f"{prof_file.name}: {total:.2f} s of profiled time"]

    def table(title: str, chosen: list[tuple[tuple[str, int, str], int, float, float]]) -> None:
        lines.append(f"  {title}")
        lines.append(f"    {'cum s':>8} {'own s':>8} {'calls':>9}  function")
        for key, nc, tt, ct in chosen:
            lines.append(f"    {ct:8.3f} {tt:8.3f} {nc:9d}  {_where(key)}")

    table(f"top {top} by own time (tottime)",
          sorted(rows, key=lambda r: r[2], reverse=True)[:top])
    table(f"top {top} by cumulative time",
          sorted(rows, key=lambda r: r[3], reverse=True)[:top])
    ours = [r for r in rows if any(f"/{d}/" in r[0][0] for d in PROJECT_DIRS)
            and str(ROOT) in r[0][0]]
    table(f"project functions (form_service/, site_config/), top {project_top} by cumulative",
          sorted(ours, key=lambda r: r[3], reverse=True)[:project_top])
    by_part: dict[str, float] = {}
    for key, _nc, tt, _ct in rows:
        part = _component(key)
        by_part[part] = by_part.get(part, 0.0) + tt
    lines.append("  own time by component (waits are their own lines)")
    for part, tt in sorted(by_part.items(), key=lambda item: item[1], reverse=True)[:top]:
        lines.append(f"    {tt:8.3f}  {part}")
    return "\n".join(lines)


# Built-ins that are waiting, not working: shown apart in the component table.
_WAITS = {
    "<method 'poll' of 'select.epoll' objects>": "WAIT event loop idle (epoll)",
    "<method 'acquire' of '_thread.lock' objects>": "WAIT thread lock (idle pool "
                                                     "threads, pool checkout)",
    "<method 'get' of '_queue.SimpleQueue' objects>": "WAIT idle executor threads",
    "<method 'execute' of 'sqlite3.Cursor' objects>": "sqlite3 execute (SQL work and "
                                                      "busy_timeout sleeps for the lock)",
    "<method 'commit' of 'sqlite3.Connection' objects>": "sqlite3 commit (WAL write, fsync)",
    "<built-in method posix.fsync>": "fsync (Maildir)",
}


def _component(key: tuple[str, int, str]) -> str:
    """Which part of the stack a function belongs to: a wait, a package, a project file."""
    filename, _line, function = key
    if filename == "~":
        return _WAITS.get(function, f"built-in {function}")
    path = Path(filename)
    parts = path.parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].removesuffix(".py")
    with contextlib.suppress(ValueError):
        return str(path.relative_to(ROOT))
    if path.parent.name in ("email", "asyncio", "concurrent", "json", "importlib"):
        return f"stdlib {path.parent.name}"
    return f"stdlib {path.name}"


# --- the load ------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between the closest ranks (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    if len(sorted_values) == 1:
        return sorted_values[0]
    position = (len(sorted_values) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


# --one-email: every submission from one address (a diagnostic: the rate limiter's
# in-memory store then holds one per-address key instead of one per submission).
ONE_EMAIL: list[str] = []


def submission(client_id: int, n: int, hidden: dict[str, str] | None = None) -> dict[str, str]:
    """The fields a customer sends; the bare app gets the same ones (tokens included).

    Each submission has its own e-mail address, as different customers would."""
    fields = {
        "csrf_token": "x" * 120,
        "form_token": "x" * 200,
        "name": f"Client {client_id}-{n}",
        "email": ONE_EMAIL[0] if ONE_EMAIL else f"c{client_id}-{n}@example.lv",
        "request_type": "access",
        "details": DETAILS,
        "phone": "",
        "order_number": "",
        "subject": "",
    }
    if hidden:
        fields.update(hidden)
    return fields


def new_client(base_url: str) -> Any:
    """One client, one keep-alive connection. Plain HTTP: verify=False spares building a
    TLS context with the CA bundle (17 ms of CPU per client), which would be no use."""
    import httpx2

    return httpx2.AsyncClient(
        base_url=base_url, timeout=60, follow_redirects=False, verify=False,
        limits=httpx2.Limits(max_connections=1, max_keepalive_connections=1),
        # A browser's POST carries Origin; the service refuses one without it.
        headers={"Origin": base_url},
    )


@dataclass
class RunResult:
    kind: str
    level: int
    requests: int
    seconds: float
    post_ms: list[float]
    get_ms: list[float]
    errors: int
    peak_rss_mib: float
    cpu_seconds: float  # the server's, during the measured part
    client_cpu_seconds: float  # this (benchmark) process's, during the measured part
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else float("nan")

    @property
    def cpu_ms(self) -> float:
        """Server CPU per submission (for service: GET + POST; service-post: GET + POST,
        the GETs made before the timed part included)."""
        return self.cpu_seconds * 1000 / self.requests if self.requests else float("nan")

    @property
    def client_cpu_ms(self) -> float:
        return self.client_cpu_seconds * 1000 / self.requests if self.requests else float("nan")

    @property
    def with_mail_rate(self) -> float:
        """Submissions per second counting until their e-mails were sent, too."""
        drain = self.extra.get("mail_drain_s")
        if drain is None or self.requests == 0:
            return float("nan")
        return self.requests / (self.seconds + drain)

    def p(self, q: float, which: str = "post") -> float:
        values = sorted(self.post_ms if which == "post" else self.get_ms)
        return percentile(values, q)


class Budget:
    """How many submissions are left to make, shared by the clients of one run."""

    def __init__(self, count: int, deadline: float) -> None:
        self.left = count
        self.deadline = deadline

    def take(self) -> bool:
        if self.left <= 0 or time.monotonic() > self.deadline:
            return False
        self.left -= 1
        return True


def _is_sent(answer: Any) -> bool:
    return answer.status_code == 303 and SENT_PATH in answer.headers.get("location", "")


async def _get_form(client: Any, client_id: int, n: int) -> tuple[dict[str, str], float]:
    started = time.perf_counter()
    page = await client.get(FORM_PATH, params={"type": "access"})
    elapsed = (time.perf_counter() - started) * 1000
    hidden = {m["name"]: m["value"] for m in HIDDEN.finditer(page.text)}
    if page.status_code != 200 or "form_token" not in hidden:
        raise RuntimeError(f"GET {FORM_PATH} answered {page.status_code}")
    return submission(client_id, n, hidden), elapsed


async def _post(client: Any, fields: dict[str, str]) -> tuple[bool, float]:
    started = time.perf_counter()
    answer = await client.post(FORM_PATH, data=fields)
    elapsed = (time.perf_counter() - started) * 1000
    return _is_sent(answer), elapsed


async def _client_cycles(client: Any, client_id: int, budget: Budget, post_ms: list[float],
                         get_ms: list[float], errors: list[str], *, with_get: bool) -> None:
    """One customer after another on one connection: GET the form, POST it (or POST only)."""
    n = 0
    while budget.take():
        n += 1
        try:
            if with_get:
                fields, got = await _get_form(client, client_id, n)
                get_ms.append(got)
            else:
                fields = submission(client_id, n)
            ok, took = await _post(client, fields)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            continue
        if ok:
            post_ms.append(took)
        else:
            errors.append("POST was not answered with 303 to the confirmation page")


async def run_cycles(base_url: str, level: int, count: int, *, with_get: bool,
                     time_limit: float) -> tuple[float, list[float], list[float], list[str]]:
    """`level` clients share `count` submissions; the clients are made before the clock
    starts (their connections are opened by the first request, inside it)."""
    post_ms: list[float] = []
    get_ms: list[float] = []
    errors: list[str] = []
    clients = [new_client(base_url) for _ in range(level)]
    try:
        budget = Budget(count, time.monotonic() + time_limit)
        started = time.perf_counter()
        await asyncio.gather(*(
            _client_cycles(client, c, budget, post_ms, get_ms, errors, with_get=with_get)
            for c, client in enumerate(clients)
        ))
        seconds = time.perf_counter() - started
    finally:
        for client in clients:
            await client.aclose()
    return seconds, post_ms, get_ms, errors


async def run_prefetched(base_url: str, level: int, count: int, *, time_limit: float,
                         on_start: Callable[[], None] = lambda: None,
                         ) -> tuple[float, list[float], list[float], list[str]]:
    """Every client GETs all its forms first; then only the POSTs are timed (and
    `on_start` is called just before them, to take the CPU readings)."""
    post_ms: list[float] = []
    get_ms: list[float] = []
    errors: list[str] = []
    shares = [count // level + (1 if c < count % level else 0) for c in range(level)]
    clients = [new_client(base_url) for _ in range(level)]
    deadline = time.monotonic() + time_limit
    try:
        async def fetch(c: int) -> list[dict[str, str]]:
            forms = []
            for n in range(1, shares[c] + 1):
                if time.monotonic() > deadline:
                    break
                fields, got = await _get_form(clients[c], 1000 + c, n)
                get_ms.append(got)
                forms.append(fields)
            return forms

        forms = await asyncio.gather(*(fetch(c) for c in range(level)))

        async def post_all(c: int) -> None:
            for fields in forms[c]:
                if time.monotonic() > deadline:
                    break
                try:
                    ok, took = await _post(clients[c], fields)
                except Exception as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                if ok:
                    post_ms.append(took)
                else:
                    errors.append("POST was not answered with 303 to the confirmation page")

        on_start()
        started = time.perf_counter()
        await asyncio.gather(*(post_all(c) for c in range(level)))
        seconds = time.perf_counter() - started
    finally:
        for client in clients:
            await client.aclose()
    return seconds, post_ms, get_ms, errors


def count_rows(database: Path, query: str) -> int | None:
    try:
        with contextlib.closing(sqlite3.connect(database, timeout=10)) as conn:
            return int(conn.execute(query).fetchone()[0])
    except sqlite3.Error:
        return None


async def run_open(base_url: str, connections: int, rate: float, count: int, *,
                   with_forms: bool, time_limit: float,
                   on_start: Callable[[], None] = lambda: None,
                   ) -> tuple[float, list[float], list[float], list[str]]:
    """Open loop: `count` submissions arrive at `rate` per second (Poisson, fixed seed),
    each sent on whichever of `connections` keep-alive connections is free.

    Latency runs from the moment a submission arrives, so time spent waiting for a
    free connection counts (no coordinated omission). With forms, each connection
    GETs its share of forms first, untimed, as in service-post.
    """
    post_ms: list[float] = []
    get_ms: list[float] = []
    errors: list[str] = []
    clients = [new_client(base_url) for _ in range(connections)]
    # Connections are not used evenly; each gets twice its even share of forms.
    share = 2 * (count // connections + 1)
    forms: list[list[dict[str, str]]] = [[] for _ in clients]
    try:
        async def fetch(c: int) -> None:
            for n in range(1, share + 1):
                if with_forms:
                    fields, got = await _get_form(clients[c], 1000 + c, n)
                    get_ms.append(got)
                else:
                    fields = submission(1000 + c, n)
                forms[c].append(fields)

        await asyncio.gather(*(fetch(c) for c in range(connections)))
        free: asyncio.Queue[int] = asyncio.Queue()
        for c in range(connections):
            free.put_nowait(c)

        async def one(arrived: float) -> None:
            c = await free.get()
            try:
                if not forms[c]:
                    errors.append("a connection ran out of prefetched forms")
                    return
                ok, _took = await _post(clients[c], forms[c].pop())
                if ok:
                    post_ms.append((time.perf_counter() - arrived) * 1000)
                else:
                    errors.append("POST was not answered with 303 to the confirmation page")
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
            finally:
                free.put_nowait(c)

        gaps = random.Random(7)  # noqa: S311 (arrival times, not secrets)
        on_start()
        started = time.perf_counter()
        arrival = started
        tasks = []
        for _ in range(count):
            arrival += gaps.expovariate(rate)
            if arrival - started > time_limit:
                break
            await asyncio.sleep(max(0.0, arrival - time.perf_counter()))
            tasks.append(asyncio.create_task(one(arrival)))
        await asyncio.gather(*tasks)
        seconds = time.perf_counter() - started
    finally:
        for client in clients:
            await client.aclose()
    return seconds, post_ms, get_ms, errors


PENDING_MAIL = "SELECT count(*) FROM outbox WHERE status = 'pending'"


def wait_for_mail(database: Path, time_limit: float) -> float:
    """Seconds until the service has sent every e-mail the run caused (NaN: not in time).

    The worker gives way while customers are served (form_service/web/activity.py), so
    the e-mails of a burst go out after it; this is what that costs.
    """
    started = time.perf_counter()
    while time.perf_counter() - started < time_limit:
        if count_rows(database, PENDING_MAIL) == 0:
            return time.perf_counter() - started
        time.sleep(0.05)
    return float("nan")


def one_run(kind: str, level: int, count: int, warmup: int, time_limit: float,
            workdir: Path, profile: Path | None = None, open_rate: float | None = None,
            ) -> RunResult:
    run_dir = Path(tempfile.mkdtemp(prefix=f"{kind}-{level}-", dir=workdir))
    server = start_bare(run_dir) if kind == "bare" else start_service(run_dir, profile=profile)
    try:
        with_get = kind == "service"
        if warmup:
            asyncio.run(run_cycles(server.base_url, min(level, warmup), warmup,
                                   with_get=kind != "bare", time_limit=time_limit))
        readings = {"cpu": server.cpu_seconds(), "client": time.process_time()}

        def take_readings() -> None:
            readings.update(cpu=server.cpu_seconds(), client=time.process_time())

        if open_rate is not None:
            seconds, post_ms, get_ms, errors = asyncio.run(
                run_open(server.base_url, level, open_rate, count, with_forms=kind != "bare",
                         time_limit=time_limit, on_start=take_readings))
        elif kind == "service-post":
            seconds, post_ms, get_ms, errors = asyncio.run(
                run_prefetched(server.base_url, level, count, time_limit=time_limit,
                               on_start=take_readings))
        else:
            seconds, post_ms, get_ms, errors = asyncio.run(
                run_cycles(server.base_url, level, count, with_get=with_get,
                           time_limit=time_limit))
        cpu = server.cpu_seconds() - readings["cpu"]
        client_cpu = time.process_time() - readings["client"]
        rss = server.peak_rss_mib()
        extra: dict[str, Any] = {"first_error": errors[0] if errors else None}
        if kind != "bare":
            extra["mail_backlog"] = count_rows(server.database, PENDING_MAIL)
            extra["mail_drain_s"] = wait_for_mail(server.database, time_limit)
        extra["stored"] = count_rows(server.database, "SELECT count(*) FROM requests")
    finally:
        server.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
    return RunResult(kind, level, len(post_ms), seconds, post_ms, get_ms, len(errors), rss,
                     cpu, client_cpu, extra)


# --- report --------------------------------------------------------------------------


@dataclass
class Summary:
    kind: str
    level: int
    rate: float
    p50: float
    p99: float
    get_p50: float
    get_p99: float
    rss: float
    cpu_ms: float
    client_cpu_ms: float
    errors: int
    backlog: float
    drain_s: float
    with_mail_rate: float
    runs: int


def summarise(results: list[RunResult]) -> Summary:
    def med(f: Callable[[RunResult], float]) -> float:
        values = [f(r) for r in results]
        values = [v for v in values if v == v]  # drop NaN
        return statistics.median(values) if values else float("nan")

    backlogs = [r.extra.get("mail_backlog") for r in results]
    backlogs_known = [b for b in backlogs if b is not None]
    return Summary(
        kind=results[0].kind,
        level=results[0].level,
        rate=med(lambda r: r.rate),
        p50=med(lambda r: r.p(50)),
        p99=med(lambda r: r.p(99)),
        get_p50=med(lambda r: r.p(50, "get")),
        get_p99=med(lambda r: r.p(99, "get")),
        rss=med(lambda r: r.peak_rss_mib),
        cpu_ms=med(lambda r: r.cpu_ms),
        client_cpu_ms=med(lambda r: r.client_cpu_ms),
        errors=sum(r.errors for r in results),
        backlog=statistics.median(backlogs_known) if backlogs_known else float("nan"),
        drain_s=med(lambda r: r.extra.get("mail_drain_s", float("nan"))),
        with_mail_rate=med(lambda r: r.with_mail_rate),
        runs=len(results),
    )


def _fmt(value: float, spec: str = ".1f") -> str:
    return "-" if value != value else format(value, spec)


def print_run(r: RunResult) -> None:
    get = f" GET p50 {_fmt(r.p(50, 'get'))} ms" if r.get_ms else ""
    backlog = r.extra.get("mail_backlog")
    drain = _fmt(r.extra.get("mail_drain_s", float("nan")), ".2f")
    tail = f" mail backlog {backlog}, all sent {drain} s later" if backlog is not None else ""
    err = f" errors {r.errors} ({r.extra['first_error']})" if r.errors else ""
    print(f"  {r.kind:<12} c={r.level:<3} {r.requests:4d} in {r.seconds:6.2f} s "
          f"{r.rate:7.1f}/s  POST p50 {_fmt(r.p(50))} p99 {_fmt(r.p(99))} ms{get}  "
          f"CPU {_fmt(r.cpu_ms, '.2f')} (client {_fmt(r.client_cpu_ms, '.2f')}) ms/req  "
          f"RSS {_fmt(r.peak_rss_mib)} MiB{tail}{err}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_bare"]:
        return bare_main(argv[1:])
    if argv[:1] == ["_profiled"]:
        return profiled_main(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="1,8,32",
                        help="concurrent clients, comma-separated (default 1,8,32)")
    parser.add_argument("--requests", type=int, default=300,
                        help="submissions per level and run (default 300)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per level (default 3)")
    parser.add_argument("--warmup", type=int, default=30,
                        help="unmeasured submissions on each new server (default 30)")
    parser.add_argument("--kinds", default="service,service-post,bare",
                        help="which loads to run (default service,service-post,bare)")
    parser.add_argument("--time-limit", type=float, default=120,
                        help="seconds after which a run stops taking new submissions")
    parser.add_argument("--profile", choices=("auto", "always", "never"), default="auto",
                        help="profile one service run when a target is missed (auto)")
    parser.add_argument("--one-email", action="store_true",
                        help="diagnostic: send every submission from one e-mail address")
    parser.add_argument("--open-rates", default="50,100",
                        help="open loop: arrival rates per second to offer, comma-separated "
                             "('' for none; default 50,100)")
    parser.add_argument("--open-connections", type=int, default=32,
                        help="open loop: keep-alive connections the arrivals share (default 32)")
    parser.add_argument("--profile-dir", type=Path,
                        help="keep the .prof files here (default: a temporary folder)")
    args = parser.parse_args(argv)
    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    open_rates = [float(x) for x in args.open_rates.split(",") if x.strip()]
    if args.one_email:
        ONE_EMAIL.append("same.customer@example.lv")
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if args.requests < 1 or args.repeat < 1 or not levels or min(levels) < 1:
        parser.error("--requests, --repeat and the levels must be at least 1")
    unknown = set(kinds) - {"service", "service-post", "bare"}
    if unknown:
        parser.error(f"unknown kinds: {', '.join(sorted(unknown))}")

    print(f"form load: levels {levels}, {args.requests} submissions per run, "
          f"{args.repeat} run(s) each, warm-up {args.warmup}"
          f"{', one e-mail address' if args.one_email else ''}; {os.cpu_count()} CPU(s), "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="form-load-"))
    results: dict[tuple[str, int], list[RunResult]] = {}
    began = time.monotonic()
    try:
        for level in levels:
            for repeat in range(args.repeat):
                # The kinds take turns, so that a noisy minute hurts them all alike.
                order = kinds if repeat % 2 == 0 else list(reversed(kinds))
                for kind in order:
                    r = one_run(kind, level, args.requests, args.warmup, args.time_limit,
                                workdir)
                    results.setdefault((kind, level), []).append(r)
                    print_run(r)
        open_results: dict[tuple[str, float], list[RunResult]] = {}
        open_kinds = [k for k in kinds if k in (TARGET_KIND, "bare")]
        for rate in open_rates:
            for repeat in range(args.repeat):
                order = open_kinds if repeat % 2 == 0 else list(reversed(open_kinds))
                for kind in order:
                    r = one_run(kind, args.open_connections, args.requests, args.warmup,
                                args.time_limit, workdir, open_rate=rate)
                    open_results.setdefault((kind, rate), []).append(r)
                    print(f"  open loop {rate:g}/s offered:", end="")
                    print_run(r)
        summaries = {key: summarise(runs) for key, runs in results.items()}
        ok = report(summaries, levels, kinds, time.monotonic() - began)
        if open_results:
            report_open({key: summarise(runs) for key, runs in open_results.items()},
                        open_rates, open_kinds, args.open_connections)
        if args.profile == "always" or (args.profile == "auto" and not ok):
            profile_dir = args.profile_dir or workdir / "profile"
            profile_dir.mkdir(parents=True, exist_ok=True)
            profile_service(max(levels), args.requests, args.warmup, args.time_limit,
                            workdir, profile_dir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


def print_table(header: str, rows: Sequence[str]) -> None:
    print(header)
    print("-" * len(header))
    for row in rows:
        print(row)


def print_profiles(prefix: Path, titles: Sequence[tuple[str, str]]) -> None:
    """The hot spots of each profile a profiled server wrote (`prefix` + suffix)."""
    for suffix, title in titles:
        path = Path(f"{prefix}{suffix}")
        print()
        print(f"== {title}")
        print(hot_spots(path) if path.is_file() else f"  (no {path.name} was written)")


def report(summaries: dict[tuple[str, int], Summary], levels: list[int], kinds: list[str],
           elapsed: float) -> bool:
    print()
    print(f"Medians over the runs (took {elapsed:.0f} s). Throughput: service-post = POSTs "
          "of valid submissions per second (forms fetched beforehand), bare = POSTs per "
          "second: the targets compare these two. service = whole submissions (GET form + "
          "POST) per second, for information. Latency is the POST's. CPU ms/req: the server "
          "process's CPU time (all threads) per submission, in the timed part; client CPU: "
          "the benchmark's own, on the same cores. mail s: seconds after the last POST until "
          "every e-mail was sent (the worker gives way to customers); w/ mail/s: submissions "
          "per second counting that time too.")
    header = (f"{'clients':>7}  {'kind':<12} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'GET p50':>8} {'GET p99':>8} {'CPU ms/req':>10} {'client CPU':>10} "
              f"{'peak RSS MiB':>13} "
              f"{'errors':>6} "
              f"{'mail backlog':>12} {'mail s':>7} {'w/ mail/s':>9}")
    print_table(header, [
        f"{level:>7}  {kind:<12} {_fmt(s.rate):>8} {_fmt(s.p50, '.2f'):>8} "
        f"{_fmt(s.p99, '.2f'):>8} {_fmt(s.get_p50, '.2f'):>8} "
        f"{_fmt(s.get_p99, '.2f'):>8} {_fmt(s.cpu_ms, '.2f'):>10} "
        f"{_fmt(s.client_cpu_ms, '.2f'):>10} {_fmt(s.rss):>13} "
        f"{s.errors:>6} "
        f"{_fmt(s.backlog, '.0f'):>12} {_fmt(s.drain_s, '.2f'):>7} "
        f"{_fmt(s.with_mail_rate):>9}"
        for level in levels for kind in kinds
        if (s := summaries.get((kind, level))) is not None
    ])
    print()
    ok = True
    errors = sum(s.errors for s in summaries.values())
    if errors:
        ok = False
        print(f"FAIL  {errors} submission(s) were not answered with the confirmation redirect")
    for level in levels:
        bare = summaries.get(("bare", level))
        for kind in ("service-post", "service"):
            s = summaries.get((kind, level))
            if bare is None or s is None:
                continue
            ratio = s.rate / bare.rate
            passed = ratio >= TARGET_RATIO
            if kind == TARGET_KIND:
                ok = ok and passed
            label = "POST vs POST: the target" if kind == TARGET_KIND else (
                "GET + POST vs POST, for information")
            print(f"{'PASS' if passed else 'FAIL'}  {level:>2} clients: {kind} / bare "
                  f"throughput = {s.rate:.1f} / {bare.rate:.1f} = {ratio:.2f} "
                  f"(target >= {TARGET_RATIO}) [{label}]")
    if 32 in levels:
        for kind in ("service-post", "service", "bare"):
            s = summaries.get((kind, 32))
            if s is None:
                continue
            passed = s.p99 < TARGET_P99_MS
            if kind == TARGET_KIND:
                ok = ok and passed
            label = {TARGET_KIND: " [the target]", "service": " [GET + POST, for information]",
                     "bare": " [the baseline, for reference]"}[kind]
            print(f"{'PASS' if passed else 'FAIL'}  32 clients: {kind} POST p99 = "
                  f"{s.p99:.1f} ms (target < {TARGET_P99_MS:.0f} ms){label}")
        # Little's law for a closed loop without think time: N = X * R.
        print(f"note: 32 clients that never pause keep 32 requests in the server; a mean "
              f"latency under {TARGET_P99_MS:.0f} ms then needs more than "
              f"{32 / (TARGET_P99_MS / 1000):.0f} submissions/s.")
    else:
        print("(the p99 target is for 32 clients, which were not run)")
    return ok


def report_open(summaries: dict[tuple[str, float], Summary], rates: list[float],
                kinds: list[str], connections: int) -> None:
    """The latency target under a load that leaves the server time to breathe."""
    print()
    print(f"Open loop: submissions arrive at the offered rate (Poisson) and share "
          f"{connections} keep-alive connections; latency counts from arrival, waiting for a "
          "free connection included. Medians over the runs.")
    header = (f"{'offered/s':>9}  {'kind':<12} {'done/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'CPU ms/req':>10} {'errors':>6} {'mail s':>7}")
    print_table(header, [
        f"{rate:>9g}  {kind:<12} {_fmt(s.rate):>8} {_fmt(s.p50, '.2f'):>8} "
        f"{_fmt(s.p99, '.2f'):>8} {_fmt(s.cpu_ms, '.2f'):>10} {s.errors:>6} "
        f"{_fmt(s.drain_s, '.2f'):>7}"
        for rate in rates for kind in kinds
        if (s := summaries.get((kind, rate))) is not None
    ])
    print()
    for rate in rates:
        s = summaries.get((TARGET_KIND, rate))
        if s is not None:
            verdict = "PASS" if s.p99 < TARGET_P99_MS else "FAIL"
            print(f"{verdict}  open loop, {rate:g}/s over {connections} connections: "
                  f"{TARGET_KIND} POST p99 = {s.p99:.1f} ms (< {TARGET_P99_MS:.0f} ms) "
                  "[for information: the target is stated for closed-loop clients]")


def profile_service(level: int, count: int, warmup: int, time_limit: float, workdir: Path,
                    profile_dir: Path) -> None:
    print()
    print(f"Profiling one service run at {level} clients (cProfile in the server; "
          "times are inflated by the profiler, compare them with each other only)...",
          flush=True)
    prefix = profile_dir / f"service-c{level}"
    r = one_run(TARGET_KIND, level, count, warmup, time_limit, workdir, profile=prefix)
    print_run(r)
    print_profiles(prefix, (
        (".main.prof", "main thread: the event loop, every request's async code"),
        (".threads.prof", "worker threads: run_in_threadpool (database), "
                          "asyncio.to_thread (the mail worker's database and rendering)"),
    ))


if __name__ == "__main__":
    sys.exit(main())

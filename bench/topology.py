"""Submissions per second through the production topology, with one and with two instances.

The topology is the one deploy/ ships and tests/test_topology.py runs: Caddy
(deploy/Caddyfile, `tls internal`) in front of `policy-site serve` instances
on one PostgreSQL database (fresh for each run) and Redis, mail to an SMTP
server on loopback (aiosmtpd). For 1 and for 2 instances, --repeat times each
(a new topology every time), --clients concurrent clients, each one
keep-alive https connection through Caddy, first GET their forms (untimed),
then POST --requests valid submissions in all. The POSTs are timed; a
submission counts when it is answered 303 to its confirmation page.

It prints the medians per configuration: submissions/s, POST latency p50/p99,
and the CPU seconds per 100 submissions spent by the instances, Caddy,
PostgreSQL and this script (all on the same cores), then the ratio 2 / 1 and
the machine's core count. Rate limits are raised: this measures throughput,
not the limits.

    .venv/bin/python bench/topology.py                      # 1 and 2 instances, 3 runs each
    .venv/bin/python bench/topology.py --repeat 1 --requests 200   # a quick look

Everything runs on 127.0.0.1; the temporary folder and database are removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # the topology the tests run

import httpx2  # noqa: E402
from form_load import percentile, print_table  # noqa: E402  (beside this file)
from smtp_server import SmtpServer  # noqa: E402
from topology_support import Topology, published_site, topology  # noqa: E402

HIDDEN = re.compile(r'<input type="hidden" name="(?P<name>[a-z_]+)" value="(?P<value>[^"]*)">')
FORM = "/en/request/"


@dataclass(frozen=True)
class Run:
    instances: int
    rate: float  # acknowledged submissions per second
    p50_ms: float
    p99_ms: float
    errors: int
    cpu: dict[str, float]  # CPU seconds per 100 submissions, by who spent them


def cpu_by_pid(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds of each process (all its threads), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    found = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        found[pid] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return found


def postgres_pids() -> list[int]:
    """PostgreSQL's processes; backends come and go with the pools' connections."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


class Gate:
    """Holds the clients until every one has fetched its forms, then lets them all POST."""

    def __init__(self, clients: int) -> None:
        self.clients = clients
        self.ready = 0
        self.all_ready = asyncio.Event()
        self.go = asyncio.Event()

    async def wait(self) -> None:
        self.ready += 1
        if self.ready == self.clients:
            self.all_ready.set()
        await self.go.wait()


async def _client(deployed: Topology, gate: Gate, count: int, n: int,
                  latencies: list[float]) -> int:
    """One customer's connection: fetch `count` forms, then POST them one after another."""
    async with httpx2.AsyncClient(base_url=deployed.base_url,
                                  verify=deployed.caddy.ssl_context(), timeout=30) as client:
        forms = []
        for i in range(count):
            page = await client.get(f"{FORM}?type=access")
            fields = {m["name"]: m["value"] for m in HIDDEN.finditer(page.text)}
            fields.update(name=f"Bench {n}-{i}", email=f"bench{n}-{i}@example.lv",
                          request_type="access", details="Lūdzu, atsūtiet manus datus.")
            forms.append(fields)
        await gate.wait()
        errors = 0
        for fields in forms:
            started = time.perf_counter()
            answer = await client.post(FORM, data=fields, headers={"Origin": deployed.base_url})
            latencies.append(time.perf_counter() - started)
            if answer.status_code != 303:
                errors += 1
        return errors


async def _measure(deployed: Topology, clients: int, requests: int,
                   groups: dict[str, Callable[[], list[int]]]) -> tuple[
                       float, list[float], int, dict[str, float]]:
    gate = Gate(clients)
    latencies: list[float] = []
    each = [requests // clients + (1 if i < requests % clients else 0) for i in range(clients)]
    tasks = [asyncio.create_task(_client(deployed, gate, count, n, latencies))
             for n, count in enumerate(each)]
    await gate.all_ready.wait()
    before = {k: cpu_by_pid(pids()) for k, pids in groups.items()}
    started = time.perf_counter()
    gate.go.set()
    errors = sum(await asyncio.gather(*tasks))
    elapsed = time.perf_counter() - started
    # A process that started meanwhile (a new PostgreSQL backend) counts from zero.
    cpu = {k: sum(used - before[k].get(pid, 0.0) for pid, used in cpu_by_pid(pids()).items())
           for k, pids in groups.items()}
    return elapsed, latencies, errors, cpu


def one_run(work: Path, instances: int, clients: int, requests: int, smtp: SmtpServer,
            site: tuple[Path, Path]) -> Run:
    with topology(work, instances=instances, smtp_url=smtp.url, site=site,
                  POLICY_RATE_LIMIT_PER_IP="1000000/hour") as deployed:
        instance_pids = [s.proc.pid for s in deployed.instances if s.proc]
        caddy_pids = [deployed.caddy.proc.pid] if deployed.caddy.proc else []
        groups: dict[str, Callable[[], list[int]]] = {
            "instances": lambda: instance_pids,
            "caddy": lambda: caddy_pids,
            "postgres": postgres_pids,
            "client": lambda: [os.getpid()],
        }
        elapsed, latencies, errors, cpu = asyncio.run(
            _measure(deployed, clients, requests, groups))
    done = requests - errors
    latencies.sort()
    per_100 = {k: 100 * v / max(done, 1) for k, v in cpu.items()}
    return Run(instances, done / elapsed, 1000 * percentile(latencies, 50),
               1000 * percentile(latencies, 99), errors, per_100)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=400, help="POSTs per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration")
    args = parser.parse_args()
    began = time.monotonic()
    smtp = SmtpServer()
    smtp.start()
    runs: dict[int, list[Run]] = {1: [], 2: []}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-topology-") as tmp:
            site = published_site(Path(tmp))
            for repeat in range(args.repeat):
                for instances in (1, 2):
                    work = Path(tmp) / f"run-{instances}-{repeat}"
                    run = one_run(work, instances, args.clients, args.requests, smtp, site)
                    runs[instances].append(run)
                    print(f"  run {repeat + 1}, {instances} instance(s): {run.rate:.1f} "
                          f"submissions/s, p99 {run.p99_ms:.0f} ms, errors {run.errors}",
                          flush=True)
    finally:
        smtp.stop()
    print()
    print(f"Medians over {args.repeat} run(s) of {args.requests} POSTs from {args.clients} "
          f"clients through Caddy (https), PostgreSQL and Redis; took "
          f"{time.monotonic() - began:.0f} s. CPU: seconds per 100 submissions.")
    header = (f"{'instances':>9} {'subs/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} "
              f"{'CPU inst':>9} {'CPU caddy':>9} {'CPU pg':>8} {'CPU client':>10}")
    rows = []
    medians = {}
    for instances, found in runs.items():
        med = {key: statistics.median(getattr(r, key) for r in found)
               for key in ("rate", "p50_ms", "p99_ms", "errors")}
        cpu = {key: statistics.median(r.cpu[key] for r in found)
               for key in ("instances", "caddy", "postgres", "client")}
        medians[instances] = med["rate"]
        rows.append(f"{instances:>9} {med['rate']:>8.1f} {med['p50_ms']:>8.1f} "
                    f"{med['p99_ms']:>8.1f} {med['errors']:>6.0f} {cpu['instances']:>9.2f} "
                    f"{cpu['caddy']:>9.2f} {cpu['postgres']:>8.2f} {cpu['client']:>10.2f}")
    print_table(header, rows)
    print()
    print(f"ratio 2 / 1 instances: {medians[2] / medians[1]:.2f}   "
          f"cores on this machine (os.cpu_count): {os.cpu_count()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

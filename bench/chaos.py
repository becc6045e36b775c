"""What survives chaos: the service under SIGKILL loops, a refusing or silent mail server, and
instance kills on PostgreSQL, with customers submitting and confirming throughout.

Every scenario runs real processes: `policy-site serve` (tests/live_service.py), aiosmtpd
on loopback (tests/chaos_support.py), customers who submit the form, read the verification
link from their e-mail at the SMTP server and confirm it as the page's POST does. After the
disturbance the customers finish what they began, and the script waits until no message
is pending (at most --drain-limit seconds).

    kill loop      one instance on SQLite, SIGKILL every 2-4 s (--kills times), restarted
    smtp refusal   one instance on SQLite; the server answers 451 to every DATA for
                   --outage seconds, then accepts again
    smtp silence   one instance on SQLite; for --outage seconds the server takes the message
                   and answers only after 20 s (the mailer gives up after 15 s)
    pg kill        three instances on one fresh PostgreSQL database; instance 1 is killed
                   every 3-5 s (--kills times) and restarted; customers use any instance up

It prints one table. `submitted`: form POSTs sent; `acked`: references shown to customers;
`stored`: of those, found in the database; `confirmed`: confirmed in the database (shown
to the customer: `seen`); `tickets`/`acks`: confirmed requests whose ticket/acknowledgement
reached the server; `dups`: copies beyond the first, counted by Message-ID (`same ID`: no
copy of an e-mail came under another Message-ID), with how many no design could avoid
(`unavoidable`: the server had the message when its sender died or stopped listening);
`failed`: messages given up; `tries>sent`: tries counted on rows beyond the exchanges the
server saw, against the number of kills; `drain s`: seconds from the end of the disturbance
until nothing is pending. Baseline in the same run: `calm`, the same customers with nothing
going wrong.

    .venv/bin/python bench/chaos.py             # every scenario, about 8 minutes
    .venv/bin/python bench/chaos.py --quick     # shorter disturbances, about 5 minutes
    .venv/bin/python bench/chaos.py --scenarios kill,refusal --kills 20

Everything runs on 127.0.0.1; the temporary folder and database are removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # the harness the tests run

from chaos_support import (  # noqa: E402
    Books,
    ChaosSmtp,
    Customers,
    KillRecord,
    Outcome,
    judge,
    kill,
    up_services,
)
from live_service import LiveService  # noqa: E402
from topology_support import fresh_postgres  # noqa: E402
from web_support import built_site  # noqa: E402

from form_service.store import Store  # noqa: E402

LEASE = "5"  # POLICY_OUTBOX_LEASE_SECONDS: short, so that takeovers happen within the run


@dataclass
class Setup:
    services: list[LiveService]
    smtp: ChaosSmtp
    books: Books
    kills: KillRecord
    customers: Customers
    rng: random.Random


@dataclass
class Result:
    name: str
    outcome: Outcome
    kills: int
    seconds: float


@contextlib.contextmanager
def deployed(work: Path, *, instances: int, postgres: bool, customers: int,
             smtp_delay: float = 0.05) -> Iterator[Setup]:
    """Instances, the mail server and the customers of one scenario (customers not started)."""
    smtp = ChaosSmtp(delay=smtp_delay)
    smtp.start()
    with fresh_postgres() if postgres else contextlib.nullcontext() as pg:
        env = {"POLICY_OUTBOX_LEASE_SECONDS": LEASE}
        if pg:
            env["POLICY_DATABASE_URL"] = str(pg)
            setup = Store(str(pg))
            setup.migrate()
            setup.close()
        services = [LiveService(work / f"var{i}", built_site(), smtp.url, **env)
                    for i in range(instances)]
        books = Books(services[0].database_url)
        crowd = Customers(customers, lambda: up_services(services), smtp,
                          mail_wait=20, retry_for=20)
        try:
            for service in services:
                service.start()
            yield Setup(services, smtp, books, KillRecord(), crowd,
                        random.Random(14))  # noqa: S311 (timing of kills, no secret)
        finally:
            crowd.stop.set()
            for service in services:
                service.stop()
            books.close()
            smtp.stop()


def run(name: str, work: Path, disturb: Callable[[Setup], None], *, drain_limit: float,
        instances: int = 1, postgres: bool = False, customers: int = 3, warm: float = 8) -> Result:
    began = time.monotonic()
    with deployed(work, instances=instances, postgres=postgres, customers=customers) as s:
        s.customers.start()
        time.sleep(warm)
        disturb(s)
        # Back to normal now: the customers end what they began, then the outbox drains.
        ended = time.monotonic()
        s.customers.finish(timeout=60)
        left = drain_limit - (time.monotonic() - ended)
        drained = s.books.wait_drained(limit=max(left, 0.5))
        drain = None if drained is None else time.monotonic() - ended
        time.sleep(1.5)  # a late copy, if any, arrives now
        outcome = judge(s.customers.tally, s.smtp, s.books, s.kills, drain)
    result = Result(name, outcome, s.kills.kills, time.monotonic() - began)
    print(f"  {name}: done in {result.seconds:.0f} s", flush=True)
    return result


def calm(seconds: float) -> Callable[[Setup], None]:
    def disturb(s: Setup) -> None:
        time.sleep(seconds)
    return disturb


def kill_loop(kills: int, gap: tuple[float, float], victim: int = 0) -> Callable[[Setup], None]:
    def disturb(s: Setup) -> None:
        service = s.services[victim]
        for _ in range(kills):
            time.sleep(s.rng.uniform(*gap))
            kill(service, s.smtp, s.books, s.kills)
            service.start()
    return disturb


def refusal(seconds: float) -> Callable[[Setup], None]:
    def disturb(s: Setup) -> None:
        s.smtp.refusing = True
        time.sleep(seconds)
        s.smtp.refusing = False
    return disturb


def silence(seconds: float) -> Callable[[Setup], None]:
    def disturb(s: Setup) -> None:
        s.smtp.silent = True
        time.sleep(seconds)
        s.smtp.silent = False
    return disturb


def row(result: Result) -> str:
    o = result.outcome
    dups = f"{o.duplicates} ({'same ID' if o.new_ids == 0 else f'{o.new_ids} new IDs'})"
    unavoidable = sum(o.explained.values())
    drain = f"{o.drain:.1f}" if o.drain is not None else f">limit ({o.pending} left)"
    return (f"{result.name:<13} {o.submitted:>9} {o.acknowledged:>5} {o.stored:>6} "
            f"{o.verified:>5}/{o.confirmed_seen:<4} {o.tickets:>7} {o.acks:>5} {dups:>15} "
            f"{unavoidable:>11} {len(o.failed):>6} {o.unexchanged:>5}/{result.kills:<3} "
            f"{o.max_attempts:>4} {drain:>9}")


HEADER = (f"{'scenario':<13} {'submitted':>9} {'acked':>5} {'stored':>6} {'confirmed/seen':>10} "
          f"{'tickets':>7} {'acks':>5} {'dups':>15} {'unavoidable':>11} {'failed':>6} "
          f"{'tries>sent/kills':>9} {'max tries':>4} {'drain s':>9}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", default="calm,kill,refusal,silence,pg-kill",
                        help="comma-separated, of calm, kill, refusal, silence, pg-kill")
    parser.add_argument("--kills", type=int, default=12, help="kills in kill loop and pg kill")
    parser.add_argument("--outage", type=float, default=45,
                        help="seconds the mail server refuses, or stays silent")
    parser.add_argument("--drain-limit", type=float, default=90,
                        help="seconds to wait for the outbox to empty after the disturbance")
    parser.add_argument("--customers", type=int, default=3, help="concurrent customers")
    parser.add_argument("--quick", action="store_true",
                        help="5 kills, 25 s outages, 60 s drain limit")
    args = parser.parse_args()
    if args.quick:
        args.kills, args.outage, args.drain_limit = 5, 25, 60
    chosen = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    began = time.monotonic()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-chaos-") as tmp:
        work = Path(tmp)
        built_site()  # once, before any timing
        plans: dict[str, Callable[[], Result]] = {
            "calm": lambda: run("calm", work / "calm", calm(20), drain_limit=args.drain_limit,
                                customers=args.customers),
            "kill": lambda: run("kill loop", work / "kill", kill_loop(args.kills, (2, 4)),
                                drain_limit=args.drain_limit, customers=args.customers),
            "refusal": lambda: run("smtp refusal", work / "refusal", refusal(args.outage),
                                   drain_limit=args.drain_limit, customers=args.customers),
            "silence": lambda: run("smtp silence", work / "silence", silence(args.outage),
                                   drain_limit=args.drain_limit, customers=args.customers),
            "pg-kill": lambda: run("pg kill", work / "pg", kill_loop(args.kills, (3, 5), 1),
                                   drain_limit=args.drain_limit, instances=3, postgres=True,
                                   customers=args.customers + 1),
        }
        for name in chosen:
            if name not in plans:
                parser.error(f"unknown scenario {name!r}; known: {', '.join(plans)}")
            results.append(plans[name]())
    print()
    print(f"Chaos scenarios, lease {LEASE} s, {args.kills} kills, {args.outage:.0f} s outages, "
          f"drain limit {args.drain_limit:.0f} s; took {time.monotonic() - began:.0f} s.")
    print(HEADER)
    print("-" * len(HEADER))
    for result in results:
        print(row(result))
    print()
    for result in results:
        o = result.outcome
        notes = []
        if o.lost:
            notes.append(f"acknowledged but not stored: {o.lost}")
        if o.confirmed_unstored:
            notes.append(f"shown confirmed, not confirmed in the database: {o.confirmed_unstored}")
        if o.missing:
            notes.append(f"{len(o.missing)} tickets/acknowledgements missing")
        if o.failed:
            notes.append(f"failed: {o.failed[:5]}{' ...' if len(o.failed) > 5 else ''}")
        if o.unexplained:
            notes.append(f"avoidable copies: {o.unexplained}")
        if o.copies:
            kinds = {k: o.duplicates_of(k) for k in ("verify", "ticket", "ack")}
            notes.append("copies by kind: " + ", ".join(f"{k} {n}" for k, n in kinds.items()))
        if notes:
            print(f"{result.name}: " + "; ".join(notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())

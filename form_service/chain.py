"""The history's hash chain: proof that nobody rewrote or removed an event.

GDPR Art. 5(2) asks the controller to be able to *demonstrate* what it did
with a request; a history anyone with database access could quietly edit
proves little. So every event stores `prev_hash`, the hash of the event
written before it (of any request: one chain over the whole table), and
`hash`, the SHA-256 of that previous hash and its own canonical content.
Editing an event changes its content (its hash no longer matches); deleting
one leaves the next event pointing at a hash nobody holds; deleting the
newest ones leaves the chain head (table `event_chain`) pointing past the end.

The retention purge must delete whole requests with their history (GDPR
Art. 5(1)(e)). It records what it removed in a checkpoint event: for every
run of removed events, the hash before the run and the hash of its last
event ("bridges"), so that the walk can step over exactly those gaps and no
others.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# The "previous hash" of the first event ever written.
GENESIS = "0" * 64
CHECKPOINT = "chain_checkpoint"


def canonical(request_id: int | None, kind: str, at: dt.datetime,
              detail: Mapping[str, Any] | None) -> bytes:
    """An event's content as bytes that are the same on SQLite and PostgreSQL.

    Sorted keys, no spaces, UTF-8; the time in UTC with microseconds (what both
    databases keep). The row id is not part of it (it is known only after the
    INSERT, and the trigger forbids writing the hash afterwards): the order is
    in the chain itself.
    """
    moment = at.astimezone(dt.UTC).isoformat(timespec="microseconds")
    content = {"request_id": request_id, "kind": kind, "at": moment, "detail": detail}
    return json.dumps(content, sort_keys=True, ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")


def link_hash(prev_hash: str, request_id: int | None, kind: str, at: dt.datetime,
              detail: Mapping[str, Any] | None) -> str:
    """SHA-256 of the previous event's hash and this event's canonical content."""
    digest = hashlib.sha256(prev_hash.encode("ascii") + b"\n")
    digest.update(canonical(request_id, kind, at, detail))
    return digest.hexdigest()


@dataclass(frozen=True)
class Link:
    """One event as the chain sees it."""

    id: int
    request_id: int | None
    kind: str
    at: dt.datetime
    detail: dict[str, Any] | None
    prev_hash: str | None
    hash: str | None

    @property
    def intact(self) -> bool:
        """True when the stored hash is the hash of the stored content."""
        return (self.hash is not None and self.prev_hash is not None
                and link_hash(self.prev_hash, self.request_id, self.kind, self.at,
                              self.detail) == self.hash)


@dataclass(frozen=True)
class Bridge:
    """A run of events the purge removed: the chain may step from `start` to `end`."""

    start: str  # the hash the first removed event pointed back to
    end: str  # the hash of the last removed event
    events: int


def bridges_over(removed: Iterable[Link]) -> list[Bridge]:
    """The runs of consecutive events in `removed` (events about to be deleted).

    Found through the links themselves: a run starts at an event whose
    predecessor is not removed, and goes on while the next event is.
    """
    by_hash = {link.hash: link for link in removed if link.hash}
    by_prev = {link.prev_hash: link for link in by_hash.values()}
    bridges = []
    for link in sorted(by_hash.values(), key=lambda e: e.id):
        if link.prev_hash in by_hash or link.prev_hash is None:
            continue
        end, count = link, 1
        while end.hash in by_prev:
            end, count = by_prev[end.hash], count + 1
        assert end.hash is not None
        bridges.append(Bridge(link.prev_hash, end.hash, count))
    return bridges


def checkpoint_detail(bridges: list[Bridge], requests: int) -> dict[str, Any]:
    return {
        "reason": "retention purge (GDPR Art. 5(1)(e)): these runs of events were deleted "
                  "with their requests",
        "requests_removed": requests,
        "events_removed": sum(b.events for b in bridges),
        "bridges": [[b.start, b.end, b.events] for b in bridges],
    }


def bridges_of(link: Link) -> dict[str, str]:
    """start -> end of every run a (genuine) checkpoint event records."""
    if link.kind != CHECKPOINT or not link.intact or not link.detail:
        return {}
    found = {}
    for entry in link.detail.get("bridges") or []:
        if isinstance(entry, list) and len(entry) == 3:
            found[str(entry[0])] = str(entry[1])
    return found


@dataclass(frozen=True)
class Verdict:
    """What a walk of the chain found: the number of events, and the first broken link."""

    events: int
    head: str
    broken_at: Link | None = None
    problem: str | None = None

    @property
    def intact(self) -> bool:
        return self.problem is None


def walk(links: Iterable[Link], head: str | None, bridges: Mapping[str, str]) -> Verdict:
    """Follow the chain in id order; stop at the first link that does not hold.

    `head`: the hash the chain-head table holds (the newest event's).
    `bridges`: from the checkpoints (bridges_of), the gaps the purge left.
    """
    expected, count = GENESIS, 0
    for link in links:
        if link.hash is None or link.prev_hash is None:
            return Verdict(count, expected, link, "it has no hash: it was not written by "
                                                  "the service")
        if not link.intact:
            return Verdict(count, expected, link, "its content does not match its hash: "
                                                  "it was changed after it was written")
        if link.prev_hash != expected and not _bridged(expected, link.prev_hash, bridges):
            return Verdict(count, expected, link, "the event before it in the chain is "
                                                  "missing: it was deleted, or changed")
        expected, count = link.hash, count + 1
    if head is None:
        return Verdict(count, expected, None, "the chain head is missing")
    if head != expected:
        return Verdict(count, expected, None, "the newest events are missing: the chain "
                                              "head names an event that is not there")
    return Verdict(count, expected)


def _bridged(start: str, target: str, bridges: Mapping[str, str]) -> bool:
    """True when the purge's recorded gaps lead from `start` to `target`."""
    seen = set()
    current = start
    while current in bridges and current not in seen:
        seen.add(current)
        current = bridges[current]
        if current == target:
            return True
    return False

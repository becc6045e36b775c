"""Rate limits per client address (the `limits` library, async API).

Per address, so one machine cannot flood the service. There is no refusal
per e-mail address: that would let anyone lock a person out of filing their
own request by filing a few in their name, and the refusal itself would tell
how many requests an address has made. Flooding an inbox through the form is
stopped instead by the cap on verification e-mails (store.gather_verification).
Counts live in memory by default, or in Redis when POLICY_RATE_LIMIT_STORAGE
names it, so that several instances behind one proxy share one count.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import anyio
from limits import RateLimitItem, parse
from limits.aio.storage import Storage as AsyncStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string

from form_service.settings import SettingsError
from form_service.web.errors import RateLimited

logger = logging.getLogger("form_service")

# How long a request waits on the shared store (Redis) before it goes through
# uncounted. Redis answers in a millisecond; a silent one (packets dropped, the
# socket left open) held every POST for about 30 s before this bound.
STORAGE_TIMEOUT = 1.0

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class RateLimits:
    """How many submissions are allowed, in the `limits` notation ("20/hour")."""

    per_ip: str = "20/hour"
    # Keys in a shared store start with this, so two deployments never share counts.
    key_prefix: str = "policy-site"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RateLimits:
        values = {
            "per_ip": env.get("POLICY_RATE_LIMIT_PER_IP") or cls.per_ip,
            "key_prefix": env.get("POLICY_RATE_LIMIT_KEY_PREFIX") or cls.key_prefix,
        }
        limits = cls(**values)
        try:
            parse(limits.per_ip)
        except ValueError:
            raise SettingsError(
                f"POLICY_RATE_LIMIT_PER_IP={limits.per_ip!r} must be like 20/hour.") from None
        return limits


def _async_uri(uri: str) -> str:
    """The `limits` async storage URI for a setting: memory:// becomes async+memory://."""
    return uri if uri.startswith("async+") else f"async+{uri}"


def _bound() -> anyio.CancelScope:
    """STORAGE_TIMEOUT for one question to the store, its client's retries included
    (TimeoutError when it runs out, handled like the store's own errors)."""
    return anyio.fail_after(STORAGE_TIMEOUT)


class Limiter:
    """Counts hits in a sliding window, so a burst at a window's edge gets no double quota.

    The sliding-window counter keeps two numbers per key, where a moving window
    keeps every hit for the whole window (5/day per e-mail address: a day of
    hits) and its in-memory store sweeps every key after hits (bench/form_load.py).
    """

    def __init__(self, storage_uri: str, limits: RateLimits) -> None:
        uri = _async_uri(storage_uri)
        options: dict[str, str | bool | float] = {"wrap_exceptions": True}
        self.shared = "redis" in uri.split("://", 1)[0]
        if self.shared:
            options["key_prefix"] = limits.key_prefix
            # coredis's names (the client `limits` uses for async+redis): the time to
            # connect, and to wait for each answer. It retries a command that timed out
            # on a new connection, so these add up (3 s for one PING through a silent
            # path): the bound that holds is _bound(), around each question.
            options["connect_timeout"] = STORAGE_TIMEOUT
            options["stream_timeout"] = STORAGE_TIMEOUT
        self.storage = cast(AsyncStorage, storage_from_string(uri, **options))
        self.strategy = SlidingWindowCounterRateLimiter(self.storage)
        self.per_ip = parse(limits.per_ip)

    async def _limit(self, allowed: Callable[[RateLimitItem, str, str], Awaitable[bool]],
                     item: RateLimitItem, kind: str, key: str) -> None:
        """RateLimited if `allowed` (the strategy's hit, which counts, or test) says no."""
        try:
            with _bound():
                if await allowed(item, kind, key):
                    return
                stats = await self.strategy.get_window_stats(item, kind, key)
        except (StorageError, TimeoutError):
            # A rights request matters more than a rate limit: if the shared store
            # is down, let the request through and tell the operator.
            logger.exception("Rate-limit storage unavailable; not limiting")
            return
        raise RateLimited(max(1, math.ceil(stats.reset_time - time.time())))

    async def _hit(self, item: RateLimitItem, kind: str, key: str) -> None:
        await self._limit(self.strategy.hit, item, kind, key)

    async def hit_address(self, address: str) -> None:
        await self._hit(self.per_ip, "ip", address)

    async def check(self, item: RateLimitItem, kind: str, key: str) -> None:
        """RateLimited if `key` has used up `item`, without counting anything (the console
        counts only failed sign-ins, and refuses every try once they reach the limit)."""
        await self._limit(self.strategy.test, item, kind, key)

    async def count(self, item: RateLimitItem, kind: str, key: str) -> None:
        """Count one against `item` for `key`, refusing nothing."""
        try:
            with _bound():
                await self.strategy.hit(item, kind, key)
        except (StorageError, TimeoutError):
            logger.exception("Rate-limit storage unavailable; not counting")

    async def reachable(self) -> bool | None:
        """Whether the shared store answers a PING within STORAGE_TIMEOUT (for /healthz);
        None when counts are kept in memory, where there is nothing to reach."""
        if not self.shared:
            return None
        with anyio.move_on_after(STORAGE_TIMEOUT):
            return await self.storage.check()
        return False

    async def reset(self) -> None:
        """Forget every count (in Redis: every key under this deployment's prefix)."""
        await self.storage.reset()

    async def aclose(self) -> None:
        bridge = getattr(self.storage, "bridge", None)
        client = getattr(bridge, "storage", None)
        pool = getattr(client, "connection_pool", None)
        if pool is not None:
            # coredis keeps its sockets open until told; close them with the app.
            pool.disconnect()


def parse_proxies(entries: Sequence[str]) -> tuple[_Network, ...]:
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise SettingsError(
                f"POLICY_TRUSTED_PROXIES has {entry!r}, which is not an IP address or network."
            ) from None
    return tuple(networks)


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _trusted(text: str, proxies: tuple[_Network, ...]) -> bool:
    address = _parse_ip(text)
    return address is not None and any(address in net for net in proxies)


def client_address(
    peer: str | None, forwarded_for: Sequence[str], proxies: tuple[_Network, ...]
) -> str:
    """The client's address as the rate limit counts it.

    X-Forwarded-For is believed only when the direct peer is one of our
    proxies, and then only its rightmost hop that is not a proxy of ours: hops
    further left were written by the client and may be anything.
    """
    if peer is None or not _trusted(peer, proxies):
        return _key(peer or "unknown")
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            return _key(hop)
    return _key(hops[0] if hops else peer)


def _key(text: str) -> str:
    address = _parse_ip(text)
    if address is None:
        return text[:64]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # ::ffff:a.b.c.d is how a dual-stack listener (--host ::) reports an IPv4
        # client: it is that IPv4 address, not one of a /64 all IPv4 clients share.
        return str(address.ipv4_mapped)
    if address.version == 6:
        # One IPv6 subscriber holds a whole /64; counting single addresses would
        # give each of them 2^64 quotas.
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)

"""Per-client-IP rate limits: one atomic DynamoDB counter per rule, client IP and clock-aligned window.

The original limiter read a counter and wrote count + 1 with a fresh 60 s expiry: concurrent requests
all passed, a client asking once every 50 s was never forgotten, and every route shared one counter.
Here every request is one ``KVNamespace.increment`` (a single UpdateItem) on
``rate:<rule>:<ip>:<window-start>``:

- Windows are fixed and aligned to the clock (``[k*w, (k+1)*w)``). The counter's key names its window,
  so a window ends on time whatever the client does; the item's expiry (set once, by the increment
  that creates it) only cleans up. Worst case: a client gets ``limit`` requests at the very end of one
  window and ``limit`` more at the start of the next, so **2 x limit within any ``w`` seconds**
  (10 contact posts, 20 chat messages, 40 auth posts), and never more than ``limit`` in one window.
- Flood shield: once a client has used its limit, this container answers 429 from memory until the
  window ends, with no DynamoDB write. A flood costs at most ``limit + 1`` writes per container per
  window (``limit`` when this container alone used the quota).
- Clients are counted per IPv4 address and per IPv6 /64 (``client_of``): one subscriber's prefix holds
  2^64 addresses, so counting IPv6 per address would give one client 2^64 quotas.
- DynamoDB failing transiently (throttled, 5xx, timeouts, unreachable: ``StoreUnavailable``) fails
  **open**: the request goes through, a ``RateLimiterFailOpen`` metric and a warning log line record it.
  A limiter outage must not take the contact form and the chat down with it. A configuration error
  (access denied, a missing table, a validation error) is not an outage: it propagates, so the request
  is a 500 with an ERROR log and the first request after a bad deploy shows it, instead of every limit
  silently switching off.
- Callers holding ``*`` (admins) are not limited. Public routes carry no JWT claims, so they never pay
  for the roles lookup.

Answers carry the IETF RateLimit fields (draft-ietf-httpapi-ratelimit-headers):
``RateLimit-Policy: "contact";q=5;w=60`` and ``RateLimit: "contact";r=3;t=42``; a 429 adds
``Retry-After`` (whole seconds to the window's end).
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from arcturus import aws
from arcturus.container import per_container
from arcturus.errors import StoreUnavailable
from arcturus.kv import MIN_EXPIRATION_TTL, KVNamespace
from arcturus.observability import logger, metrics

__all__ = [
    "IPV6_CLIENT_PREFIX",
    "SHIELD_CAPACITY",
    "Decision",
    "FloodShield",
    "RateLimiter",
    "Rule",
    "client_of",
    "container_limiter",
]

SHIELD_CAPACITY: Final = 10_000
"""Clients a container remembers as over their limit; beyond that the oldest are forgotten first."""


@dataclass(frozen=True)
class Rule:
    """``limit`` requests per ``window_s`` seconds from one client, counted under ``name``.

    A route declares its rule where it declares its permission (``arcturus.web.guards.limited``), so
    its path is written once; routes that declare the same rule share its counter.
    """

    name: str
    limit: int
    window_s: int

    def counter_key(self, client: str, window_start: int) -> str:
        return f"rate:{self.name}:{client}:{window_start}"

    @property
    def policy(self) -> str:
        """The ``RateLimit-Policy`` field value."""
        return f'"{self.name}";q={self.limit};w={self.window_s}'


IPV6_CLIENT_PREFIX: Final = 64
"""IPv6 clients are counted per /64: the smallest prefix a subscriber is normally given."""


def client_of(ip: str) -> str:
    """The client ``ip`` is counted as: the IPv4 address itself (also when IPv4-mapped in IPv6), or the
    IPv6 /64 network it is in (``2001:db8:1:2::/64``). An address that does not parse counts as itself."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_CLIENT_PREFIX), strict=False))
    return str(address)


@dataclass(frozen=True)
class Decision:
    """The limiter's answer for one request."""

    rule: Rule
    allowed: bool
    remaining: int | None
    """Requests left in the window; None when the store failed and the request went through unchecked."""
    reset_s: int
    """Whole seconds until the window ends (at least 1)."""

    def headers(self) -> dict[str, str]:
        headers = {"RateLimit-Policy": self.rule.policy}
        if self.remaining is not None:
            headers["RateLimit"] = f'"{self.rule.name}";r={self.remaining};t={self.reset_s}'
        if not self.allowed:
            headers["Retry-After"] = str(self.reset_s)
        return headers


class FloodShield:
    """Clients over their limit, remembered in this container until their window ends.

    Thread-safe; bounded to ``capacity`` clients (expired entries go first, then the oldest).
    """

    def __init__(self, capacity: int = SHIELD_CAPACITY) -> None:
        self._capacity = capacity
        self._until: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def blocks(self, rule: Rule, client: str, now: float) -> bool:
        with self._lock:
            return self._until.get((rule.name, client), 0.0) > now

    def block(self, rule: Rule, client: str, *, until: float, now: float) -> None:
        with self._lock:
            self._until.pop((rule.name, client), None)
            self._until[(rule.name, client)] = until
            if len(self._until) > self._capacity:
                self._until = {client: end for client, end in self._until.items() if end > now}
            while len(self._until) > self._capacity:
                del self._until[next(iter(self._until))]

    def __len__(self) -> int:
        return len(self._until)


class RateLimiter:
    """Counts requests per rule and client IP in the KV namespace; see the module docstring.

    ``clock`` (epoch seconds) is injectable so tests can travel in time; give the namespace the same one.
    """

    def __init__(
        self,
        kv: KVNamespace,
        *,
        clock: Callable[[], float] = time.time,
        shield: FloodShield | None = None,
    ) -> None:
        self._kv = kv
        self._clock = clock
        self.shield = shield or FloodShield()

    def hit(self, rule: Rule, ip: str) -> Decision:
        """Count one request from ``ip`` (as ``client_of`` groups it) under ``rule`` and say whether it may
        proceed. Raises the store's error when it is not transient (see the module docstring)."""
        client = client_of(ip)
        now = self._clock()
        window_start = int(now // rule.window_s) * rule.window_s
        window_end = window_start + rule.window_s
        reset_s = max(1, math.ceil(window_end - now))
        if self.shield.blocks(rule, client, now):
            return self._denied(rule, reset_s)
        try:
            # The key names the window, so the expiry is only clean-up: KV's minimum TTL past the end.
            count = self._kv.increment(
                rule.counter_key(client, window_start), expiration=window_end + MIN_EXPIRATION_TTL
            )
        except StoreUnavailable as error:
            logger.warning("rate limiter failing open", extra={"rule": rule.name, "error": str(error)})
            metrics.add_metric(name="RateLimiterFailOpen", unit="Count", value=1)
            return Decision(rule, allowed=True, remaining=None, reset_s=reset_s)
        if count >= rule.limit:
            # Counts only grow within a window: every later request here would be denied anyway.
            self.shield.block(rule, client, until=window_end, now=now)
        if count > rule.limit:
            return self._denied(rule, reset_s)
        return Decision(rule, allowed=True, remaining=rule.limit - count, reset_s=reset_s)

    @staticmethod
    def _denied(rule: Rule, reset_s: int) -> Decision:
        metrics.add_metric(name="RateLimited", unit="Count", value=1)
        return Decision(rule, allowed=False, remaining=0, reset_s=reset_s)


@per_container
def container_limiter() -> RateLimiter:
    """The container's limiter on the configured KV namespace (built on first use, then reused)."""
    return RateLimiter(KVNamespace.from_env(client=aws.client("dynamodb", aws.LIMITER)))

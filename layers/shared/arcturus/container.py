"""What a warm container keeps between requests, and the one way to forget it.

Every object built once per execution environment (the boto3 session and clients, the roles store, the
two-tier cache, the rate limiter, the parameter and secret providers) comes from a function decorated
``@per_container``: built on first use, then reused. ``reset()`` forgets them all, as a new container
would start: the tests' cold start. The post-response extension is not among them: it is registered once
per process, which is what Lambda allows.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar, cast

__all__ = ["per_container", "reset"]

R = TypeVar("R")
_clears: list[Callable[[], None]] = []


def per_container(factory: Callable[..., R]) -> Callable[..., R]:
    """``functools.cache`` for an object the container keeps, registered so that ``reset`` forgets it."""
    cached = functools.cache(factory)
    _clears.append(cached.cache_clear)
    return cast(Callable[..., R], cached)


def reset() -> None:
    """Forget every per-container object; the next use builds it again."""
    for clear in _clears:
        clear()

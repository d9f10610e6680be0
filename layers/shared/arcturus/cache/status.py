"""What ``GET /api/cache/status`` shows of the KV namespace: a page of the cache's and the roles' keys,
and how many other keys each class holds, never their names (a chat session id works as a bearer token
for its chat, a ``rate:`` key holds a visitor's address)."""

from __future__ import annotations

import base64
import collections
import json
import time
from collections.abc import Callable, Sequence
from typing import Annotated, Final, NotRequired

from typing_extensions import TypedDict

from arcturus.cache.memory import MemoryCacheStats
from arcturus.formats import field, wire_body
from arcturus.kv import MAX_LIST_LIMIT, KVNamespace

__all__ = ["COUNT_BUDGET_S", "SHOWN_PREFIXES", "STATUS_PAGE", "CacheStatus", "KeyCensus", "listed_page"]

SHOWN_PREFIXES: Final = ("cache:", "data:")
"""The key classes ``/api/cache/status`` names: what the cache and the roles document hold."""
STATUS_PAGE: Final = 200
COUNT_BUDGET_S: Final = 2.0
"""How long one status request spends counting the other keys (a Query page is ~10 ms)."""


@wire_body
class CacheStatus(TypedDict):
    """The answering container's memory tier, one page of the cache's and the roles' KV keys, and (on the
    first page) how many other keys there are per class; their names are never shown."""

    memoryCache: MemoryCacheStats
    kvKeys: Annotated[list[str], field(description="cache: and data: keys, in order.")]
    cursor: NotRequired[Annotated[str, field(description="Present while more keys remain: send it back.")]]
    otherKeys: NotRequired[
        Annotated[
            dict[str, int],
            field(description="First page only: keys of every other class (rate, session, ...), counted."),
        ]
    ]
    otherKeysComplete: NotRequired[
        Annotated[
            bool,
            field(description="First page only: false when counting stopped at its time budget (a floor)."),
        ]
    ]


class KeyCensus:
    """The other keys counted per class (the text before the first ``:``), kept ``keep_s`` seconds:
    counting reads every partition of every other class, and an administrator refreshing the page
    needs no newer numbers."""

    def __init__(self, kv: KVNamespace, *, keep_s: float, clock: Callable[[], float] = time.time) -> None:
        self._kv = kv
        self._keep_s = keep_s
        self._clock = clock
        self._counted: tuple[float, dict[str, int], bool] | None = None

    def counts(self) -> tuple[dict[str, int], bool]:
        """The count per class, and whether counting finished (false: the budget ran out)."""
        now = self._clock()
        counted = self._counted
        if counted is None or now - counted[0] >= self._keep_s:
            counted = (now, *_count_other_keys(self._kv))
            self._counted = counted
        return counted[1], counted[2]


def listed_page(
    kv: KVNamespace, prefixes: Sequence[str], cursor: str | None, limit: int
) -> tuple[list[str], str | None]:
    """Up to ``limit`` key names under ``prefixes`` in order, from ``cursor``; the next cursor or None.

    The cursor is base64 of ``[prefix index, the listing's own cursor]``; ValueError for one this
    function did not make.
    """
    index, inner = 0, None
    if cursor is not None:
        try:
            index, inner = json.loads(base64.urlsafe_b64decode(cursor.encode() + b"=="))
        except (ValueError, TypeError) as error:
            raise ValueError("cursor is not one this route made") from error
        if not isinstance(index, int) or not 0 <= index < len(prefixes) or not isinstance(inner, str | None):
            raise ValueError("cursor is not one this route made")
    names: list[str] = []
    while index < len(prefixes) and len(names) < limit:
        page = kv.list(prefix=prefixes[index], limit=limit - len(names), cursor=inner)
        names.extend(key["name"] for key in page["keys"])
        inner = None if page["list_complete"] else page.get("cursor")
        if inner is None:
            index += 1
    if index >= len(prefixes):
        return names, None
    return names, base64.urlsafe_b64encode(json.dumps([index, inner]).encode()).decode().rstrip("=")


def _count_other_keys(kv: KVNamespace) -> tuple[dict[str, int], bool]:
    """Live keys outside ``SHOWN_PREFIXES`` per class, and whether the count finished in its budget."""
    counts: collections.Counter[str] = collections.Counter()
    deadline = time.monotonic() + COUNT_BUDGET_S
    cursor: str | None = None
    while time.monotonic() < deadline:
        page = kv.list(limit=MAX_LIST_LIMIT, cursor=cursor)
        for key in page["keys"]:
            if not key["name"].startswith(SHOWN_PREFIXES):
                counts[key["name"].partition(":")[0]] += 1
        cursor = page.get("cursor")
        if page["list_complete"] or not cursor:
            return dict(sorted(counts.items())), True
    return dict(sorted(counts.items())), False

"""A Workers-KV-compatible namespace on DynamoDB.

The semantics and limits are Workers KV's (get / get_with_metadata / put / delete / list), in Python
names; bad input raises ValueError naming the limit. Beyond Workers KV: compare-and-set writes
(``get_with_version`` + ``put_if_version``), an atomic counter (``increment``), transparent zlib
compression, and values up to 25 MiB chunked over several items without ever showing a reader a mix of
two versions. How items are laid out in the table is ``arcturus.kvstore``'s business.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import heapq
import itertools
import json
import time
import uuid
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Literal, overload

from arcturus import aws
from arcturus.errors import ArcturusError, StoreUnavailable
from arcturus.kvstore import ABSENT, SHARDS, Condition, Head, KVTable, ListedKey, at_version, classes_for
from arcturus.settings import DEFAULT_NAMESPACE, settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = [
    "CHUNK_BYTES",
    "COMPRESS_ABOVE",
    "DEFAULT_NAMESPACE",
    "INLINE_LIMIT",
    "MAX_BULK_KEYS",
    "MAX_KEY_BYTES",
    "MAX_LIST_LIMIT",
    "MAX_METADATA_BYTES",
    "MAX_VALUE_BYTES",
    "MIN_EXPIRATION_TTL",
    "KVEntry",
    "KVNamespace",
    "ValueType",
]

ValueType = Literal["text", "json", "bytes"]

MAX_KEY_BYTES = 512
MAX_VALUE_BYTES = 25 * 1024 * 1024
MAX_METADATA_BYTES = 1024
MIN_EXPIRATION_TTL = 60
MAX_BULK_KEYS = 100
MAX_LIST_LIMIT = 1000

COMPRESS_ABOVE = 1024
"""Values larger than this are stored zlib-compressed when that saves at least a tenth."""
INLINE_LIMIT = 380_000
"""Stored values up to this size live in the head item (a DynamoDB item holds 400 KB in all)."""
CHUNK_BYTES = 380_000
_READ_ATTEMPTS = 5


@dataclasses.dataclass(frozen=True)
class KVEntry:
    """A stored value with its metadata and expiration (epoch seconds, None for none)."""

    value: Any
    metadata: Any
    expiration: int | None


class KVNamespace:
    """One KV namespace (Workers' binding) in the KV table.

    ``client`` defaults to the container's shared DynamoDB client; ``clock`` (epoch seconds) is
    injectable so tests can travel in time. Reads are eventually consistent like Workers KV, except
    ``get_with_version``, which compare-and-set needs to be strongly consistent.
    """

    def __init__(
        self,
        table_name: str,
        namespace: str = DEFAULT_NAMESPACE,
        *,
        client: DynamoDBClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.namespace = namespace
        self._table = KVTable(client or aws.dynamodb(), table_name, namespace)
        self._clock = clock

    @classmethod
    def from_env(cls, *, client: DynamoDBClient | None = None) -> KVNamespace:
        """The namespace the function is configured with (``KV_TABLE_NAME``, ``KV_NAMESPACE``)."""
        configured = settings()
        return cls(configured.kv_table, configured.kv_namespace, client=client)

    # -- reads -----------------------------------------------------------------------------------------

    @overload
    def get(self, key: str, type: ValueType = "text") -> Any: ...
    @overload
    def get(self, key: Sequence[str], type: ValueType = "text") -> dict[str, Any]: ...

    def get(self, key: str | Sequence[str], type: ValueType = "text") -> Any:
        """The value at ``key`` decoded as ``type``, or None; for a list of keys, a dict of them."""
        _check_type(type)
        if isinstance(key, str):
            return self.get_with_metadata(key, type)[0]
        return self._get_many(key, type)

    def get_with_metadata(self, key: str, type: ValueType = "text") -> tuple[Any, Any]:
        """``(value, metadata)`` at ``key``, or ``(None, None)``."""
        _check_type(type)
        _check_key(key)
        head = self._table.get_head(key, consistent=False)
        value = self._read(key, head)
        if value is None or head is None:
            return None, None
        return _decode(value, type), _load_metadata(head.metadata)

    def get_with_version(self, key: str, type: ValueType = "text") -> tuple[Any, str | None]:
        """``(value, version)`` by a strongly consistent read, for a later ``put_if_version``."""
        value, version, _ = self.get_with_version_and_metadata(key, type)
        return value, version

    def get_with_version_and_metadata(
        self, key: str, type: ValueType = "text"
    ) -> tuple[Any, str | None, Any]:
        """``(value, version, metadata)`` by a strongly consistent read, or ``(None, None, None)``."""
        _check_type(type)
        _check_key(key)
        head = self._table.get_head(key, consistent=True)
        value = self._read(key, head)
        if value is None or head is None:
            return None, None, None
        return _decode(value, type), head.version, _load_metadata(head.metadata)

    def get_entries(self, keys: Sequence[str], type: ValueType = "text") -> dict[str, KVEntry]:
        """Value, metadata and expiration of up to 100 keys in one BatchGetItem (missing keys left out).

        Beyond Workers KV, whose bulk get has no expirations: the bulk tools compare and export with it.
        """
        _check_type(type)
        if not 0 < len(keys) <= MAX_BULK_KEYS:
            raise ValueError(f"a bulk get takes 1 to {MAX_BULK_KEYS} keys, not {len(keys)}")
        for key in keys:
            _check_key(key)
        heads = self._table.get_heads(list(dict.fromkeys(keys)), consistent=False)
        entries = {}
        for key, head in heads.items():
            raw = self._read(key, head)
            if raw is not None:
                entries[key] = KVEntry(_decode(raw, type), _load_metadata(head.metadata), head.expires_at)
        return entries

    def _get_many(self, keys: Sequence[str], type: ValueType) -> dict[str, Any]:
        entries = self.get_entries(keys, type)
        return {key: entry.value if (entry := entries.get(key)) else None for key in keys}

    def _read(self, key: str, head: Head | None) -> bytes | None:
        """The value bytes ``head`` points at; re-reads the head when a writer replaced its chunks."""
        for _ in range(_READ_ATTEMPTS):
            if head is None or head.expired(self._clock()):
                return None
            if head.counter is not None:
                return str(head.counter).encode()
            if not head.chunks:
                return _inflate(head.inline or b"", head.encoding)
            parts = self._table.get_chunks(key, head.version, head.chunks)
            if parts is not None:
                return _inflate(b"".join(parts), head.encoding)
            head = self._table.get_head(key, consistent=True)
        raise StoreUnavailable(f"the value of {key!r} kept changing while it was read")

    # -- writes ----------------------------------------------------------------------------------------

    def put(
        self,
        key: str,
        value: str | bytes,
        *,
        expiration: int | None = None,
        expiration_ttl: int | None = None,
        metadata: Any = None,
    ) -> None:
        """Store ``value`` at ``key`` (last writer wins), optionally expiring and with metadata."""
        self._write(key, value, expiration=expiration, expiration_ttl=expiration_ttl, metadata=metadata)

    def check_put(
        self,
        key: str,
        value: str | bytes,
        *,
        expiration: int | None = None,
        expiration_ttl: int | None = None,
        metadata: Any = None,
    ) -> None:
        """Raise the ValueError ``put`` would raise for these, without writing: a bulk import checks a
        whole file before it writes anything."""
        _check_key(key)
        _to_bytes(value)
        self._expires_at(expiration, expiration_ttl)
        _dump_metadata(metadata)

    def put_if_version(
        self,
        key: str,
        value: str | bytes,
        version: str | None,
        *,
        expiration: int | None = None,
        expiration_ttl: int | None = None,
        metadata: Any = None,
    ) -> str:
        """Store ``value`` only if the stored version is still ``version`` (None: only if absent).

        Returns the new version. Raises VersionConflict when another write came first.
        """
        return self._write(
            key,
            value,
            expiration=expiration,
            expiration_ttl=expiration_ttl,
            metadata=metadata,
            condition=ABSENT if version is None else at_version(version),
        )

    def _write(
        self,
        key: str,
        value: str | bytes,
        *,
        expiration: int | None,
        expiration_ttl: int | None,
        metadata: Any,
        condition: Condition | None = None,
    ) -> str:
        """Write a new version: its chunks first, then switch the head, then drop the replaced chunks.

        The head switch is one PutItem that returns the head it replaced, so each replaced version's
        chunks are deleted exactly once, by the writer that replaced it, while readers holding the old
        head notice its chunks are gone and re-read the head (never a torn value). A write that fails
        before its switch leaves the old value in place and removes the chunks it had written.
        """
        _check_key(key)
        raw = _to_bytes(value)
        expires_at = self._expires_at(expiration, expiration_ttl)
        head = Head(
            key=key, version=uuid.uuid4().hex, metadata=_dump_metadata(metadata), expires_at=expires_at
        )
        stored, encoding = _deflate(raw)
        parts: list[bytes] = []
        if len(stored) <= INLINE_LIMIT:
            head = dataclasses.replace(head, inline=stored, encoding=encoding)
        else:
            parts = [stored[i : i + CHUNK_BYTES] for i in range(0, len(stored), CHUNK_BYTES)]
            head = dataclasses.replace(head, encoding=encoding, chunks=len(parts))
        try:
            if parts:
                self._table.put_chunks(key, head.version, parts, expires_at)
            old = self._table.put_head(
                head,
                condition=condition,
                now=self._clock(),
            )
        except ArcturusError:
            if head.chunks:
                with contextlib.suppress(ArcturusError):
                    self._table.delete_chunks(key, head.version, head.chunks)
            raise
        self._drop_chunks_of(key, old, keep=head.version)
        return head.version

    def delete(self, key: str) -> None:
        """Remove ``key`` (and its chunks); deleting a missing key is not an error."""
        _check_key(key)
        self._drop_chunks_of(key, self._table.delete_head(key))

    def _drop_chunks_of(self, key: str, replaced: Head | None, *, keep: str | None = None) -> None:
        """Delete the chunks of the ``replaced`` head and of the version it had replaced in turn.

        The second is usually gone already; it is there when that writer's answer was lost and a later
        head overtook its retry. Deleting a chunk twice is harmless; the version being written
        (``keep``) is never touched.
        """
        if replaced is None:
            return
        for version, count in (
            (replaced.version, replaced.chunks),
            (replaced.replaced_version, replaced.replaced_chunks),
        ):
            if version and count and version != keep:
                self._table.delete_chunks(key, version, count)

    def increment(
        self, key: str, amount: int = 1, *, expiration: int | None = None, expiration_ttl: int | None = None
    ) -> int:
        """Atomically add ``amount`` to the counter at ``key`` and return the new count.

        One UpdateItem, never read-then-write. The expiry is fixed by the increment that creates the
        counter; later increments leave it alone. ``get(key)`` returns the count as text.
        """
        _check_key(key)
        if not isinstance(amount, int) or isinstance(amount, bool):
            raise ValueError("amount must be an integer")
        return self._table.increment(
            key,
            amount,
            version=uuid.uuid4().hex,
            expires_at=self._expires_at(expiration, expiration_ttl),
            now=self._clock(),
        )

    def _expires_at(self, expiration: int | None, expiration_ttl: int | None) -> int | None:
        """Absolute expiry in epoch seconds; ``expiration_ttl`` wins when both are given, as in Workers."""
        now = self._clock()
        if expiration_ttl is not None:
            if not _is_int(expiration_ttl) or expiration_ttl < MIN_EXPIRATION_TTL:
                raise ValueError(
                    f"expiration_ttl must be an integer of at least {MIN_EXPIRATION_TTL} seconds, "
                    f"not {expiration_ttl!r}"
                )
            return int(now) + expiration_ttl
        if expiration is not None:
            if not _is_int(expiration) or expiration < now + MIN_EXPIRATION_TTL:
                raise ValueError(
                    f"expiration must be epoch seconds at least {MIN_EXPIRATION_TTL} seconds in the future, "
                    f"not {expiration!r}"
                )
            return expiration
        return None

    # -- listing ---------------------------------------------------------------------------------------

    def list(
        self, prefix: str = "", limit: int = MAX_LIST_LIMIT, cursor: str | None = None
    ) -> dict[str, Any]:
        """Keys in UTF-8 order, ``limit`` at a time; pass the returned ``cursor`` for the next page.

        One Query per shard of each class the prefix can reach (16 for ``rate:``, more for ``""``),
        merged in key order; each shard is paged lazily, so a page reads about ``limit`` items plus one
        Query's worth per shard.
        """
        if not isinstance(prefix, str) or len(prefix.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
            raise ValueError(f"prefix must be a string of at most {MAX_KEY_BYTES} UTF-8 bytes")
        if not _is_int(limit) or not 1 <= limit <= MAX_LIST_LIMIT:
            raise ValueError(f"limit must be an integer from 1 to {MAX_LIST_LIMIT}, not {limit!r}")
        after = _decode_cursor(cursor, prefix) if cursor else None
        now = self._clock()
        page = max(10, min(MAX_LIST_LIMIT, -(-2 * limit // SHARDS)))
        shards = [
            self._table.iter_shard(cls, shard, prefix=prefix, after=after, page=page, now=now)
            for cls in classes_for(prefix)
            for shard in range(SHARDS)
        ]
        # The first Query of every shard is needed before the merge can yield anything: run them at once.
        with ThreadPoolExecutor(max_workers=SHARDS) as pool:
            heads = list(pool.map(lambda stream: next(stream, None), shards))
        streams: list[Iterator[ListedKey]] = [
            itertools.chain([first], rest) for first, rest in zip(heads, shards, strict=True) if first
        ]
        found = list(itertools.islice(heapq.merge(*streams, key=attrgetter("name")), limit + 1))
        keys = [_listed(entry) for entry in found[:limit]]
        result: dict[str, Any] = {"keys": keys, "list_complete": len(found) <= limit}
        if len(found) > limit:
            result["cursor"] = _encode_cursor(found[limit - 1].name, prefix)
        return result


# -- validation and encoding ---------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_key(key: object) -> None:
    if not isinstance(key, str) or not key:
        raise ValueError("key must be a non-empty string")
    if key in {".", ".."}:
        raise ValueError('key must not be "." or ".."')
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError as error:
        raise ValueError("key must be valid UTF-8") from error
    if size > MAX_KEY_BYTES:
        raise ValueError(f"key is {size} bytes; the limit is {MAX_KEY_BYTES} UTF-8 bytes")


def _check_type(type_: str) -> None:
    if type_ not in ("text", "json", "bytes"):
        raise ValueError(f'type must be "text", "json" or "bytes", not {type_!r}')


def _to_bytes(value: object) -> bytes:
    if isinstance(value, str):
        try:
            raw = value.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ValueError("value must be valid UTF-8 text") from error
    elif isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
    else:
        raise ValueError(f"value must be str or bytes, not {type(value).__name__} (json.dumps it first)")
    if len(raw) > MAX_VALUE_BYTES:
        raise ValueError(f"value is {len(raw)} bytes; the limit is {MAX_VALUE_BYTES} bytes (25 MiB)")
    return raw


def _dump_metadata(metadata: Any) -> str | None:
    if metadata is None:
        return None
    try:
        text = json.dumps(metadata, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"metadata must be JSON-serializable: {error}") from error
    if len(text.encode()) > MAX_METADATA_BYTES:
        raise ValueError(
            f"metadata is {len(text.encode())} bytes as JSON; the limit is {MAX_METADATA_BYTES} bytes"
        )
    return text


def _load_metadata(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _decode(raw: bytes, type_: ValueType) -> Any:
    if type_ == "bytes":
        return raw
    text = raw.decode("utf-8", errors="replace")
    return json.loads(text) if type_ == "json" else text


def _deflate(raw: bytes) -> tuple[bytes, str | None]:
    if len(raw) > COMPRESS_ABOVE:
        packed = zlib.compress(raw, 6)
        if len(packed) <= len(raw) * 0.9:
            return packed, "zlib"
    return raw, None


def _inflate(stored: bytes, encoding: str | None) -> bytes:
    return zlib.decompress(stored) if encoding == "zlib" else stored


def _listed(entry: ListedKey) -> dict[str, Any]:
    listed: dict[str, Any] = {"name": entry.name}
    if entry.expires_at is not None:
        listed["expiration"] = entry.expires_at
    if entry.metadata is not None:
        listed["metadata"] = json.loads(entry.metadata)
    return listed


def _encode_cursor(after: str, prefix: str) -> str:
    payload = json.dumps({"after": after, "prefix": prefix}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def _decode_cursor(cursor: str, prefix: str) -> str:
    try:
        payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        after, cursor_prefix = payload["after"], payload["prefix"]
    except (binascii.Error, ValueError, KeyError, TypeError) as error:
        raise ValueError("cursor is not one that list() returned") from error
    if cursor_prefix != prefix or not isinstance(after, str):
        raise ValueError("cursor belongs to a listing with another prefix")
    return after

"""DynamoDB item access for the KV namespace: the one module that speaks DynamoDB's item format.

Key design (the README's design section has the numbers):

- head item  ``pk = "<namespace>#<class>#<shard>"``, ``sk = <key>``: one per key, holding the value
  inline (or the chunk count and version), metadata and expiry. ``class`` is the key's class
  (``key_class``: ``rate`` for ``rate:...``), so IAM can grant a function some classes and not others
  (``dynamodb:LeadingKeys`` on ``<namespace>#<class>#*``). ``shard`` is a stable hash of the key modulo
  ``SHARDS``, so each class spreads over ``SHARDS`` partition-key values, and ``list`` is a Query per
  class and shard (sorted by ``sk``) merged in order; never a Scan.
- chunk items ``pk = "<namespace>#<class>#chunk#<key>"``, ``sk = "<version>#<index>"``: parts of a large
  value. They live under their own partition keys, so listings never see them.
- ``expires_at`` (epoch seconds) is the table's TTL attribute. DynamoDB deletes expired items lazily,
  days late, so every read here filters on it.
"""

from __future__ import annotations

import random
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from botocore.exceptions import ClientError

from arcturus.aws import store_errors
from arcturus.errors import StoreUnavailable, VersionConflict

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = [
    "ABSENT",
    "BATCH_GET_MAX",
    "BATCH_WRITE_MAX",
    "EXPIRED",
    "KEY_CLASSES",
    "OTHER_CLASS",
    "SHARDS",
    "TTL_ATTRIBUTE",
    "Condition",
    "Head",
    "Item",
    "KVTable",
    "ListedKey",
    "at_version",
    "class_partitions",
    "classes_for",
    "create_table",
    "idempotency_layout",
    "idempotency_partition",
    "key_class",
    "shard_of",
]

SHARDS = 16
"""Partition-key values a namespace's head items spread over. Fixed for the life of a table."""

TTL_ATTRIBUTE = "expires_at"
BATCH_GET_MAX = 100
BATCH_WRITE_MAX = 25
_BATCH_ATTEMPTS = 8

Item = dict[str, Any]


KEY_CLASSES: Final = frozenset({"ai", "cache", "contact", "data", "lease", "rate", "session"})
"""Key classes with partitions of their own: the text before a key's first ``:``."""
OTHER_CLASS: Final = "other"
"""The class of every other key (no ``:``, or a class not in ``KEY_CLASSES``)."""


def create_table(client: DynamoDBClient, table_name: str) -> None:
    """Create the KV table as template.yaml declares it (on-demand, ``pk``/``sk``, TTL on): for tests,
    the bench and tools; a deployed stack's table comes from the template."""
    client.create_table(
        TableName=table_name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    client.update_time_to_live(
        TableName=table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE}
    )


def shard_of(key: str) -> int:
    """A stable shard for ``key`` (crc32 is stable across processes, unlike ``hash``)."""
    return zlib.crc32(key.encode()) % SHARDS


def key_class(key: str) -> str:
    """The class whose partitions hold ``key``: ``rate`` for ``rate:chat:...``, else ``OTHER_CLASS``."""
    name, colon, _ = key.partition(":")
    return name if colon and name in KEY_CLASSES else OTHER_CLASS


def classes_for(prefix: str) -> list[str]:
    """The classes that may hold keys starting with ``prefix``, in a stable order."""
    name, colon, _ = prefix.partition(":")
    if colon and name in KEY_CLASSES:
        return [name]
    return [cls for cls in sorted(KEY_CLASSES) if f"{cls}:".startswith(prefix)] + [OTHER_CLASS]


def class_partitions(namespace: str, cls: str) -> str:
    """The partition-key pattern (IAM ``StringLike``) of every item of class ``cls``."""
    return f"{namespace}#{cls}#*"


def idempotency_partition(namespace: str, cls: str) -> str:
    """The partition key of class ``cls``'s idempotency records (Powertools), among that class's items."""
    return f"{namespace}#{cls}#idempotency"


def idempotency_layout(namespace: str, cls: str) -> dict[str, str]:
    """Where Powertools' ``DynamoDBPersistenceLayer`` keeps class ``cls``'s idempotency records in the KV
    table (its keyword arguments): one partition of that class (so IAM's grant for the class covers it),
    apart from the KV items, whose partition keys end in a two-digit shard or hold ``#chunk#``, and
    expiring through the table's TTL attribute."""
    return {
        "key_attr": "pk",
        "sort_key_attr": "sk",
        "static_pk_value": idempotency_partition(namespace, cls),
        "expiry_attr": TTL_ATTRIBUTE,
    }


class Condition(NamedTuple):
    """What a head write requires of the stored head: a condition expression over ``#ver``, ``#exp``
    (the TTL attribute) and ``:now``, and the values of its own placeholders."""

    expression: str
    values: Item


ABSENT: Final = Condition("attribute_not_exists(sk) OR #exp <= :now", {})
"""No head, or an expired one (DynamoDB deletes expired items days later)."""
EXPIRED: Final = Condition("#exp <= :now", {})
"""A head whose expiry has passed."""


def at_version(version: str) -> Condition:
    """A live head at ``version`` (compare-and-set)."""
    return Condition(
        "#ver = :expected AND (attribute_not_exists(#exp) OR #exp > :now)", {":expected": {"S": version}}
    )


@dataclass(frozen=True)
class Head:
    """What the head item of a key holds."""

    key: str
    version: str
    inline: bytes | None = None
    counter: int | None = None
    encoding: str | None = None
    chunks: int = 0
    metadata: str | None = None
    expires_at: int | None = None
    replaced_version: str | None = None
    """The version this head replaced when it was written, and that version's chunk count: a writer
    whose answer was lost learns from it, on its retry, whose chunks are now garbage."""
    replaced_chunks: int = 0

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    @classmethod
    def from_item(cls, item: Item) -> Head:
        return cls(
            key=item["sk"]["S"],
            version=item.get("ver", {}).get("S", ""),
            inline=item["v"]["B"] if "v" in item else None,
            counter=int(item["n"]["N"]) if "n" in item else None,
            encoding=item.get("enc", {}).get("S"),
            chunks=int(item["chunks"]["N"]) if "chunks" in item else 0,
            metadata=item.get("meta", {}).get("S"),
            expires_at=int(item[TTL_ATTRIBUTE]["N"]) if TTL_ATTRIBUTE in item else None,
            replaced_version=item.get("pver", {}).get("S") or None,
            replaced_chunks=int(item["pchunks"]["N"]) if "pchunks" in item else 0,
        )


@dataclass(frozen=True)
class ListedKey:
    """A key as a listing shows it (a projection of the head item)."""

    name: str
    expires_at: int | None
    metadata: str | None


class KVTable:
    """The items of one namespace in the KV table."""

    def __init__(self, client: DynamoDBClient, table_name: str, namespace: str) -> None:
        if not namespace or "#" in namespace:
            raise ValueError("namespace must be non-empty and must not contain '#'")
        self._client = client
        self._table = table_name
        self._namespace = namespace

    # -- keys ------------------------------------------------------------------------------------------

    def _head_key(self, key: str) -> Item:
        return {"pk": {"S": self.shard_pk(key_class(key), shard_of(key))}, "sk": {"S": key}}

    def shard_pk(self, cls: str, shard: int) -> str:
        """The partition key of one shard of class ``cls``'s head items."""
        return f"{self._namespace}#{cls}#{shard:02x}"

    def chunk_pk(self, key: str) -> str:
        """The partition key of ``key``'s chunk items."""
        return f"{self._namespace}#{key_class(key)}#chunk#{key}"

    def _chunk_key(self, key: str, version: str, index: int) -> Item:
        return {"pk": {"S": self.chunk_pk(key)}, "sk": {"S": f"{version}#{index:05d}"}}

    # -- head items ------------------------------------------------------------------------------------

    def get_head(self, key: str, *, consistent: bool) -> Head | None:
        with store_errors("GetItem"):
            response = self._client.get_item(
                TableName=self._table, Key=self._head_key(key), ConsistentRead=consistent
            )
        item = response.get("Item")
        return Head.from_item(item) if item else None

    def get_heads(self, keys: Sequence[str], *, consistent: bool) -> dict[str, Head]:
        """Heads of up to 100 distinct keys by BatchGetItem, retrying UnprocessedKeys."""
        items = self._batch_get([self._head_key(key) for key in keys], consistent=consistent)
        heads = (Head.from_item(item) for item in items)
        return {head.key: head for head in heads}

    def put_head(self, head: Head, *, condition: Condition | None = None, now: float = 0.0) -> Head | None:
        """Write ``head``; return the head it replaced (atomically, from the same request), or None.

        One UpdateItem that sets every attribute of ``head``, removes the others, and records the
        version it replaced (``pver``, ``pchunks``) from the item as it was. ``condition`` (``ABSENT``,
        ``at_version(v)``, ``EXPIRED``) is what the stored head must satisfy; a failed one
        raises VersionConflict.

        botocore resends a request whose answer was lost, so this request may already have landed. It
        never lands twice: it also requires that the item holds neither ``head``'s version nor a head
        that replaced it. When that fails, the item tells what happened: it holds ``head`` (the write
        is done; what it replaced is in its ``pver``), or a later head replaced ours (done as well, and
        that later writer deletes our chunks). Without this, a retry would return our own head as the
        one it replaced, or bring our value back over a later writer's.
        """
        attributes: dict[str, Item | None] = {
            "v": {"B": head.inline} if head.inline is not None else None,
            "n": {"N": str(head.counter)} if head.counter is not None else None,
            "enc": {"S": head.encoding} if head.encoding else None,
            "chunks": {"N": str(head.chunks)} if head.chunks else None,
            "meta": {"S": head.metadata} if head.metadata is not None else None,
            TTL_ATTRIBUTE: {"N": str(head.expires_at)} if head.expires_at is not None else None,
        }
        placeholder = {name: "#exp" if name == TTL_ATTRIBUTE else f"#{name}" for name in attributes}
        sets = [
            "#ver = :ver",
            "#pver = if_not_exists(#ver, :none)",
            "#pchunks = if_not_exists(#chunks, :zero)",
        ]
        sets += [f"{placeholder[name]} = :{name}" for name, value in attributes.items() if value is not None]
        removes = [placeholder[name] for name, value in attributes.items() if value is None]
        update = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        not_yet_written = (
            "attribute_not_exists(#ver) OR (#ver <> :ver AND (attribute_not_exists(#pver) OR #pver <> :ver))"
        )
        expression = f"({condition.expression}) AND ({not_yet_written})" if condition else not_yet_written
        names = {"#ver": "ver", "#pver": "pver", "#pchunks": "pchunks", "#chunks": "chunks"}
        names |= {placeholder[name]: name for name in attributes}
        names = {key: name for key, name in names.items() if key in update or key in expression}
        request_values: Item = {":ver": {"S": head.version}, ":none": {"S": ""}, ":zero": {"N": "0"}}
        request_values |= {f":{name}": value for name, value in attributes.items() if value is not None}
        request_values |= condition.values if condition else {}
        if ":now" in expression:
            request_values[":now"] = {"N": str(int(now))}
        with store_errors("UpdateItem"):
            try:
                old = self._client.update_item(
                    TableName=self._table,
                    Key=self._head_key(head.key),
                    UpdateExpression=update,
                    ConditionExpression=expression,
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=request_values,
                    ReturnValues="ALL_OLD",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                ).get("Attributes")
            except ClientError as error:
                found = error.response.get("Item")
                if found and found.get("ver", {}).get("S") == head.version:
                    landed = Head.from_item(found)
                    if landed.replaced_version is None:
                        return None
                    return Head(head.key, landed.replaced_version, chunks=landed.replaced_chunks)
                if found and found.get("pver", {}).get("S") == head.version:
                    return None
                raise
        return Head.from_item(old) if old else None

    def delete_head(self, key: str) -> Head | None:
        """Delete the head of ``key``; return it (None when there was none).

        A strongly consistent read names the version first and the delete is conditional on it, so a
        delete whose answer was lost (and that botocore resent) still knows which chunks to remove.
        """
        while True:
            seen = self.get_head(key, consistent=True)
            if seen is None:
                return None
            try:
                with store_errors("DeleteItem"):
                    try:
                        self._client.delete_item(
                            TableName=self._table,
                            Key=self._head_key(key),
                            ConditionExpression="ver = :seen",
                            ExpressionAttributeValues={":seen": {"S": seen.version}},
                            ReturnValuesOnConditionCheckFailure="ALL_OLD",
                        )
                    except ClientError as error:
                        if "Item" not in error.response:
                            return seen  # gone: our first attempt (or another deleter) removed it
                        raise
            except VersionConflict:
                continue  # rewritten since the read: delete what is there now
            return seen

    def increment(self, key: str, amount: int, *, version: str, expires_at: int | None, now: float) -> int:
        """Add ``amount`` to the counter at ``key`` in one UpdateItem and return the new count.

        The expiry is set by the first increment only, so a window ends on time however often it is
        hit. An item whose expiry has passed (but DynamoDB has not deleted yet) starts over at
        ``amount`` with a fresh expiry, by a conditional put: still no read-then-write.
        """
        update = "SET #n = if_not_exists(#n, :zero) + :amount, ver = :ver REMOVE v, enc"
        values: Item = {":zero": {"N": "0"}, ":amount": {"N": str(amount)}, ":ver": {"S": version}}
        if expires_at is not None:
            update = "SET #n = if_not_exists(#n, :zero) + :amount, ver = :ver, #exp = if_not_exists(#exp, :e)"
            update += " REMOVE v, enc"
            values[":e"] = {"N": str(expires_at)}
        live = _condition("attribute_not_exists(#exp) OR #exp > :now", now)
        live["ExpressionAttributeValues"] |= values
        live["ExpressionAttributeNames"]["#n"] = "n"
        try:
            with store_errors("UpdateItem"):
                response = self._client.update_item(
                    TableName=self._table,
                    Key=self._head_key(key),
                    UpdateExpression=update,
                    ReturnValues="UPDATED_NEW",
                    **live,
                )
            return int(response["Attributes"]["n"]["N"])
        except VersionConflict:
            # The item is expired but not yet deleted by DynamoDB: restart it, unless another writer
            # restarted it first (then the next increment counts on top of theirs).
            restart = Head(key=key, version=version, counter=amount, expires_at=expires_at)
            try:
                self.put_head(restart, condition=EXPIRED, now=now)
            except VersionConflict:
                return self.increment(key, amount, version=version, expires_at=expires_at, now=now)
            return amount

    # -- chunks ----------------------------------------------------------------------------------------

    def put_chunks(self, key: str, version: str, parts: Sequence[bytes], expires_at: int | None) -> None:
        def chunk(index: int, part: bytes) -> Item:
            item: Item = {**self._chunk_key(key, version, index), "v": {"B": part}}
            if expires_at is not None:
                item[TTL_ATTRIBUTE] = {"N": str(expires_at)}
            return item

        self._batch_write([{"PutRequest": {"Item": chunk(i, part)}} for i, part in enumerate(parts)])

    def get_chunks(self, key: str, version: str, count: int) -> list[bytes] | None:
        """The parts of one version in order, or None when any is gone (overwritten meanwhile)."""
        keys = [self._chunk_key(key, version, index) for index in range(count)]
        found = {item["sk"]["S"]: item["v"]["B"] for item in self._batch_get(keys, consistent=True)}
        parts = [found.get(k["sk"]["S"]) for k in keys]
        return None if any(part is None for part in parts) else [p for p in parts if p is not None]

    def delete_chunks(self, key: str, version: str, count: int) -> None:
        self._batch_write(
            [{"DeleteRequest": {"Key": self._chunk_key(key, version, index)}} for index in range(count)]
        )

    # -- listing ---------------------------------------------------------------------------------------

    def iter_shard(
        self, cls: str, shard: int, *, prefix: str, after: str | None, page: int, now: float
    ) -> Iterator[ListedKey]:
        """Live keys of one shard of class ``cls`` in ``sk`` order, fetched lazily ``page`` per Query."""
        condition = "pk = :pk AND begins_with(sk, :prefix)" if prefix else "pk = :pk"
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": condition,
            "ProjectionExpression": "sk, #exp, meta",
            "Limit": page,
            **_condition("attribute_not_exists(#exp) OR #exp > :now", now, filter_=True),
        }
        request["ExpressionAttributeValues"][":pk"] = {"S": self.shard_pk(cls, shard)}
        if prefix:
            request["ExpressionAttributeValues"][":prefix"] = {"S": prefix}
        start: Item | None = {"pk": {"S": self.shard_pk(cls, shard)}, "sk": {"S": after}} if after else None
        while True:
            if start:
                request["ExclusiveStartKey"] = start
            with store_errors("Query"):
                response = self._client.query(**request)
            for item in response.get("Items", []):
                yield ListedKey(
                    name=item["sk"]["S"],
                    expires_at=int(item[TTL_ATTRIBUTE]["N"]) if TTL_ATTRIBUTE in item else None,
                    metadata=item.get("meta", {}).get("S"),
                )
            start = response.get("LastEvaluatedKey")
            if not start:
                return

    # -- batches ---------------------------------------------------------------------------------------

    def _batch_get(self, keys: list[Item], *, consistent: bool) -> list[Item]:
        found: list[Item] = []
        for offset in range(0, len(keys), BATCH_GET_MAX):
            pending: Any = {
                self._table: {"Keys": keys[offset : offset + BATCH_GET_MAX], "ConsistentRead": consistent}
            }

            def call(request: Any) -> Any:
                with store_errors("BatchGetItem"):
                    response = self._client.batch_get_item(RequestItems=request)
                found.extend(response.get("Responses", {}).get(self._table, []))
                return response.get("UnprocessedKeys")

            _drain(pending, call)
        return found

    def _batch_write(self, requests: list[Item]) -> None:
        for offset in range(0, len(requests), BATCH_WRITE_MAX):
            pending: Any = {self._table: requests[offset : offset + BATCH_WRITE_MAX]}

            def call(request: Any) -> Any:
                with store_errors("BatchWriteItem"):
                    return self._client.batch_write_item(RequestItems=request).get("UnprocessedItems")

            _drain(pending, call)


def _condition(expression: str, now: float, *, filter_: bool = False) -> dict[str, Any]:
    """Request fields for a condition (or filter) expression over the TTL attribute and ``:now``."""
    return {
        "FilterExpression" if filter_ else "ConditionExpression": expression,
        "ExpressionAttributeNames": {"#exp": TTL_ATTRIBUTE},
        "ExpressionAttributeValues": {":now": {"N": str(int(now))}},
    }


def _drain(pending: Any, call: Callable[[Any], Any], *, sleep: Callable[[float], None] = time.sleep) -> None:
    """Repeat a batch call on what DynamoDB left unprocessed, backing off with full jitter."""
    for attempt in range(_BATCH_ATTEMPTS):
        pending = call(pending)
        if not pending:
            return
        sleep(random.uniform(0, min(1.0, 0.025 * 2**attempt)))  # noqa: S311 - jitter, not crypto
    raise StoreUnavailable("batch request still unprocessed after retries")

"""Move a KV table's items from the partition layout before key classes to the current one, once.

Before key classes, head items lived under ``<namespace>#<shard>``, chunks under
``<namespace>#chunk#<key>`` and the contact form's idempotency records under ``idempotency#contact``.
Run it once after upgrading a deployed stack (``python -m arcturus.relayout``, with ``KV_TABLE_NAME``
and AWS credentials as usual); the local runtime runs it on its own data at every start. It is
idempotent: a table already in the current layout has nothing to move.

Each item is copied to its new partition key (unless a newer write is there already), then the old one
is deleted; chunks move before heads, so no head ever points at chunks that are not there yet. It
Scans, once: the request path never does.
"""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from arcturus import aws
from arcturus.kv import DEFAULT_NAMESPACE
from arcturus.kvstore import KVTable, idempotency_partition, key_class
from arcturus.settings import settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["LEGACY_IDEMPOTENCY", "main", "relayout"]

LEGACY_IDEMPOTENCY = "idempotency#contact"


def relayout(client: DynamoDBClient, table: str, namespace: str = DEFAULT_NAMESPACE) -> int:
    """Move every item of the old layout; return how many moved."""
    store = KVTable(client, table, namespace)
    legacy_head = re.compile(rf"{re.escape(namespace)}#[0-9a-f]{{2}}")
    legacy_chunk = f"{namespace}#chunk#"
    chunks, heads = [], []
    for page in client.get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            pk = item["pk"]["S"]
            if pk.startswith(legacy_chunk):
                chunks.append((item, store.chunk_pk(pk.removeprefix(legacy_chunk))))
            elif legacy_head.fullmatch(pk):
                key = item["sk"]["S"]
                heads.append((item, store.shard_pk(key_class(key), int(pk[-2:], 16))))
            elif pk == LEGACY_IDEMPOTENCY:
                heads.append((item, idempotency_partition(namespace, "contact")))
    for item, new_pk in [*chunks, *heads]:
        _move(client, table, item, new_pk)
    return len(chunks) + len(heads)


def _move(client: DynamoDBClient, table: str, item: dict[str, Any], new_pk: str) -> None:
    moved = item | {"pk": {"S": new_pk}}
    try:
        client.put_item(TableName=table, Item=moved, ConditionExpression="attribute_not_exists(pk)")
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        # Written in the new layout since the upgrade: that newer item stays.
    client.delete_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]})


def main() -> int:
    configured = settings()
    if not configured.kv_table_name:
        print("relayout: set KV_TABLE_NAME (the stack's KVTableName output)", file=sys.stderr)
        return 2
    table, namespace = configured.kv_table_name, configured.kv_namespace
    moved = relayout(aws.dynamodb(), table, namespace)
    print(f"relayout: {moved} items moved to the key-class layout in {table}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

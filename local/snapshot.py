"""Keep the embedded tables' items on disk: moto forgets everything when the process ends.

Each table is one JSON file of items in DynamoDB's wire format (binary attributes base64), written
atomically whenever the table changed (checked every ``interval`` seconds) and at shutdown, and loaded
back with batch writes at start. Items whose TTL has passed are dropped on the way, as DynamoDB would.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from local.aws import EmbeddedAWS
from local.provision import Table

_BATCH = 25


def _to_wire(value: Any) -> Any:
    """A boto3 attribute value as JSON-safe wire format (bytes → base64 text)."""
    ((kind, inner),) = value.items()
    if kind == "B":
        return {"B": base64.b64encode(inner).decode()}
    if kind == "BS":
        return {"BS": [base64.b64encode(item).decode() for item in inner]}
    if kind == "M":
        return {"M": {key: _to_wire(item) for key, item in inner.items()}}
    if kind == "L":
        return {"L": [_to_wire(item) for item in inner]}
    return value


def _from_wire(value: Any) -> Any:
    ((kind, inner),) = value.items()
    if kind == "B":
        return {"B": base64.b64decode(inner)}
    if kind == "BS":
        return {"BS": [base64.b64decode(item) for item in inner]}
    if kind == "M":
        return {"M": {key: _from_wire(item) for key, item in inner.items()}}
    if kind == "L":
        return {"L": [_from_wire(item) for item in inner]}
    return value


def _expired(item: dict[str, Any], ttl_attribute: str | None, now: float) -> bool:
    expiry = item.get(ttl_attribute or "", {}).get("N")
    return expiry is not None and float(expiry) <= now


class TableSnapshots:
    """Save and restore every table of ``tables`` under ``directory`` (one ``<name>.json`` each)."""

    def __init__(self, aws: EmbeddedAWS, tables: list[Table], directory: Path) -> None:
        self._aws = aws
        self._tables = tables
        self._directory = directory
        self._saved_writes = -1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def path(self, table: Table) -> Path:
        return self._directory / f"{table.name}.json"

    def restore(self) -> dict[str, int]:
        """Load each table's saved items; ``{table name: items loaded}`` (absent when never saved)."""
        client = self._aws.client("dynamodb")
        loaded = {}
        now = time.time()
        for table in self._tables:
            if not self.path(table).exists():
                continue
            items = [
                {name: _from_wire(value) for name, value in item.items()}
                for item in json.loads(self.path(table).read_text())["items"]
                if not _expired(item, table.ttl_attribute, now)
            ]
            for start in range(0, len(items), _BATCH):
                requests = {
                    table.name: [{"PutRequest": {"Item": item}} for item in items[start : start + _BATCH]]
                }
                while requests:
                    requests = client.batch_write_item(RequestItems=requests).get("UnprocessedItems") or {}
            loaded[table.name] = len(items)
        self._saved_writes = self._aws.dynamodb_writes
        return loaded

    def save(self) -> None:
        """Write every table that changed since the last save."""
        writes = self._aws.dynamodb_writes
        if writes == self._saved_writes:
            return
        client = self._aws.client("dynamodb")
        now = time.time()
        self._directory.mkdir(parents=True, exist_ok=True)
        for table in self._tables:
            items = [
                {name: _to_wire(value) for name, value in item.items()}
                for page in client.get_paginator("scan").paginate(TableName=table.name)
                for item in page["Items"]
                if not _expired(item, table.ttl_attribute, now)
            ]
            path = self.path(table)
            partial = path.with_suffix(".json.tmp")
            partial.write_text(json.dumps({"table": table.name, "items": items}, sort_keys=True) + "\n")
            os.replace(partial, path)
        self._saved_writes = writes

    def start(self, interval: float = 2.0) -> None:
        """Save in the background every ``interval`` seconds while something changed."""
        self._thread = threading.Thread(target=self._run, args=(interval,), name="snapshots", daemon=True)
        self._thread.start()

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.save()
            except Exception as error:  # a failed save is retried next round
                print(f"local: saving the tables failed, retrying: {error}", flush=True)

    def stop(self) -> None:
        """Stop the background saver and save one last time."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.save()

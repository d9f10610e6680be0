"""Read a Workers KV namespace out of Miniflare's local state, as bulk-file entries (``kv bulk put
--from-miniflare DIR``).

- Miniflare 2 (``.mf/kv/<namespace>/``, wrangler 2's ``.wrangler/state/kv/<namespace>/``): one file per
  key holding the raw value, at the key's path with ``/ \\ : |`` as directories (and other characters
  sanitised); a ``<file>.meta.json`` beside it holds the original ``key``, ``expiration`` (seconds) and
  ``metadata`` when any of them is needed.
- Miniflare 3 (``.wrangler/state/v3/kv/``): a SQLite table ``_mf_entries(key, blob_id, expiration,
  metadata)`` per namespace, in ``miniflare-KVNamespaceObject/<id>.sqlite`` (``<namespace id>/db.sqlite``
  before September 2023), expirations in milliseconds, metadata as JSON text; each value is the raw
  file ``<namespace id>/blobs/<blob_id>``.

Entries that have expired, or expire within KV's minimum of 60 s, are left out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sqlite3
from pathlib import Path
from typing import Any

SIDECAR = ".meta.json"
MF3_OBJECTS = "miniflare-KVNamespaceObject"
MIN_LIFE_S = 60


class StateNotReadable(ValueError):
    """The directory is not Miniflare KV state this reader knows."""


def read_state(path: Path, now: float, namespace_id: str | None = None) -> list[dict[str, Any]]:
    """Bulk-file entries (values base64) of the namespace kept at ``path``."""
    if not path.is_dir():
        raise StateNotReadable(f"{path} is not a directory")
    databases = _mf3_databases(path)
    entries = _read_mf3(path, databases, namespace_id) if databases else _read_mf2(path)
    return [entry for entry in entries if _alive(entry, now)]


def _alive(entry: dict[str, Any], now: float) -> bool:
    expiration = entry.get("expiration")
    return expiration is None or expiration > now + MIN_LIFE_S


def _entry(key: str, value: bytes, expiration: int | None, metadata: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"key": key, "value": base64.b64encode(value).decode("ascii"), "base64": True}
    if expiration is not None:
        entry["expiration"] = expiration
    if metadata is not None:
        entry["metadata"] = metadata
    return entry


# -- Miniflare 2 ---------------------------------------------------------------------------------------


def _read_mf2(root: Path) -> list[dict[str, Any]]:
    entries = []
    for file in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.endswith(SIDECAR)):
        sidecar = file.with_name(file.name + SIDECAR)
        meta = json.loads(sidecar.read_text(encoding="utf-8")) if sidecar.is_file() else {}
        key = meta.get("key") or file.relative_to(root).as_posix()
        entries.append(_entry(key, file.read_bytes(), meta.get("expiration"), meta.get("metadata")))
    return entries


# -- Miniflare 3 ---------------------------------------------------------------------------------------


def _mf3_databases(path: Path) -> dict[str, Path]:
    """The KV databases under ``path`` by the name of their file (object id, or the namespace id)."""
    found = {db.stem: db for db in (path / MF3_OBJECTS).glob("*.sqlite")}
    found |= {db.parent.name: db for db in path.glob("*/db.sqlite")}
    return found


def object_id(namespace_id: str) -> str:
    """The file name Miniflare 3 gives a namespace's database: workerd's idFromName for the KV object."""
    key = hashlib.sha256(MF3_OBJECTS.encode()).digest()
    first = hmac.new(key, namespace_id.encode(), hashlib.sha256).digest()[:16]
    second = hmac.new(key, first, hashlib.sha256).digest()[:16]
    return (first + second).hex()


def _read_mf3(root: Path, databases: dict[str, Path], namespace_id: str | None) -> list[dict[str, Any]]:
    namespaces = {directory.name: directory for directory in root.iterdir() if (directory / "blobs").is_dir()}
    if namespace_id is None:
        if len(namespaces) != 1:
            raise StateNotReadable(
                f"{root} holds {len(namespaces)} namespaces ({', '.join(sorted(namespaces))}): "
                "name one with --namespace-id"
            )
        namespace_id = next(iter(namespaces))
    if namespace_id not in namespaces:
        raise StateNotReadable(f"{root} has no namespace {namespace_id!r} (no {namespace_id}/blobs)")
    database = databases.get(object_id(namespace_id)) or databases.get(namespace_id)
    if database is None:
        raise StateNotReadable(f"{root} has no database for namespace {namespace_id!r}")
    blobs = namespaces[namespace_id] / "blobs"
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        rows = connection.execute(
            "SELECT key, blob_id, expiration, metadata FROM _mf_entries ORDER BY key"
        ).fetchall()
    return [
        _entry(
            key,
            (blobs / blob_id).read_bytes(),
            None if expiration is None else int(expiration) // 1000,
            None if metadata is None else json.loads(metadata),
        )
        for key, blob_id, expiration, metadata in rows
    ]

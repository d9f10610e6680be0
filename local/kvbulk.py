"""``python -m local kv bulk put|get|delete``: wrangler's bulk JSON format against the KV namespace.

A bulk file is a JSON array of ``{"key", "value", "expiration"?, "expiration_ttl"?, "metadata"?,
"base64"?}`` (``value`` is UTF-8 text, or base64 of the bytes when ``base64`` is true;
``expiration_ttl`` wins over ``expiration``), as ``wrangler kv bulk put`` takes it; ``delete`` takes an
array of keys (strings or objects with ``key``). Every entry is checked against Workers KV's limits
before anything is written, and each bad one is reported by index and key. A put writes only what is
missing or different, so a rerun after an interruption resumes; ``--no-overwrite`` keeps existing
keys; ``--dry-run`` reports what would change and writes nothing. ``get`` writes a file ``put`` (ours
and wrangler's) takes back: text values as text, other bytes as base64. ``put --from-miniflare DIR``
takes its entries from Miniflare's local state instead (``local.miniflare``).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import dataclasses
import json
import sqlite3
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

from local.miniflare import StateNotReadable, read_state
from local.workers_kv import WorkersApi

if TYPE_CHECKING:
    from arcturus.kv import KVEntry, KVNamespace

T = TypeVar("T")
MAX_BULK_KEYS = 100
"""Keys per BatchGetItem (``KVNamespace.get_entries``' limit)."""

WORKERS = 8
"""Writes in flight at once (each is one DynamoDB request)."""
PROGRESS_EVERY = 500


class BulkFileInvalid(ValueError):
    """The file is not a bulk file; ``problems`` names each bad entry."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} bad entries")
        self.problems = problems


@dataclass(frozen=True)
class Pair:
    key: str
    value: bytes
    expiration: int | None
    expiration_ttl: int | None
    metadata: Any


def add_arguments(actions: Any, parents: list[argparse.ArgumentParser]) -> None:
    bulk = actions.add_parser("bulk", parents=parents, help="wrangler's bulk JSON format: put|get|delete")
    verbs = bulk.add_subparsers(dest="bulk_action", required=True, metavar="put|get|delete")
    put = verbs.add_parser("put", parents=parents, help="write every pair of a bulk file")
    put.add_argument("file", type=Path, nargs="?", help="a bulk JSON file")
    put.add_argument("--from-miniflare", type=Path, metavar="DIR", help="instead: Miniflare 2 or 3 KV state")
    put.add_argument("--namespace-id", help="with --from-miniflare 3: which namespace, when it holds several")
    put.add_argument("--dry-run", action="store_true", help="report what would change, write nothing")
    put.add_argument("--no-overwrite", action="store_true", help="keep keys that exist already")
    get = verbs.add_parser(
        "get", parents=parents, help="print a bulk file of keys (a file of keys, or --prefix)"
    )
    get.add_argument("file", type=Path, nargs="?", help="a JSON array of keys")
    get.add_argument("--prefix", help="every key starting with this instead")
    get.add_argument(
        "--from-workers",
        metavar="NAMESPACE_ID",
        help="read a live Workers KV namespace instead (CLOUDFLARE_API_TOKEN; --prefix narrows it)",
    )
    get.add_argument("--account-id", help="with --from-workers (default: $CLOUDFLARE_ACCOUNT_ID)")
    delete = verbs.add_parser("delete", parents=parents, help="delete every key of a JSON array of keys")
    delete.add_argument("file", type=Path)
    delete.add_argument("--dry-run", action="store_true", help="report what would be deleted")


def run(kv: KVNamespace, args: argparse.Namespace, out: IO[str] = sys.stdout) -> int:
    """Do the bulk action ``args`` asks; the exit status (1 when the file is refused, nothing written)."""
    try:
        if args.bulk_action == "put":
            pairs = parse_pairs(_source(args), _checker(kv))
            return _put(kv, [_sealed(pair) for pair in pairs], args)
        if args.bulk_action == "get":
            if (args.file is None) == (args.prefix is None):
                raise BulkFileInvalid(["bulk get takes a file of keys or --prefix, one of them"])
            keys = parse_keys(_load(args.file)) if args.file else _all_keys(kv, args.prefix)
            _write_file(export(kv, keys), out)
            return 0
        keys = parse_keys(_load(args.file))
        if args.dry_run:
            print(f"kv bulk delete: would delete {len(keys)} keys", file=sys.stderr)
            return 0
        _each(keys, kv.delete, "delete")
        return 0
    except BulkFileInvalid as error:
        for problem in error.problems:
            print(f"kv bulk: {problem}", file=sys.stderr)
        print(f"kv bulk: {len(error.problems)} bad entries; nothing was written", file=sys.stderr)
        return 1


def _write_file(entries: list[dict[str, Any]], out: IO[str]) -> None:
    json.dump(entries, out, indent=1, ensure_ascii=False)
    out.write("\n")


def run_from_workers(args: argparse.Namespace, out: IO[str] = sys.stdout) -> int:
    """``bulk get --from-workers NAMESPACE_ID``: no local or deployed table is touched."""
    if args.file is not None:
        print("kv bulk: bulk get --from-workers takes no file (--prefix narrows it)", file=sys.stderr)
        return 1
    api = WorkersApi.from_env(args.from_workers, args.account_id)
    _write_file(export_workers(api, args.prefix or ""), out)
    return 0


def _source(args: argparse.Namespace) -> Any:
    """The entries to put: the bulk file's, or those read out of Miniflare's state."""
    if (args.file is None) == (args.from_miniflare is None):
        raise BulkFileInvalid(["bulk put takes a bulk file or --from-miniflare DIR, one of them"])
    if args.file is not None:
        return _load(args.file)
    try:
        return read_state(args.from_miniflare, time.time(), args.namespace_id)
    except (StateNotReadable, OSError, ValueError, sqlite3.Error) as error:
        raise BulkFileInvalid([f"{args.from_miniflare}: {error}"]) from error


def _sealed(pair: Pair) -> Pair:
    value, metadata = as_stored(pair.key, pair.value, pair.metadata)
    return dataclasses.replace(pair, value=value, metadata=metadata)


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise BulkFileInvalid([f"{path}: not a JSON file ({error})"]) from error


def _checker(kv: KVNamespace) -> Callable[[Pair], None]:
    def check(pair: Pair) -> None:
        kv.check_put(
            pair.key,
            pair.value,
            expiration=pair.expiration,
            expiration_ttl=pair.expiration_ttl,
            metadata=pair.metadata,
        )
        as_stored(pair.key, pair.value, pair.metadata)

    return check


def as_stored(key: str, value: bytes, metadata: Any) -> tuple[bytes, Any]:
    """The value and metadata to write at ``key``: as given, but the user-roles document as the roles
    store writes it (checked as ``PUT /api/auth/roles`` checks it, so an import cannot store a document
    that breaks sign-in or locks every administrator out, and sealed, so no function validates it
    again)."""
    from arcturus.roles import ROLES_KEY, check_stored  # noqa: PLC0415 - the layer is on the path by now

    if key != ROLES_KEY:
        return value, metadata
    try:
        stored = check_stored(value)
    except ValueError as error:
        raise ValueError(f"the user-roles document is refused: {error}") from error
    return stored.text.encode(), stored.metadata


def parse_pairs(data: Any, check: Callable[[Pair], None]) -> list[Pair]:
    """The pairs of a bulk put file; BulkFileInvalid naming every bad entry (by index and key).

    ``check`` applies the namespace's own limits to one pair (ValueError naming the limit).
    """
    if not isinstance(data, list):
        raise BulkFileInvalid(["the file must hold a JSON array of {key, value} objects"])
    pairs, problems = [], []
    for index, entry in enumerate(data):
        where = f"entry {index}" + (f" (key {entry.get('key')!r})" if isinstance(entry, dict) else "")
        try:
            pair = _pair(entry)
            check(pair)
        except ValueError as error:
            problems.append(f"{where}: {error}")
            continue
        pairs.append(pair)
    if problems:
        raise BulkFileInvalid(problems)
    return pairs


def _pair(entry: Any) -> Pair:
    if not isinstance(entry, dict):
        raise ValueError("must be an object with key and value")
    unknown = set(entry) - {"key", "value", "expiration", "expiration_ttl", "metadata", "base64"}
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)}")
    if "key" not in entry or "value" not in entry:
        raise ValueError("needs both key and value")
    if not isinstance(entry["value"], str):
        raise ValueError("value must be a string (base64 of the bytes when base64 is true)")
    if entry.get("base64"):
        try:
            value = base64.b64decode(entry["value"], validate=True)
        except binascii.Error as error:
            raise ValueError(f"value is not base64 ({error})") from error
    else:
        value = entry["value"].encode("utf-8", "surrogatepass")
    return Pair(
        key=entry["key"],
        value=value,
        expiration=entry.get("expiration"),
        expiration_ttl=entry.get("expiration_ttl"),
        metadata=entry.get("metadata"),
    )


def parse_keys(data: Any) -> list[str]:
    """The keys of a bulk get/delete file: strings, or objects with ``key``."""
    if not isinstance(data, list):
        raise BulkFileInvalid(["the file must hold a JSON array of keys"])
    keys, problems = [], []
    for index, entry in enumerate(data):
        key = entry.get("key") if isinstance(entry, dict) else entry
        if not isinstance(key, str) or not key:
            problems.append(f"entry {index}: must be a key or an object with key")
        else:
            keys.append(key)
    if problems:
        raise BulkFileInvalid(problems)
    return keys


def _put(kv: KVNamespace, pairs: list[Pair], args: argparse.Namespace) -> int:
    changes = _changes(kv, pairs, keep_existing=args.no_overwrite)
    skipped = len(pairs) - len(changes)
    if args.dry_run:
        for pair in changes:
            print(f"would write {pair.key}", file=sys.stderr)
        print(f"kv bulk put: would write {len(changes)}, {skipped} unchanged or kept", file=sys.stderr)
        return 0
    _each(
        changes,
        lambda pair: kv.put(
            pair.key,
            pair.value,
            expiration=pair.expiration,
            expiration_ttl=pair.expiration_ttl,
            metadata=pair.metadata,
        ),
        "put",
    )
    print(f"kv bulk put: wrote {len(changes)}, {skipped} unchanged or kept", file=sys.stderr)
    return 0


def _changes(kv: KVNamespace, pairs: list[Pair], *, keep_existing: bool) -> list[Pair]:
    """The pairs that must be written: absent keys, and (unless kept) those whose value, metadata or
    absolute ``expiration`` differ.

    A pair with ``expiration_ttl`` counts as unchanged when its value and metadata are and the stored
    entry expires, so a rerun does not push back the expiry of what the interrupted run wrote.
    """
    last = {pair.key: pair for pair in pairs}  # a key given twice: the last one wins
    unique = list(last.values())
    stored = _read_entries(kv, list(last))

    def differs(pair: Pair) -> bool:
        entry = stored.get(pair.key)
        if entry is None:
            return True
        if keep_existing:
            return False
        if pair.expiration_ttl is not None:
            expiration_differs = entry.expiration is None
        else:
            expiration_differs = entry.expiration != pair.expiration
        return entry.value != pair.value or entry.metadata != pair.metadata or expiration_differs

    return [pair for pair in unique if differs(pair)]


def _each(items: list[Any], action: Callable[[Any], T], verb: str) -> list[T]:
    """``action`` on every item, a few at a time, with progress on stderr for long runs; the results."""
    started = time.monotonic()
    results = []
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        for done, result in enumerate(pool.map(action, items), start=1):
            results.append(result)
            if done % PROGRESS_EVERY == 0 or (done == len(items) and len(items) >= PROGRESS_EVERY):
                rate = done / max(time.monotonic() - started, 1e-6)
                print(f"kv bulk {verb}: {done}/{len(items)} ({rate:.0f}/s)", file=sys.stderr)
    return results


def _read_entries(kv: KVNamespace, keys: list[str]) -> dict[str, KVEntry]:
    """The stored entries of ``keys`` (as bytes), 100 keys per request, a few requests at once."""
    unique = list(dict.fromkeys(keys))
    batches = [unique[at : at + MAX_BULK_KEYS] for at in range(0, len(unique), MAX_BULK_KEYS)]
    found: dict[str, KVEntry] = {}
    for entries in _each(batches, lambda batch: kv.get_entries(batch, "bytes"), "read"):
        found |= entries
    return found


def _all_keys(kv: KVNamespace, prefix: str) -> list[str]:
    keys: list[str] = []
    cursor = None
    while True:
        page = kv.list(prefix=prefix, cursor=cursor)
        keys += [key["name"] for key in page["keys"]]
        cursor = page.get("cursor")
        if page["list_complete"] or not cursor:
            return keys


def export(kv: KVNamespace, keys: list[str]) -> list[dict[str, Any]]:
    """A bulk file of ``keys`` (missing ones left out): text as text, other bytes base64."""
    found = _read_entries(kv, keys)
    return [
        entry_of(key, stored.value, stored.expiration, stored.metadata)
        for key in dict.fromkeys(keys)
        if (stored := found.get(key)) is not None
    ]


def export_workers(api: WorkersApi, prefix: str) -> list[dict[str, Any]]:
    """A bulk file of a live Workers KV namespace (keys deleted while it runs left out)."""
    listed = api.keys(prefix)
    print(f"kv bulk get: {len(listed)} keys listed in the Workers namespace", file=sys.stderr)
    values = api.values([key["name"] for key in listed])
    return [
        entry_of(key["name"], value, key.get("expiration"), key.get("metadata"))
        for key, value in zip(listed, values, strict=True)
        if value is not None
    ]


def entry_of(key: str, value: bytes, expiration: int | None, metadata: Any) -> dict[str, Any]:
    """One bulk-file entry: UTF-8 text as text, other bytes as base64."""
    entry: dict[str, Any] = {"key": key}
    try:
        entry["value"] = value.decode("utf-8")
    except UnicodeDecodeError:
        entry |= {"value": base64.b64encode(value).decode("ascii"), "base64": True}
    if expiration is not None:
        entry["expiration"] = expiration
    if metadata is not None:
        entry["metadata"] = metadata
    return entry

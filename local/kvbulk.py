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
import json
import sqlite3
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from local.miniflare import StateNotReadable, read_state

if TYPE_CHECKING:
    from arcturus.kv import KVNamespace

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


def add_arguments(actions: Any, common: argparse.ArgumentParser) -> None:
    bulk = actions.add_parser("bulk", parents=[common], help="wrangler's bulk JSON format: put|get|delete")
    verbs = bulk.add_subparsers(dest="bulk_action", required=True, metavar="put|get|delete")
    put = verbs.add_parser("put", parents=[common], help="write every pair of a bulk file")
    put.add_argument("file", type=Path, nargs="?", help="a bulk JSON file")
    put.add_argument("--from-miniflare", type=Path, metavar="DIR", help="instead: Miniflare 2 or 3 KV state")
    put.add_argument("--namespace-id", help="with --from-miniflare 3: which namespace, when it holds several")
    put.add_argument("--dry-run", action="store_true", help="report what would change, write nothing")
    put.add_argument("--no-overwrite", action="store_true", help="keep keys that exist already")
    get = verbs.add_parser(
        "get", parents=[common], help="print a bulk file of keys (a file of keys, or --prefix)"
    )
    get.add_argument("file", type=Path, nargs="?", help="a JSON array of keys")
    get.add_argument("--prefix", help="every key starting with this instead")
    delete = verbs.add_parser("delete", parents=[common], help="delete every key of a JSON array of keys")
    delete.add_argument("file", type=Path)
    delete.add_argument("--dry-run", action="store_true", help="report what would be deleted")


def run(kv: KVNamespace, args: argparse.Namespace, out: IO[str] = sys.stdout) -> int:
    """Do the bulk action ``args`` asks; the exit status (1 when the file is refused, nothing written)."""
    try:
        if args.bulk_action == "put":
            return _put(kv, parse_pairs(_source(args), _checker(kv)), args)
        if args.bulk_action == "get":
            if (args.file is None) == (args.prefix is None):
                raise BulkFileInvalid(["bulk get takes a file of keys or --prefix, one of them"])
            listed = _listed(kv, parse_keys(_load(args.file))) if args.file else _all_keys(kv, args.prefix)
            json.dump(export(kv, listed), out, indent=1, ensure_ascii=False)
            out.write("\n")
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

    return check


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
    changes = [pair for pair in pairs if _differs(kv, pair, keep_existing=args.no_overwrite)]
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


def _differs(kv: KVNamespace, pair: Pair, *, keep_existing: bool) -> bool:
    """Whether ``pair`` must be written: absent, or (unless kept) a different value or metadata."""
    value, metadata = kv.get_with_metadata(pair.key, "bytes")
    if value is None:
        return True
    return not keep_existing and (value != pair.value or metadata != pair.metadata)


def _each(items: list[Any], action: Callable[[Any], Any], verb: str) -> None:
    """Run ``action`` on every item, a few at a time, with progress on stderr for long runs."""
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        for done, _ in enumerate(pool.map(action, items), start=1):
            if done % PROGRESS_EVERY == 0 or (done == len(items) and len(items) >= PROGRESS_EVERY):
                rate = done / max(time.monotonic() - started, 1e-6)
                print(f"kv bulk {verb}: {done}/{len(items)} ({rate:.0f}/s)", file=sys.stderr)


Listed = list[tuple[str, int | None]]
"""Key names with their expiration (epoch seconds, None for none)."""


def _all_keys(kv: KVNamespace, prefix: str) -> Listed:
    listed: Listed = []
    cursor = None
    while True:
        page = kv.list(prefix=prefix, cursor=cursor)
        listed += [(key["name"], key.get("expiration")) for key in page["keys"]]
        cursor = page.get("cursor")
        if page["list_complete"] or not cursor:
            return listed


def _listed(kv: KVNamespace, keys: list[str]) -> Listed:
    """``keys`` with their expirations (a key's own listing is the first one under itself as prefix)."""
    listed: Listed = []
    for key in keys:
        first = kv.list(prefix=key, limit=1)["keys"]
        listed.append((key, first[0].get("expiration") if first and first[0]["name"] == key else None))
    return listed


def export(kv: KVNamespace, listed: Listed) -> list[dict[str, Any]]:
    """A bulk file of the ``listed`` keys (missing ones left out): text as text, other bytes base64."""
    entries = []
    for key, expiration in listed:
        value, metadata = kv.get_with_metadata(key, "bytes")
        if value is None:
            continue
        entry: dict[str, Any] = {"key": key}
        try:
            entry["value"] = value.decode("utf-8")
        except UnicodeDecodeError:
            entry |= {"value": base64.b64encode(value).decode("ascii"), "base64": True}
        if expiration is not None:
            entry["expiration"] = expiration
        if metadata is not None:
            entry["metadata"] = metadata
        entries.append(entry)
    return entries

"""``python -m local kv get|put|list|delete``: the KV namespace from a shell, like ``wrangler kv key``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from local import deployed, kvbulk

if TYPE_CHECKING:
    from arcturus.kv import KVNamespace


def add_arguments(parser: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    """The kv actions; each takes the ``common`` options and the deployed stack's (``kv list --stack S``)."""
    target = argparse.ArgumentParser(add_help=False)
    deployed.add_arguments(target)
    deployed.add_arguments(parser)
    parents = [common, target]
    actions = parser.add_subparsers(dest="kv_action", required=True, metavar="get|put|list|delete|bulk")
    actions.add_parser("get", parents=parents, help="print the value at KEY").add_argument("key")
    put = actions.add_parser("put", parents=parents, help="store VALUE (or the content of --path) at KEY")
    put.add_argument("key")
    value = put.add_mutually_exclusive_group(required=True)
    value.add_argument("value", nargs="?")
    value.add_argument("--path", type=Path, help="read the value from this file")
    put.add_argument("--ttl", type=int, help="expire after this many seconds (at least 60)")
    listing = actions.add_parser("list", parents=parents, help="the keys: a table (TTL left, metadata)")
    listing.add_argument("--prefix", default="")
    listing.add_argument("--json", action="store_true", help="print the listing as JSON, for scripts")
    actions.add_parser("delete", parents=parents, help="remove KEY").add_argument("key")
    kvbulk.add_arguments(actions, parents)


def run(kv: KVNamespace, args: argparse.Namespace) -> int:
    """Do what ``args`` ask on ``kv``; the exit status (1 for a missing key or invalid input)."""
    if args.kv_action == "bulk":
        return kvbulk.run(kv, args)
    try:
        if args.kv_action == "get":
            value = kv.get(args.key)
            if value is None:
                print(f"kv: no value at {args.key!r}", file=sys.stderr)
                return 1
            print(value)
        elif args.kv_action == "put":
            value = args.path.read_bytes() if args.path is not None else args.value.encode()
            value, metadata = kvbulk.as_stored(args.key, value, None)
            kv.put(args.key, value, expiration_ttl=args.ttl, metadata=metadata)
        elif args.kv_action == "list":
            keys, cursor = [], None
            while True:
                page = kv.list(prefix=args.prefix, cursor=cursor)
                keys += page["keys"]
                cursor = page.get("cursor")
                if page["list_complete"] or not cursor:
                    break
            print(json.dumps(keys, indent=2) if args.json else _table(keys, time.time()))
        else:
            kv.delete(args.key)
    except ValueError as error:
        print(f"kv: {error}", file=sys.stderr)
        return 1
    return 0


def _table(keys: list[dict[str, Any]], now: float) -> str:
    """The listing for people: key, time left until it expires, metadata."""
    rows = [("KEY", "EXPIRES IN", "METADATA")]
    for key in keys:
        expiration = key.get("expiration")
        left = "-" if expiration is None else _duration(expiration - now)
        metadata = json.dumps(key["metadata"], separators=(",", ":")) if "metadata" in key else "-"
        rows.append((key["name"], left, metadata))
    widths = [max(len(row[column]) for row in rows) for column in range(2)]
    lines = [f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]}".rstrip() for row in rows]
    return "\n".join([*lines, f"({len(keys)} keys)"])


def _duration(seconds: float) -> str:
    """``3 d 4 h``, ``12 min``, ``45 s``: the largest two units that matter."""
    whole = max(0, int(seconds))
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min" if minutes else f"{secs} s"

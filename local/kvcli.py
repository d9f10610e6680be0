"""``python -m local kv get|put|list|delete``: the KV namespace from a shell, like ``wrangler kv key``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from local import kvbulk

if TYPE_CHECKING:
    from arcturus.kv import KVNamespace


def add_arguments(parser: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    """The kv actions; each takes the ``common`` options too (``kv list --data-dir D``)."""
    actions = parser.add_subparsers(dest="kv_action", required=True, metavar="get|put|list|delete|bulk")
    actions.add_parser("get", parents=[common], help="print the value at KEY").add_argument("key")
    put = actions.add_parser("put", parents=[common], help="store VALUE (or the content of --path) at KEY")
    put.add_argument("key")
    value = put.add_mutually_exclusive_group(required=True)
    value.add_argument("value", nargs="?")
    value.add_argument("--path", type=Path, help="read the value from this file")
    put.add_argument("--ttl", type=int, help="expire after this many seconds (at least 60)")
    listing = actions.add_parser("list", parents=[common], help="print the keys as JSON")
    listing.add_argument("--prefix", default="")
    actions.add_parser("delete", parents=[common], help="remove KEY").add_argument("key")
    kvbulk.add_arguments(actions, common)


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
            value = args.path.read_text() if args.path is not None else args.value
            kv.put(args.key, value, expiration_ttl=args.ttl)
        elif args.kv_action == "list":
            keys, cursor = [], None
            while True:
                page = kv.list(prefix=args.prefix, cursor=cursor)
                keys += page["keys"]
                cursor = page.get("cursor")
                if page["list_complete"] or not cursor:
                    break
            print(json.dumps(keys, indent=2))
        else:
            kv.delete(args.key)
    except ValueError as error:
        print(f"kv: {error}", file=sys.stderr)
        return 1
    return 0

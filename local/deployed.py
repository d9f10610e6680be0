"""The KV commands against a deployed stack: its table from ``--stack NAME``'s outputs, ``--table NAME``
or ``KV_TABLE_NAME``, with AWS credentials and region found as the AWS CLI finds them.

Nothing here imports moto or starts the local runtime; a line on stderr says which table is written.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from local import LocalError

if TYPE_CHECKING:
    from arcturus.kv import KVNamespace

TABLE_OUTPUT = "KVTableName"
"""The stack output naming the KV table (template.yaml's Outputs)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--stack``, ``--table``, ``--namespace``, ``--region``; no defaults, so that kv's actions can
    repeat them without clobbering a value given before the action."""
    where = parser.add_argument_group("a deployed stack (default: the local runtime's data)")
    for flag, help_ in (
        ("--stack", "the deployed stack whose KV table to use (its KVTableName output)"),
        ("--table", "the KV table by name (default: $KV_TABLE_NAME when set)"),
        ("--namespace", "the KV namespace (default: $KV_NAMESPACE or ARGOBOX_CACHE)"),
        ("--region", "default: the AWS CLI's (AWS_DEFAULT_REGION, the profile, ...)"),
    ):
        where.add_argument(flag, default=argparse.SUPPRESS, help=help_)


def wanted(args: argparse.Namespace) -> bool:
    """Whether the command asks for a deployed table rather than the local runtime's."""
    named = getattr(args, "stack", None) or getattr(args, "table", None)
    return bool(named or os.environ.get("KV_TABLE_NAME"))


def namespace(args: argparse.Namespace) -> KVNamespace:
    """The deployed KV namespace ``args`` name; LocalError saying why when it cannot be reached."""
    from arcturus.kv import DEFAULT_NAMESPACE, KVNamespace  # noqa: PLC0415 - the layer is on the path now

    session = boto3.session.Session(region_name=getattr(args, "region", None))
    if session.region_name is None:
        raise LocalError("no AWS region: pass --region or set AWS_DEFAULT_REGION")
    stack = getattr(args, "stack", None)
    table = getattr(args, "table", None) or os.environ.get("KV_TABLE_NAME", "")
    try:
        if stack:
            table = _table_of(session, stack)
        client = session.client("dynamodb")
        client.describe_table(TableName=table)
    except ClientError as error:
        raise LocalError(f"{error.response['Error'].get('Message') or error}") from error
    except BotoCoreError as error:  # no credentials, no network, ...
        raise LocalError(str(error)) from error
    name = getattr(args, "namespace", None) or os.environ.get("KV_NAMESPACE") or DEFAULT_NAMESPACE
    origin = f"stack {stack}, " if stack else ""
    print(f"kv: table {table} ({origin}region {session.region_name}), namespace {name}", file=sys.stderr)
    return KVNamespace(table, name, client=client)


def _table_of(session: boto3.session.Session, stack: str) -> str:
    described = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    outputs = {output["OutputKey"]: output["OutputValue"] for output in described.get("Outputs", [])}
    if TABLE_OUTPUT not in outputs:
        raise LocalError(f"stack {stack} has no {TABLE_OUTPUT} output: is it this project's stack?")
    return outputs[TABLE_OUTPUT]

"""The one-shot commands: ``token``, ``invoke``, ``warmup`` and ``kv``.

Each works against the running ``serve`` of the data directory when there is one (through its endpoints),
and otherwise on the persisted data with a short-lived deployment of its own, saved when it ends.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from local import LocalError, deployed, endpoint, kvbulk, kvcli
from local.authorizer import JwtConfig, SigningKey, token_config
from local.console import Console
from local.datadir import DataDir, ServeInfo
from local.scheduler import fire
from local.template import Template

if TYPE_CHECKING:
    from local.deployment import Deployment

EnvVars = dict[str, dict[str, str]]
"""Environment overrides in ``sam local``'s --env-vars format."""

_HTTP_TIMEOUT = 300.0


@contextmanager
def _target(
    template: Template,
    data: DataDir,
    *,
    env_vars: EnvVars | None = None,
    python: str = sys.executable,
    tables_only: bool = False,
) -> Iterator[ServeInfo | Deployment]:
    """The running serve, or a deployment of our own for the duration of the command."""
    info = data.claim()
    if info is not None:
        yield info
        return
    from local.deployment import Deployment  # noqa: PLC0415 - moto (1 s to import) only when needed

    deployment = Deployment(template, data, Console(sys.stderr), env_vars=env_vars, python=python)
    try:
        deployment.start(tables_only=tables_only)
        yield deployment
    finally:
        deployment.stop()
        data.unlock()


def _post(url: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(  # noqa: S310 - a loopback http URL
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=_HTTP_TIMEOUT) as response:  # noqa: S310 - loopback URL
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def token(template: Template, data: DataDir, email: str, ttl: int, port: int) -> int:
    """Print a token for ``email`` that the (running or next) serve of ``data`` accepts."""
    info = data.running()
    config = JwtConfig(info.issuer, info.audience) if info and info.issuer else token_config(template, port)
    print(f"token for {email}, valid {ttl} s, issuer {config.issuer}", file=sys.stderr)
    print(SigningKey(data.keys).token(config, email, ttl))
    return 0


def invoke(
    template: Template, data: DataDir, function: str, event: bytes, env_vars: EnvVars, *, python: str
) -> int:
    """Run ``function`` once on ``event`` and print its result, like ``sam local invoke``."""
    try:
        json.loads(event)
    except ValueError as error:
        print(f"invoke: the event is not JSON: {error}", file=sys.stderr)
        return 2
    with _target(template, data, env_vars=env_vars, python=python) as target:
        if isinstance(target, ServeInfo):
            if not target.api:
                raise LocalError("the running serve is --aws-only: it runs no functions")
            status, headers, body = _post(f"{target.api}/__local/invoke/{function}", event)
            failed = status != 200 or "x-function-error" in headers
        elif function not in target.pools:
            print(f"invoke: the template has no function {function}", file=sys.stderr)
            return 2
        else:
            outcome = target.pools[function].invoke(event)
            body, failed = outcome.payload, outcome.kind != "ok"
    print(body.decode(errors="replace"))
    return 1 if failed else 0


def warmup(template: Template, data: DataDir, env_vars: EnvVars, python: str) -> int:
    """Fire every schedule once now; 0 when every function succeeded."""
    with _target(template, data, env_vars=env_vars, python=python) as target:
        if isinstance(target, ServeInfo):
            if not target.api:
                raise LocalError("the running serve is --aws-only: it runs no functions")
            _, _, body = _post(f"{target.api}/__local/schedule", b"")
            results = json.loads(body)["fired"]
        else:
            log = Console(sys.stderr)
            results = [fire(target.pools, spec, log) for spec in template.schedules() if spec.enabled]
    for result in results:
        print(f"{result['function']} ({result['event']}): {result['outcome']} in {result['ms']} ms")
    if not results:
        print("warmup: the template has no enabled schedule", file=sys.stderr)
    return 0 if all(result["outcome"] == "ok" for result in results) else 1


def kv(template: Template, data: DataDir, args: argparse.Namespace) -> int:
    """``kv get|put|list|delete|bulk`` on the KV namespace the functions use, or a deployed stack's."""
    from arcturus.kv import KVNamespace  # noqa: PLC0415 - the layer is on the path once __main__ set it up

    if getattr(args, "from_workers", None):
        return kvbulk.run_from_workers(args)
    if deployed.wanted(args):
        return kvcli.run(deployed.namespace(args), args)

    with _target(template, data, tables_only=True) as target:
        if isinstance(target, ServeInfo):
            if not target.kv_table:
                print("kv: the running serve's template has no KV table", file=sys.stderr)
                return 2
            client = endpoint.client("dynamodb", target.aws)
            namespace = KVNamespace(target.kv_table, target.kv_namespace, client=client)
        else:
            table, name = target.kv_location()
            namespace = KVNamespace(table, name, client=target.aws.client("dynamodb"))
        return kvcli.run(namespace, args)

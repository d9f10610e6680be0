"""``python -m local serve``: the whole application on this machine until Ctrl-C or SIGTERM.

Start order: the data directory is taken, the demo upstream starts (unless ``SourcesConfig`` is given),
the embedded AWS and the template's resources come up with the saved data, then the API listener and
the schedules; ``serve.json`` is published last, so a command that finds it can rely on everything
being ready. Stopping runs the same steps backwards and saves.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass
from typing import Any

from local import ROOT, LocalError
from local.authorizer import JwtAuthorizer, SigningKey, jwt_configs, token_config
from local.console import Console
from local.cors import Cors
from local.datadir import DataDir, ServeInfo
from local.demo_upstream import DemoServer, demo_sources_config, start_demo_upstream
from local.deployment import Deployment
from local.gateway import Gateway, GatewayServer, is_loopback_name
from local.openapi import DOCUMENT_PATH, ServedDocument
from local.routes import RouteTable
from local.scheduler import Scheduler, fire
from local.template import Template
from local.workers import environment_text

SOURCES_PARAMETER = "SourcesConfig"
"""The template parameter holding the sources document (the demo upstream's when not given)."""


@dataclass(frozen=True)
class ServeOptions:
    host: str
    port: int
    aws_port: int
    aws_only: bool
    max_workers: int
    schedule_scale: float
    env_vars: dict[str, dict[str, str]]
    python: str


def _wait_for_signal() -> None:
    """Sleep until Ctrl-C or SIGTERM.

    The handler only appends to a list: a handler that takes a lock (``Event.set``) can deadlock with
    the main thread it interrupted while that thread was inside the same lock.
    """
    received: list[int] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda number, _: received.append(number))
    while not received:
        time.sleep(0.2)


def serve(template: Template, data: DataDir, options: ServeOptions) -> None:
    """Run until a signal arrives; DataDirBusy when another process has the data directory."""
    data.lock()
    log = Console()
    # Under sam local the functions run in containers: the demo upstream listens where the embedded AWS
    # does, and they reach this machine as host.docker.internal.
    if options.aws_only:
        template, demo = _with_demo_upstream(template, log, options.host, "host.docker.internal")
    else:
        template, demo = _with_demo_upstream(template, log, "127.0.0.1", "127.0.0.1")
    deployment = Deployment(
        template,
        data,
        log,
        max_workers=options.max_workers,
        aws_host=options.host if options.aws_only else "127.0.0.1",
        aws_port=options.aws_port,
        env_vars=options.env_vars,
        python=options.python,
    )
    server: GatewayServer | None = None
    scheduler: Scheduler | None = None
    try:
        deployment.start()
        if options.aws_only:
            _announce_aws_only(deployment, data, options)
        else:
            server, scheduler = _start_api(template, deployment, data, options, log)
        _wait_for_signal()
    finally:
        log("local: stopping")
        if scheduler is not None:
            scheduler.stop()
        if server is not None:
            server.stop()
        deployment.stop()
        if demo is not None:
            demo.shutdown()
        data.unlock()
        log(f"local: stopped; data saved in {data.path}")


def _with_demo_upstream(
    template: Template, log: Console, host: str, functions_see: str
) -> tuple[Template, DemoServer | None]:
    """Point the sources at the demo upstream unless ``SourcesConfig`` was given: status, services and
    the dashboard then show data without any real infrastructure. It listens on ``host``; the functions
    reach it by the name ``functions_see``."""
    if SOURCES_PARAMETER not in template.parameters or SOURCES_PARAMETER in template.overrides:
        return template, None
    server, _ = start_demo_upstream(host=host)
    url = f"http://{functions_see}:{server.server_address[1]}"
    log(f"local: demo upstream on {url} is the sources (override {SOURCES_PARAMETER} for real ones)")
    sources = json.dumps(demo_sources_config(url), separators=(",", ":"))
    return Template(template.path, template.overrides | {SOURCES_PARAMETER: sources}), server


def _start_api(
    template: Template, deployment: Deployment, data: DataDir, options: ServeOptions, log: Console
) -> tuple[GatewayServer, Scheduler]:
    key = SigningKey(data.keys)
    authorizers = {
        name: JwtAuthorizer(key, config) for name, config in jwt_configs(template, options.port).items()
    }
    resolver = template.resolver(deployment.resources.refs, deployment.resources.attrs)
    cors = {
        api: Cors(resolver.resolve(properties["CorsConfiguration"]))
        for api, properties in template.http_apis().items()
        if properties.get("CorsConfiguration")
    }
    routes = template.routes()
    schedules = template.schedules()
    gateway = Gateway(
        RouteTable(routes),
        deployment.pools,
        authorizers=authorizers,
        cors=cors,
        schedules=schedules,
        log=log,
        document=ServedDocument(template.path),
    )
    try:
        server = GatewayServer(gateway, options.host, options.port)
    except OSError as error:
        raise LocalError(f"cannot listen on {options.host}:{options.port}: {error.strerror}") from None
    server.start()
    scheduler = Scheduler(schedules, lambda spec: fire(deployment.pools, spec, log), options.schedule_scale)
    scheduler.start()
    api = f"http://127.0.0.1:{server.port}"
    config = token_config(template, options.port)
    table, namespace = _kv_location(deployment)
    data.publish(
        ServeInfo(os.getpid(), api, deployment.aws.endpoint, config.issuer, config.audience, table, namespace)
    )
    lines = [
        f"local: API on http://{options.host}:{server.port}, {len(routes)} routes:",
        *(
            f"  {route.method:6} {route.path:28} {route.function}{'  (JWT)' if route.authorizer else ''}"
            for route in routes
        ),
        *(f"  {spec.expression:20} {spec.function} (schedule)" for spec in schedules if spec.enabled),
        f"local: embedded AWS on {deployment.aws.endpoint}, data in {data.path}",
        f"local: JWT issuer {config.issuer}, audience {','.join(config.audience)}",
        *(f"local: secret {name} = {value}" for name, value in deployment.resources.secret_values.items()),
        f"local: OpenAPI document on http://{options.host}:{server.port}{DOCUMENT_PATH}",
        "local: token: python -m local token --email admin@example.com | tail -1",
        "local: look: every request and the functions' logs print here; the KV data:"
        " python -m local kv list [--prefix cache:] (--json for scripts), python -m local kv get KEY",
        "local: ready; Ctrl-C stops (the data is saved)",
    ]
    for line in lines:
        log(line)
    return server, scheduler


def _kv_location(deployment: Deployment) -> tuple[str, str]:
    try:
        return deployment.kv_location()
    except LookupError:
        return "", ""


def exposure_warning(host: str, port: str) -> list[str]:
    """What to tell a developer whose embedded AWS listens on ``host``: nothing on loopback, a note on
    one other address (the Docker bridge, for sam local), a loud warning on every interface."""
    if is_loopback_name(host):
        return []
    exposed = (
        "has NO authentication: whoever reaches it can read and rewrite the roles document, the KV data "
        "and the warmup secret"
    )
    if host not in ("0.0.0.0", "::"):
        return [f"local: the embedded AWS on {host}:{port} {exposed}; keep {host} private."]
    rule = "local: WARNING " + "=" * 90
    return [
        rule,
        f"local: WARNING the embedded AWS listens on EVERY interface ({host}:{port}) and {exposed}.",
        "local: WARNING For sam local, listen on the Docker bridge only (docker network inspect bridge):",
        "local: WARNING usually --host 172.17.0.1.",
        rule,
    ]


def _announce_aws_only(deployment: Deployment, data: DataDir, options: ServeOptions) -> None:
    """Write the env-vars file ``sam local`` needs to reach this endpoint from its containers."""
    port = deployment.aws.endpoint.rpartition(":")[2]
    endpoint = f"http://host.docker.internal:{port}"
    env_vars: dict[str, Any] = {"Parameters": {"AWS_ENDPOINT_URL": endpoint}}
    for logical_id in deployment.template.functions():
        variables = {
            name: environment_text(value) for name, value in deployment.variables(logical_id).items()
        }
        env_vars[logical_id] = variables | {"AWS_ENDPOINT_URL": endpoint}
    path = data.path / "sam-env.json"
    path.write_text(json.dumps(env_vars, indent=2) + "\n")
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    deployment.log(f"local: embedded AWS only, on {options.host}:{port}, data in {data.path}")
    for line in exposure_warning(options.host, port):
        deployment.log(line)
    deployment.log(
        f"local: sam local start-api --env-vars {shown} --add-host host.docker.internal:host-gateway"
    )
    table, namespace = _kv_location(deployment)
    data.publish(ServeInfo(os.getpid(), "", deployment.aws.endpoint, "", [], table, namespace))
    deployment.log("local: ready; Ctrl-C stops (the data is saved)")

"""API Gateway's HTTP API on a local port: route, authorize, invoke the function, answer like the service.

``GET /api/openapi.json`` answers the API's OpenAPI document when no template route claims that path,
as an API Gateway export would. Also three endpoints under ``/__local/`` (a path no template route can
have) for the ``local`` commands, answered only to loopback clients that name this machine and come
from no web page (see ``_not_from_a_local_command``): ``GET health``,
``POST invoke/<LogicalId>`` (body: the event) and ``POST schedule`` (fire every schedule once, for
``warmup``).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import secrets
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from local.authorizer import JwtAuthorizer
from local.console import Console
from local.cors import Cors
from local.httpserver import BodyError, ListenerServer, declared_length, read_body
from local.openapi import DOCUMENT_PATH, ServedDocument
from local.payload import HttpRequest, HttpResponse, InvalidResult, build_event, map_result
from local.routes import RouteTable
from local.scheduler import fire
from local.template import ScheduleSpec
from local.workers import FunctionPool, Outcome

MAX_BODY = 10 * 1024 * 1024
"""API Gateway's request payload limit."""
ADMIN_PREFIX = "/__local/"
INTERNAL_ERROR = {"message": "Internal Server Error"}


def is_loopback_name(host: str) -> bool:
    """``localhost`` or a loopback address (``127.0.0.5``, ``[::1]``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _not_from_a_local_command(request: HttpRequest) -> str | None:
    """Why ``request`` may not use the ``/__local/`` endpoints, or None.

    The peer must be on loopback. That alone would let a web page open in the developer's browser reach
    them (its fetch comes from loopback too): a request naming another host (DNS rebinding) or carrying
    an Origin that is not this machine (a cross-site fetch or form) is refused. The ``local`` commands
    send neither.
    """
    if not ipaddress.ip_address(request.source_ip).is_loopback:
        return "the local runtime's own endpoints are for loopback"
    host = urlsplit(f"//{request.header('host') or ''}").hostname or ""
    if not is_loopback_name(host):
        return f"the local runtime's own endpoints answer only requests for this machine, not {host!r}"
    origin = request.header("origin")
    if origin is not None and not is_loopback_name(urlsplit(origin).hostname or ""):
        return f"the local runtime's own endpoints refuse requests from web pages ({origin})"
    return None


def _request_id() -> str:
    """An id shaped like API Gateway's (``apigw-requestid``)."""
    return base64.b64encode(secrets.token_bytes(12)).decode().rstrip("=")[:14] + "="


class Gateway:
    """What happens to one request, independent of the socket it came on."""

    def __init__(
        self,
        routes: RouteTable,
        pools: dict[str, FunctionPool],
        *,
        authorizers: dict[tuple[str, str], JwtAuthorizer],
        cors: dict[str, Cors],
        schedules: list[ScheduleSpec],
        log: Console,
        document: ServedDocument | None = None,
    ) -> None:
        self._routes = routes
        self._document = document
        self._pools = pools
        self._authorizers = authorizers
        self._cors = cors
        self._schedules = schedules
        self.log = log

    def handle(self, request: HttpRequest) -> tuple[HttpResponse, str]:
        """The response, and what served it (for the log line)."""
        if request.raw_path.startswith(ADMIN_PREFIX):
            return self._admin(request), "local"
        if (
            self._document is not None
            and request.method in ("GET", "HEAD")
            and request.raw_path == DOCUMENT_PATH
            and self._routes.match(request.method, request.raw_path) is None
        ):
            return self._document.response(), "local"
        request_id = _request_id()
        response, served_by = self._route(request, request_id)
        response.headers.append(("apigw-requestid", request_id))
        return response, served_by

    def _route(self, request: HttpRequest, request_id: str) -> tuple[HttpResponse, str]:
        match = self._routes.match(request.method, request.raw_path)
        if Cors.is_preflight(request):
            cors = self._preflight_cors(request)
            if cors is not None:
                return cors.preflight(request), "cors"
        if match is None:
            detail = f"no route matches {request.method} {request.raw_path}"
            return HttpResponse.problem(404, "Not Found", detail), "-"
        route = match.route
        claims = scopes = None
        if route.authorizer is not None:
            verdict = self._authorizers[(route.api, route.authorizer)].check(
                request.header("authorization"), route.scopes
            )
            if verdict.error is not None:
                response = HttpResponse.json(verdict.status, verdict.error)
                if verdict.status == 401:
                    response.headers.append(("www-authenticate", 'Bearer error="invalid_token"'))
                return response, "JWT authorizer"
            claims, scopes = verdict.claims, verdict.scopes
        event = build_event(request, match, claims, scopes, request_id)
        outcome = self._pools[route.function].invoke(json.dumps(event).encode())
        response = self._respond(outcome, route.function)
        cors = self._cors.get(route.api)
        if cors is not None:
            cors.apply(request, response)
        return response, outcome.worker + (" (cold)" if outcome.cold else "")

    def _preflight_cors(self, request: HttpRequest) -> Cors | None:
        """The CORS settings of the API the preflight asks about (None: the API has none)."""
        target = self._routes.match(request.header("access-control-request-method") or "", request.raw_path)
        if target is None:
            return next(iter(self._cors.values()), None)
        return self._cors.get(target.route.api)

    def _respond(self, outcome: Outcome, function: str) -> HttpResponse:
        if outcome.kind == "ok":
            try:
                return map_result(outcome.body)
            except InvalidResult as error:
                self.log(f"[{outcome.worker}] invalid response for API Gateway: {error}")
                return HttpResponse.json(502, INTERNAL_ERROR)
        if outcome.kind == "timeout":
            timeout = self._pools[function].spec.timeout
            return HttpResponse.problem(
                504, "Gateway Timeout", f"{function} did not answer within {timeout:g} s"
            )
        if outcome.kind == "throttled":
            return HttpResponse.problem(503, "Service Unavailable", f"every worker of {function} stayed busy")
        return HttpResponse.json(502, INTERNAL_ERROR)

    # -- the local commands' endpoints ---------------------------------------------------------------

    def _admin(self, request: HttpRequest) -> HttpResponse:
        refusal = _not_from_a_local_command(request)
        if refusal is not None:
            return HttpResponse.problem(403, "Forbidden", refusal)
        action = request.raw_path[len(ADMIN_PREFIX) :]
        if request.method == "GET" and action == "health":
            return HttpResponse.json(200, {"status": "ok"})
        if request.method == "POST" and action.startswith("invoke/"):
            return self._admin_invoke(action.removeprefix("invoke/"), request.body)
        if request.method == "POST" and action == "schedule":
            results = [fire(self._pools, spec, self.log) for spec in self._schedules if spec.enabled]
            ok = all(result["outcome"] == "ok" for result in results)
            return HttpResponse.json(200 if ok else 502, {"ok": ok, "fired": results})
        return HttpResponse.problem(
            404, "Not Found", f"no local endpoint {request.method} {request.raw_path}"
        )

    def _admin_invoke(self, function: str, event: bytes) -> HttpResponse:
        """Run one function on an event: the result as the body, ``X-Function-Error`` on failure."""
        if function not in self._pools:
            return HttpResponse.problem(404, "Not Found", f"the template has no function {function}")
        try:
            json.loads(event or b"{}")
        except ValueError:
            return HttpResponse.problem(400, "Bad Request", "the event is not JSON")
        outcome = self._pools[function].invoke(event or b"{}")
        response = HttpResponse(200, [("Content-Type", "application/json")], outcome.payload)
        if outcome.kind != "ok":
            response.headers.append(("X-Function-Error", outcome.kind))
        return response


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    default_request_version = "HTTP/1.0"  # errors before the version is parsed still get a status line
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall
    server: GatewayServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: one line per request is printed by ``_serve``."""

    def handle_expect_100(self) -> bool:
        """Refuse an announced oversized body before the client sends it."""
        try:
            too_large = (declared_length(self) or 0) > MAX_BODY
        except BodyError:
            too_large = False
        if too_large:
            self._finish(
                HttpResponse.problem(413, "Payload Too Large", "API Gateway takes at most 10 MB"), close=True
            )
            return False
        return super().handle_expect_100()

    def _serve(self) -> None:
        started = time.monotonic()
        gateway = self.server.gateway
        served_by = "-"
        try:
            request = HttpRequest(
                self.command,
                self.path,
                list(self.headers.items()),
                read_body(self, MAX_BODY),
                self.client_address[0],
                self.request_version,
            )
            response, served_by = gateway.handle(request)
        except BodyError as error:
            response = HttpResponse.problem(
                error.status, "Payload Too Large" if error.status == 413 else "Bad Request", error.detail
            )
            self.close_connection = True
        except Exception:  # nothing a client sends may take the server down
            gateway.log(f"local: error while serving {self.command} {self.path}:\n{traceback.format_exc()}")
            response = HttpResponse.json(500, INTERNAL_ERROR)
        self._finish(response, close=self.close_connection)
        milliseconds = round((time.monotonic() - started) * 1000)
        gateway.log(f"{self.command} {self.path} {response.status} {milliseconds}ms {served_by}")

    def _finish(self, response: HttpResponse, *, close: bool) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding", "date", "server"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _serve


class GatewayServer(ListenerServer):
    def __init__(self, gateway: Gateway, host: str, port: int) -> None:
        super().__init__((host, port), _Handler)
        self.gateway = gateway
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, name="gateway", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

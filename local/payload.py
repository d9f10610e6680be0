"""API Gateway HTTP API payload format 2.0: the event a function gets, and its result back as HTTP.

Both directions follow what the service does: headers lower-cased with repeated ones joined by commas,
cookies in their own list, query parameters decoded and joined, binary bodies base64-encoded; a result
with a ``statusCode`` is taken field by field, any other JSON value becomes a 200 (a string as text,
the rest as JSON), and anything malformed is the integration's failure (the caller answers 502).
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from local.intrinsics import ACCOUNT_ID
from local.provision import API_ID
from local.routes import Match

_TEXT_TYPES = frozenset({"application/json", "application/javascript", "application/xml"})


@dataclass
class HttpRequest:
    method: str
    target: str
    """The request target as sent: path and query, still percent-encoded."""
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str
    protocol: str = "HTTP/1.1"

    def header(self, name: str) -> str | None:
        """The header's values joined by commas, as API Gateway joins them; None when absent."""
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        return ",".join(values) if values else None

    @property
    def raw_path(self) -> str:
        return urlsplit(self.target).path

    @property
    def raw_query(self) -> str:
        return urlsplit(self.target).query


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @classmethod
    def json(cls, status: int, body: Any, content_type: str = "application/json") -> HttpResponse:
        return cls(status, [("Content-Type", content_type)], json.dumps(body).encode())

    @classmethod
    def problem(cls, status: int, title: str, detail: str) -> HttpResponse:
        """RFC 9457 problem details, the project's error format."""
        body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
        return cls.json(status, body, "application/problem+json")


class InvalidResult(ValueError):
    """The function's result is not something API Gateway can turn into a response."""


def is_text(content_type: str | None) -> bool:
    """Whether API Gateway passes a body of this type as text (otherwise it base64-encodes it)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return (
        media.startswith("text/") or media in _TEXT_TYPES or media.endswith("+json") or media.endswith("+xml")
    )


def _joined(pairs: list[tuple[str, str]]) -> dict[str, str]:
    joined: dict[str, str] = {}
    for name, value in pairs:
        joined[name] = f"{joined[name]},{value}" if name in joined else value
    return joined


def build_event(
    request: HttpRequest,
    match: Match,
    claims: dict[str, str] | None,
    scopes: list[str] | None,
    request_id: str,
) -> dict[str, Any]:
    """The payload 2.0 event API Gateway would send for ``request`` on ``match``."""
    now = time.time()
    cookies = [
        cookie.strip()
        for name, value in request.headers
        if name.lower() == "cookie"
        for cookie in value.split(";")
        if cookie.strip()
    ]
    headers = _joined([(name.lower(), value) for name, value in request.headers if name.lower() != "cookie"])
    forwarded = headers.get("x-forwarded-for")
    headers["x-forwarded-for"] = f"{forwarded}, {request.source_ip}" if forwarded else request.source_ip
    headers.setdefault("x-forwarded-proto", "http")
    domain = headers.get("host", "127.0.0.1")
    headers.setdefault("x-forwarded-port", domain.rpartition(":")[2] if ":" in domain else "80")
    headers.setdefault("x-amzn-trace-id", f"Root=1-{int(now):08x}-{secrets.token_hex(12)}")
    context: dict[str, Any] = {
        "accountId": ACCOUNT_ID,
        "apiId": API_ID,
        "domainName": domain,
        "domainPrefix": domain.split(".", 1)[0],
        "http": {
            "method": request.method,
            "path": request.raw_path,
            "protocol": request.protocol,
            "sourceIp": request.source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": match.route_key,
        "stage": "$default",
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
        "timeEpoch": int(now * 1000),
    }
    if claims is not None:
        context["authorizer"] = {"jwt": {"claims": claims, "scopes": scopes}}
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": match.route_key,
        "rawPath": request.raw_path,
        "rawQueryString": request.raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    if request.raw_query:
        event["queryStringParameters"] = _joined(parse_qsl(request.raw_query, keep_blank_values=True))
    event["requestContext"] = context
    if match.path_parameters:
        event["pathParameters"] = match.path_parameters
    event["isBase64Encoded"] = False
    if request.body:
        text = _utf8(request.body) if is_text(headers.get("content-type")) else None
        if text is None:
            event["body"] = base64.b64encode(request.body).decode()
            event["isBase64Encoded"] = True
        else:
            event["body"] = text
    return event


def _utf8(body: bytes) -> str | None:
    try:
        return body.decode()
    except UnicodeDecodeError:
        return None


def map_result(payload: bytes) -> HttpResponse:
    """The HTTP response for a function's result; InvalidResult when API Gateway would reject it."""
    try:
        result = json.loads(payload)
    except ValueError as error:
        raise InvalidResult(f"the result is not JSON: {error}") from None
    if isinstance(result, dict) and "statusCode" in result:
        return _structured(result)
    if isinstance(result, str):
        return HttpResponse(200, [("Content-Type", "text/plain; charset=utf-8")], result.encode())
    return HttpResponse(200, [("Content-Type", "application/json")], payload)


def _header_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise InvalidResult(f"header value {value!r} is not a string")


def _structured(result: dict[str, Any]) -> HttpResponse:
    status = result["statusCode"]
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise InvalidResult(f"statusCode {status!r} is not an HTTP status")
    body = result.get("body")
    if body is not None and not isinstance(body, str):
        raise InvalidResult("body must be a string")
    content = (body or "").encode()
    if body and result.get("isBase64Encoded"):
        try:
            content = base64.b64decode(body, validate=True)
        except binascii.Error:
            raise InvalidResult("isBase64Encoded but the body is not base64") from None
    return HttpResponse(status, _response_headers(result), content)


def _response_headers(result: dict[str, Any]) -> list[tuple[str, str]]:
    headers = result.get("headers") or {}
    multi = result.get("multiValueHeaders") or {}
    cookies = result.get("cookies") or []
    if not isinstance(headers, dict) or not isinstance(multi, dict) or not isinstance(cookies, list):
        raise InvalidResult("headers and multiValueHeaders must be objects, cookies a list")
    pairs = [(str(name), _header_value(value)) for name, value in headers.items()]
    single = {str(name).lower() for name in headers}
    for name, values in multi.items():
        if not isinstance(values, list):
            raise InvalidResult(f"multiValueHeaders[{name!r}] is not a list")
        if str(name).lower() not in single:
            pairs += [(str(name), _header_value(value)) for value in values]
    return pairs + [("Set-Cookie", _header_value(cookie)) for cookie in cookies]

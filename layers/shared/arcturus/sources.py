"""The upstream sources behind status, services and the dashboard: their configuration, and asking them.

One JSON document configures every source: ``SOURCES_CONFIG`` holds it directly (local runs), else the
SSM parameter named by ``SOURCES_PARAMETER`` does (read through Powertools parameters, cached for
``CONFIG_MAX_AGE_S``, so an edit reaches warm containers within that time)::

    {"services": [{"id": "git", "name": "Gitea", "url": "https://git.example.net/health",
                   "timeoutMs": 2000}],
     "widgets": {"system-health": {"url": "https://metrics.example.net/system", "timeoutMs": 3000}}}

Services are health-checked (HTTP GET; up below status 400, else or on no answer down, with status code
and latency); a down service is a result, not an error. Widgets answer JSON that the dashboard shows as
it is; any failure there is a ``SourceError``. Requests go over one pooled set of HTTP connections,
without retries (an answer that needs a retry is late anyway), each bounded by its source's timeout,
and several sources are asked at once with ``gather``.
"""

from __future__ import annotations

import concurrent.futures
import functools
import json
import socket
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any, Final, Literal, NotRequired, TypeAlias, TypeVar
from urllib.parse import urlsplit

import urllib3
from aws_lambda_powertools.utilities.parameters import SSMProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from typing_extensions import TypedDict

from arcturus import aws
from arcturus.container import per_container
from arcturus.errors import ArcturusError
from arcturus.formats import Validator, after, field, iso8601, wire_body
from arcturus.roles import Widget
from arcturus.settings import settings

__all__ = [
    "CONFIG_MAX_AGE_S",
    "DEFAULT_TIMEOUT_MS",
    "GATHER_MARGIN_S",
    "MAX_BODY_BYTES",
    "MAX_SERVICES",
    "MAX_TIMEOUT_MS",
    "SOURCES_CONFIG_ENV",
    "SOURCES_PARAMETER_ENV",
    "USER_AGENT",
    "ServiceCheck",
    "ServiceSource",
    "SourceError",
    "SourcesConfig",
    "SourcesConfigInvalid",
    "T",
    "TimeoutMs",
    "Url",
    "WidgetSource",
    "as_check",
    "check_service",
    "check_services",
    "fetch_widget",
    "gather",
    "load_config",
    "parse_config",
    "services",
    "slowest_timeout_s",
    "timeout_ms",
    "widgets",
]

SOURCES_CONFIG_ENV: Final = "SOURCES_CONFIG"
SOURCES_PARAMETER_ENV: Final = "SOURCES_PARAMETER"
CONFIG_MAX_AGE_S: Final = 300
DEFAULT_TIMEOUT_MS: Final = 3000
MAX_TIMEOUT_MS: Final = 10_000
"""Above any source's timeout, a refresh would outlive its cache lease (``arcturus.cache.LEASE_S``)."""
MAX_SERVICES: Final = 50
MAX_BODY_BYTES: Final = 1024 * 1024
GATHER_MARGIN_S: Final = 0.5
"""What ``gather`` allows beyond the slowest timeout for thread hand-off and connection set-up."""
USER_AGENT: Final = "arcturus-prime-status/1.0"

T = TypeVar("T")


class SourcesConfigInvalid(ArcturusError):
    """The sources document is missing or does not validate."""


class SourceError(ArcturusError):
    """A source did not give a usable answer."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


# -- configuration -------------------------------------------------------------------------------------


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http(s) URL with a host")
    return value


def _unique_ids(services: list[ServiceSource]) -> list[ServiceSource]:
    ids = [service["id"] for service in services]
    if len(ids) != len(set(ids)):
        raise ValueError(f"service ids must be unique: {sorted(i for i in set(ids) if ids.count(i) > 1)}")
    return services


# Aliases as strings: their metadata is made when pydantic first reads them (``arcturus.formats``).
Url: TypeAlias = "Annotated[str, after(_http_url)]"
TimeoutMs: TypeAlias = "Annotated[int, field(ge=100, le=MAX_TIMEOUT_MS)]"


_TIMEOUT_MS: Final = ("timeoutMs", "timeout_ms")
"""The key's names: earlier versions read the snake_case one too."""


@wire_body
class ServiceSource(TypedDict):
    """A service whose health endpoint is checked."""

    id: Annotated[str, field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
    name: Annotated[str, field(min_length=1, max_length=100)]
    url: Url
    timeoutMs: NotRequired[Annotated[TimeoutMs, field(accepts=_TIMEOUT_MS)]]


@wire_body
class WidgetSource(TypedDict):
    """The upstream that answers a dashboard widget's JSON."""

    url: Url
    timeoutMs: NotRequired[Annotated[TimeoutMs, field(accepts=_TIMEOUT_MS)]]


@wire_body
class SourcesConfig(TypedDict):
    """Every upstream source."""

    services: NotRequired[Annotated[list[ServiceSource], field(max_length=MAX_SERVICES), after(_unique_ids)]]
    widgets: NotRequired[dict[Widget, WidgetSource]]


_CONFIG: Final[Validator[SourcesConfig]] = Validator(SourcesConfig)


def slowest_timeout_s(config: SourcesConfig) -> float:
    """The slowest source's timeout: what asking all of them at once takes at most."""
    sources: list[ServiceSource | WidgetSource] = [*services(config), *widgets(config).values()]
    return max(map(timeout_ms, sources), default=DEFAULT_TIMEOUT_MS) / 1000


def services(config: SourcesConfig) -> list[ServiceSource]:
    """The configured services, in order (none when the document lists none)."""
    return config.get("services", [])


def widgets(config: SourcesConfig) -> dict[Widget, WidgetSource]:
    """The configured widget upstreams (none when the document lists none)."""
    return config.get("widgets", {})


def timeout_ms(source: ServiceSource | WidgetSource) -> int:
    """How long ``source`` may take to answer."""
    return source.get("timeoutMs", DEFAULT_TIMEOUT_MS)


def parse_config(text: str | bytes) -> SourcesConfig:
    """Validate the sources document; raises SourcesConfigInvalid naming each wrong field."""
    return _parse(text if isinstance(text, str) else text.decode("utf-8", errors="replace"))


@functools.lru_cache(maxsize=4)
def _parse(text: str) -> SourcesConfig:
    # Cached on the text: a warm container validates the document again only when it changed.
    try:
        return _CONFIG.json(text)
    except ValueError as error:  # pydantic's ValidationError is one
        raise SourcesConfigInvalid(f"the sources configuration is invalid: {error}") from error


@per_container
def _ssm() -> SSMProvider:
    return SSMProvider(boto3_client=aws.client("ssm"))


def load_config() -> SourcesConfig:
    """The configured sources: ``SOURCES_CONFIG`` if set, else the SSM parameter ``SOURCES_PARAMETER``."""
    text = settings().sources_config
    if text is None:
        name = settings().sources_parameter
        if not name:
            raise SourcesConfigInvalid(f"neither {SOURCES_CONFIG_ENV} nor {SOURCES_PARAMETER_ENV} is set")
        try:
            value = _ssm().get(name, max_age=CONFIG_MAX_AGE_S)
        except GetParameterError as error:
            raise SourcesConfigInvalid(f"the sources parameter {name} could not be read: {error}") from error
        if not isinstance(value, str | bytes):
            raise SourcesConfigInvalid(f"the sources parameter {name} holds no text")
        text = value if isinstance(value, str) else value.decode()
    return parse_config(text)


# -- asking the sources --------------------------------------------------------------------------------

# One pool per host, enough connections each for every widget and a few services sharing a host: warm
# containers reuse their TCP and TLS sessions.
_http = urllib3.PoolManager(
    num_pools=MAX_SERVICES + 8,
    maxsize=10,
    retries=False,
    headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
)
_askers = ThreadPoolExecutor(max_workers=MAX_SERVICES + 16, thread_name_prefix="sources")


def _get(url: str, timeout_ms: int) -> urllib3.BaseHTTPResponse:
    timeout = timeout_ms / 1000
    return _http.request(
        "GET",
        url,
        timeout=urllib3.Timeout(total=timeout, connect=timeout, read=timeout),
        preload_content=False,
        redirect=False,
    )


def _reason(error: Exception, timeout_ms: int) -> str:
    if isinstance(error, urllib3.exceptions.MaxRetryError) and error.reason is not None:
        error = error.reason
    # Most specific first. A failed DNS lookup is a NewConnectionError caused by socket.gaierror in every
    # urllib3 the runtime may ship (2.x names it NameResolutionError, a subclass 1.26 does not have).
    if isinstance(error, urllib3.exceptions.NewConnectionError) and isinstance(
        error.__cause__ or error.__context__, socket.gaierror
    ):
        return "host name not found"
    if isinstance(error, urllib3.exceptions.NewConnectionError):
        return "connection failed"
    if isinstance(error, urllib3.exceptions.TimeoutError):
        return f"no answer within {timeout_ms} ms"
    if isinstance(error, urllib3.exceptions.ProtocolError):
        return "connection dropped mid-answer"
    return f"request failed ({type(error).__name__})"


def _release(response: urllib3.BaseHTTPResponse, *, drain: bool) -> None:
    """Give the connection back to the pool only once its response was read to the end.

    A connection returned with unread body bytes would hand them to the next request as its answer;
    one that cannot be drained (or is not worth it) is closed instead, and the pool opens a new one.
    """
    try:
        if drain:
            response.drain_conn()
        else:
            response.close()
    except (urllib3.exceptions.HTTPError, OSError):
        response.close()
    finally:
        response.release_conn()


@wire_body
class ServiceCheck(TypedDict):
    """One health check; ``error`` only when the service is down."""

    id: str
    name: str
    status: Literal["up", "down"]
    statusCode: Annotated[
        int | None, field(description="The service's HTTP status; null when it did not answer.")
    ]
    latencyMs: int | None
    checkedAt: str
    error: NotRequired[str]


def check_service(service: ServiceSource, *, clock: Callable[[], float] = time.time) -> ServiceCheck:
    """Health-check ``service``. Never raises: a down service is what a check reports."""
    checked_at = iso8601(clock())
    started = time.monotonic()
    try:
        response = _get(service["url"], timeout_ms(service))
    except (urllib3.exceptions.HTTPError, OSError) as error:
        latency = round((time.monotonic() - started) * 1000)
        return _down(service, checked_at, None, latency, _reason(error, timeout_ms(service)))
    latency = round((time.monotonic() - started) * 1000)
    _release(response, drain=True)
    if response.status >= 400:
        return _down(service, checked_at, response.status, latency, f"HTTP {response.status}")
    return {
        "id": service["id"],
        "name": service["name"],
        "status": "up",
        "statusCode": response.status,
        "latencyMs": latency,
        "checkedAt": checked_at,
    }


def _down(
    service: ServiceSource, checked_at: str, status_code: int | None, latency_ms: int | None, error: str
) -> ServiceCheck:
    return {
        "id": service["id"],
        "name": service["name"],
        "status": "down",
        "statusCode": status_code,
        "latencyMs": latency_ms,
        "checkedAt": checked_at,
        "error": error,
    }


def fetch_widget(name: str, widget: WidgetSource) -> Any:
    """The JSON ``widget``'s upstream answers; raises SourceError for anything but a 2xx JSON answer."""
    source = f"dashboard:{name}"
    try:
        response = _get(widget["url"], timeout_ms(widget))
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise SourceError(source, _reason(error, timeout_ms(widget))) from error
    body = b""
    try:
        if not 200 <= response.status < 300:
            raise SourceError(source, f"HTTP {response.status}")
        body = response.read(MAX_BODY_BYTES + 1)
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise SourceError(source, _reason(error, timeout_ms(widget))) from error
    finally:
        # An error page is short and worth draining; the rest of an oversized body is not.
        _release(response, drain=len(body) <= MAX_BODY_BYTES)
    if len(body) > MAX_BODY_BYTES:
        raise SourceError(source, f"answer larger than {MAX_BODY_BYTES} bytes")
    try:
        return json.loads(body)
    except ValueError as error:
        raise SourceError(source, "answer is not JSON") from error


def gather(tasks: Mapping[str, Callable[[], T]], timeout_s: float) -> dict[str, T | Exception]:
    """Run every task at once; each result, or its exception, by name, within ``timeout_s`` in all.

    A task not done by then is reported as a SourceError and left to finish on its own. Tasks must
    not call ``gather`` themselves: they run on the pool that ``gather`` waits for.
    """
    futures = {name: _askers.submit(task) for name, task in tasks.items()}
    done, _ = concurrent.futures.wait(futures.values(), timeout=timeout_s)
    results: dict[str, T | Exception] = {}
    for name, future in futures.items():
        if future not in done:
            future.cancel()
            results[name] = SourceError(name, f"no answer within {round(timeout_s * 1000)} ms")
            continue
        error = future.exception()
        if error is None:
            results[name] = future.result()
        elif isinstance(error, Exception):
            results[name] = error
        else:
            raise error
    return results


def check_services(config: SourcesConfig) -> list[ServiceCheck]:
    """Health-check every configured service at once, in configuration order."""
    checks = gather(
        {service["id"]: functools.partial(check_service, service) for service in services(config)},
        slowest_timeout_s(config) + GATHER_MARGIN_S,
    )
    return [as_check(service, checks[service["id"]]) for service in services(config)]


def as_check(service: ServiceSource, result: ServiceCheck | Exception) -> ServiceCheck:
    """A check result as ``gather`` gave it: a check that ran out of time is a down service."""
    if not isinstance(result, Exception):
        return result
    error = result.reason if isinstance(result, SourceError) else str(result)
    return _down(service, iso8601(time.time()), None, None, error)

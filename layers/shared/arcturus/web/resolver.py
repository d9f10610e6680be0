"""The resolver every function uses and its Lambda entry point.

Routes raise ``HTTPProblem`` or let a domain exception through; the resolver's exception handlers are the
one place either becomes RFC 9457 problem JSON (domain exceptions through ``arcturus.web.answers``),
so no route formats an error and no stack trace reaches a client.
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
import json
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.utilities.typing import LambdaContext

from arcturus.errors import ArcturusError
from arcturus.observability import logger, metrics, tracer
from arcturus.web.answers import problem_for
from arcturus.web.docs import JSON
from arcturus.web.encoder import to_json
from arcturus.web.problem import HTTPProblem, invalid

__all__ = [
    "LambdaHandler",
    "Takes",
    "build_resolver",
    "is_scheduled_event",
    "lambda_handler",
    "scheduled_or_http_handler",
    "takes",
    "unreadable",
]


LambdaHandler = Callable[[Mapping[str, Any], LambdaContext], dict[str, Any]]


def _json_body(text: str) -> Any:
    """``json.loads`` for request bodies: whatever it refuses is invalid JSON (422), never a crash.

    Besides JSONDecodeError it raises RecursionError for a body nested too deep and a bare ValueError for
    an integer past Python's 4,300-digit limit on int(str).
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except (RecursionError, ValueError) as error:
        raise json.JSONDecodeError(f"unreadable JSON ({error})", text, 0) from error


def _json_bodies_only(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """Refuse a request body in any media type but JSON (415), before anything parses it.

    The API documents JSON bodies alone. Powertools' validation would also parse forms and multipart
    bodies (and fail with a bare ValueError, a 500, on a multipart type without its boundary).
    """
    event = app.current_event
    if not event.raw_event.get("body"):  # most requests: no need to build the header mapping
        return next_middleware(app)
    media_type = event.headers.get("content-type", "").strip()
    if media_type and not media_type.startswith(JSON):
        return HTTPProblem(415, f"Send the body as {JSON}, not {media_type}.").response()
    return next_middleware(app)


class Takes(enum.Enum):
    """What a function's routes take, so what request validation it needs (``build_resolver``).

    Powertools' validation imports pydantic (about 90 ms of a cold start) and costs ~30 µs a request (it
    normalises every header and the query string first). A function that takes nothing pays neither; one
    that takes optional query parameters skips the 30 µs when a request brings none (its module still
    loads pydantic: Powertools evaluates every route's annotations on its first request).
    ``tests/unit/test_openapi.py`` holds every function to what its OpenAPI operations declare.
    """

    NOTHING = "no parameter and no body: never validated"
    OPTIONAL_QUERY = "optional query parameters only: validated when a request has a query string or body"
    INPUT = "parameters or a body: every request validated"


_TAKES: weakref.WeakKeyDictionary[APIGatewayHttpResolver, Takes] = weakref.WeakKeyDictionary()


def build_resolver(*, takes: Takes = Takes.INPUT) -> APIGatewayHttpResolver:
    """The resolver every function uses: request validation as ``takes`` needs, errors as problem
    JSON."""
    # Validation runs as the second resolver-wide middleware (ahead of every route's own), after the
    # media-type check: Powertools' documented ``use()`` hook instead of its built-in placement, which
    # would run it before any middleware could refuse a body it must not parse.
    app = APIGatewayHttpResolver(serializer=to_json, json_body_deserializer=_json_body)
    _TAKES[app] = takes
    if takes is Takes.INPUT:
        _validate_input(app)
    elif takes is Takes.OPTIONAL_QUERY:
        app.use([_json_bodies_only, _validated_when_given])
    else:
        app.use([_json_bodies_only])

    @app.exception_handler(HTTPProblem)
    def _problem(error: HTTPProblem) -> Response[str]:
        return error.response()

    @app.exception_handler(RequestValidationError)
    def _request_invalid(error: RequestValidationError) -> Response[str]:
        return invalid(list(error.errors())).response()

    @app.exception_handler(ArcturusError)
    def _domain(error: ArcturusError) -> Response[str]:
        problem = problem_for(error)
        return problem.response() if problem is not None else _unexpected(error)

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response[str]:
        logger.exception("unhandled error")
        return HTTPProblem(500, "The server failed to answer; the error was logged.").response()

    @app.not_found
    def _no_route(_: Exception) -> Response[str]:
        return HTTPProblem(404, f"No route for {app.current_event.raw_path}.").response()

    return app


def _validate_input(app: APIGatewayHttpResolver) -> None:
    """Powertools' request validation, and 422 for a body a route's own validator refuses: pydantic is
    imported here, by a function that takes input, and by no other."""
    from pydantic_core import ValidationError  # noqa: PLC0415 - deferred: it loads with pydantic

    app.use([_json_bodies_only, _request_validation()])

    @app.exception_handler(ValidationError)
    def _body_invalid(error: ValidationError) -> Response[str]:
        return invalid(list(error.errors())).response()


def _validated_when_given(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """Powertools' validation for a request that brings a query string or a body; one that brings
    neither calls the route with its declared defaults, which is what validation would pass it."""
    event = app.current_event.raw_event
    if not (event.get("rawQueryString") or event.get("queryStringParameters") or event.get("body")):
        return next_middleware(app)
    answer: Response[Any] = _request_validation()(app, next_middleware)
    return answer


@functools.cache
def _request_validation() -> Callable[[APIGatewayHttpResolver, NextMiddleware], Response[Any]]:
    """Powertools' request validation middleware, imported and built on first use (it loads pydantic)."""
    from aws_lambda_powertools.event_handler.middlewares.openapi_validation import (  # noqa: PLC0415
        OpenAPIRequestValidationMiddleware,
    )

    validation: Callable[[APIGatewayHttpResolver, NextMiddleware], Response[Any]]
    validation = OpenAPIRequestValidationMiddleware()  # type: ignore[no-untyped-call]
    return validation


def takes(app: APIGatewayHttpResolver) -> Takes:
    """What ``app`` was built to take (``build_resolver``)."""
    return _TAKES[app]


def _observed(handler: LambdaHandler) -> LambdaHandler:
    """``handler`` with the logging context (cold start, function, request id), tracing, and the
    request's metrics flushed as it returns.

    The tracing decorator only where tracing is on: disabled, it still builds dummy segments on every
    request. The correlation id is set by the HTTP handler from the request id it has in hand; the
    decorator's ``correlation_id_path`` would search the event with JMESPath on every request.
    """
    traced = (
        tracer.capture_lambda_handler(handler, capture_response=False) if not tracer.disabled else handler
    )
    wrapped: LambdaHandler = logger.inject_lambda_context(metrics.log_metrics(traced))
    return wrapped


def lambda_handler(app: APIGatewayHttpResolver) -> LambdaHandler:
    """Wrap ``app`` as a Lambda handler with logging context, tracing and metrics flushing."""

    def handler(event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        request = event.get("requestContext") if isinstance(event, Mapping) else None
        logger.set_correlation_id(request.get("requestId") if isinstance(request, Mapping) else None)
        reason = unreadable(event)
        if reason is not None:
            logger.warning("unreadable event", extra={"reason": reason})
            return HTTPProblem(400, f"This is not a request the API can read: {reason}.").proxy_response()
        return app.resolve(event, context)

    return _observed(handler)


def scheduled_or_http_handler(
    app: APIGatewayHttpResolver, on_schedule: Callable[[], dict[str, Any]]
) -> LambdaHandler:
    """The handler of a function with both an HTTP route and a schedule: HTTP API events go to ``app``,
    scheduled events run ``on_schedule`` with the same logging, tracing and metrics."""
    http_handler = lambda_handler(app)

    def on_event(event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        logger.set_correlation_id(event.get("id"))  # the EventBridge event's id
        return on_schedule()

    scheduled = _observed(on_event)

    def handler(event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        if is_scheduled_event(event):
            result: dict[str, Any] = scheduled(event, context)
            return result
        return http_handler(event, context)

    return handler


def is_scheduled_event(event: object) -> bool:
    """Whether ``event`` is what an EventBridge schedule sends (rather than an HTTP API request)."""
    return (
        isinstance(event, Mapping)
        and event.get("source") == "aws.events"
        and event.get("detail-type") == "Scheduled Event"
    )


def unreadable(event: object) -> str | None:
    """Why ``event`` is not an HTTP API (payload format 2.0) request the resolver can read, or None.

    API Gateway always sends these fields; a direct invoke with a hand-made event, or an integration
    on payload format 1.0, may not, and gets a 400 problem instead of a crash in the resolver.
    """
    if not isinstance(event, Mapping):
        return "the event is not a JSON object"
    context = event.get("requestContext")
    http = context.get("http") if isinstance(context, Mapping) else None
    if not isinstance(http, Mapping) or not isinstance(event.get("rawPath"), str):
        return "it lacks requestContext.http or rawPath (is the integration on payload format 2.0?)"
    missing = [name for name in ("method", "sourceIp") if not isinstance(http.get(name), str)]
    if missing:
        return f"requestContext.http lacks {' and '.join(missing)}"
    body = event.get("body")
    if event.get("isBase64Encoded") and body:
        try:
            base64.b64decode(body, validate=True).decode("utf-8")
        except (binascii.Error, ValueError, TypeError):
            return "its body is marked base64 but is not base64-encoded UTF-8 text"
    return None

"""HTTP plumbing for every handler: the resolver, problem-details errors, and the Lambda entry point.

Handlers raise ``Problem`` (or let a domain exception through); this module is the one place that turns
exceptions into RFC 9457 problem JSON, so no handler formats an error and no stack trace reaches a
client.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any, Final, cast

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.middlewares.openapi_validation import (
    OpenAPIRequestValidationMiddleware,
)
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from arcturus.errors import StoreUnavailable
from arcturus.observability import logger, metrics, tracer

PROBLEM_JSON = "application/problem+json"
JSON = "application/json"
SCHEMAS = "#/components/schemas/"
"""Where a route's documentation points for a model of ``arcturus.contract`` (or a request model)."""
ResponseHeaders = Mapping[str, Mapping[str, Any]]
"""OpenAPI header objects by header name."""
PARSED_AFTER_AUTHORIZATION: Final = "x-body-validated-after-authorization"
"""Marks an operation whose body is checked only once the caller may call it (and whatever its type)."""
RETRY_AFTER: Final[ResponseHeaders] = {
    "Retry-After": {
        "description": "Whole seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
    }
}
LambdaHandler = Callable[[Mapping[str, Any], LambdaContext], dict[str, Any]]


class Problem(Exception):
    """An error answer: raise it anywhere below a route to send problem JSON with ``status``."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.headers = dict(headers or {})
        self.extensions = dict(extensions or {})

    def response(self) -> Response[str]:
        body = {"type": "about:blank", "title": self.title, "status": self.status, "detail": self.detail}
        return Response(
            status_code=self.status,
            content_type=PROBLEM_JSON,
            body=json.dumps(body | self.extensions),
            headers=self.headers,
        )

    def proxy_response(self) -> dict[str, Any]:
        """This problem as the Lambda answer itself, for an event the resolver cannot take."""
        answer = self.response()
        return {
            "statusCode": answer.status_code,
            "headers": dict(answer.headers),
            "body": answer.body,
            "isBase64Encoded": False,
        }


def field_errors(errors: list[Any]) -> list[dict[str, str]]:
    """Pydantic's errors as ``[{"field": "users.a@b.c.role", "message": ...}]`` for a 422 answer."""
    return [
        {
            "field": ".".join(str(part) for part in error.get("loc", ()) if part != "body"),
            "message": error["msg"],
        }
        for error in errors
    ]


def _invalid(errors: list[Any]) -> Response[str]:
    fields = field_errors(errors)
    detail = "; ".join(f"{e['field'] or 'body'}: {e['message']}" for e in fields) or "invalid request"
    return Problem(422, detail, title="Invalid request", extensions={"errors": fields}).response()


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


class _JsonBodiesOnly(OpenAPIRequestValidationMiddleware):
    """Powertools' request validation, reading a body as JSON only.

    The API documents JSON bodies alone. Powertools would also parse forms and multipart bodies, and
    fails with a bare ValueError (a 500) on a multipart type without its boundary: here any other
    media type is refused as unsupported (415) before any parsing.
    """

    def _get_body(self, app: Any) -> dict[str, Any]:
        media_type = app.current_event.headers.get("content-type", "").strip()
        if media_type and not media_type.startswith(JSON):
            raise RequestUnsupportedContentType(
                "Unsupported content type",
                errors=[
                    {"type": "unsupported_content_type", "loc": ("body",), "msg": media_type, "input": {}}
                ],
            )
        body: dict[str, Any] = super()._get_body(app)
        return body


def build_resolver() -> APIGatewayHttpResolver:
    """The resolver every function uses: request validation on, rate limits, errors as problem JSON."""
    # ratelimit builds on this module's Problem, so it is imported here, not at the top.
    from arcturus.ratelimit import enforce_rate_limits  # noqa: PLC0415

    app = APIGatewayHttpResolver(enable_validation=True, json_body_deserializer=_json_body)
    app._request_validation_middleware = _JsonBodiesOnly()  # type: ignore[no-untyped-call]  # Powertools: untyped
    app.use([enforce_rate_limits])  # acts only on routes that have a rule in arcturus.ratelimit.RULES

    @app.exception_handler(Problem)
    def _problem(error: Problem) -> Response[str]:
        return error.response()

    @app.exception_handler(RequestValidationError)
    def _request_invalid(error: RequestValidationError) -> Response[str]:
        return _invalid(list(error.errors()))

    @app.exception_handler(RequestUnsupportedContentType)
    def _not_json(_: RequestUnsupportedContentType) -> Response[str]:
        sent = app.current_event.headers.get("content-type", "")
        return Problem(415, f"Send the body as {JSON}, not {sent}.").response()

    @app.exception_handler(ValidationError)
    def _model_invalid(error: ValidationError) -> Response[str]:
        return _invalid(list(error.errors()))

    @app.exception_handler(StoreUnavailable)
    def _store_down(error: StoreUnavailable) -> Response[str]:
        logger.warning("KV store unavailable", extra={"error": str(error)})
        metrics.add_metric(name="StoreUnavailable", unit="Count", value=1)
        return Problem(503, "The data store is busy; retry shortly.", headers={"Retry-After": "1"}).response()

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response[str]:
        logger.exception("unhandled error")
        return Problem(500, "The server failed to answer; the error was logged.").response()

    @app.not_found
    def _no_route(_: Exception) -> Response[str]:
        return Problem(404, f"No route for {app.current_event.raw_path}.").response()

    return app


# -- documentation: what a route declares for the OpenAPI document ------------------------------------


def documented(
    model: str,
    description: str,
    *,
    media_type: str = JSON,
    headers: ResponseHeaders | None = None,
) -> OpenAPIResponse:
    """One of a route's answers for its ``responses=``: a body of the named model, by reference.

    By name, not by class: the models are built only by the OpenAPI build, never at a function's init.
    """
    response: dict[str, Any] = {
        "description": description,
        "content": {media_type: {"schema": {"$ref": SCHEMAS + model}}},
    }
    if headers:
        response["headers"] = {name: dict(header) for name, header in headers.items()}
    return cast(OpenAPIResponse, response)


def problem_answer(description: str, *, headers: ResponseHeaders | None = None) -> OpenAPIResponse:
    """A route's own error answer (problem JSON) for its ``responses=``."""
    return documented("Problem", description, media_type=PROBLEM_JSON, headers=headers)


def parsed_body(model: str, description: str) -> dict[str, Any]:
    """``openapi_extensions`` documenting a JSON body that the route parses itself.

    For routes that must check permissions before they validate (Powertools validates a declared
    ``Body()`` before any middleware runs): the document shows the body, the order stays.
    """
    content = {JSON: {"schema": {"$ref": SCHEMAS + model}}}
    return {
        "requestBody": {"required": True, "description": description, "content": content},
        PARSED_AFTER_AUTHORIZATION: True,
    }


def lambda_handler(app: APIGatewayHttpResolver) -> LambdaHandler:
    """Wrap ``app`` as a Lambda handler with logging context, tracing and metrics flushing."""

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics
    def handler(event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        reason = unreadable(event)
        if reason is not None:
            logger.warning("unreadable event", extra={"reason": reason})
            return Problem(400, f"This is not a request the API can read: {reason}.").proxy_response()
        return app.resolve(event, context)

    wrapped: LambdaHandler = handler
    return wrapped


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

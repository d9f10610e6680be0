"""HTTP plumbing for every handler: the resolver, problem-details errors, and the Lambda entry point.

Handlers raise ``Problem`` (or let a domain exception through); this module is the one place that turns
exceptions into RFC 9457 problem JSON, so no handler formats an error and no stack trace reaches a
client.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from arcturus.errors import StoreUnavailable
from arcturus.observability import logger, metrics, tracer

PROBLEM_JSON = "application/problem+json"
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


def build_resolver() -> APIGatewayHttpResolver:
    """The resolver every function uses: request validation on, rate limits, errors as problem JSON."""
    # ratelimit builds on this module's Problem, so it is imported here, not at the top.
    from arcturus.ratelimit import enforce_rate_limits  # noqa: PLC0415

    app = APIGatewayHttpResolver(enable_validation=True)
    app.use([enforce_rate_limits])  # acts only on routes that have a rule in arcturus.ratelimit.RULES

    @app.exception_handler(Problem)
    def _problem(error: Problem) -> Response[str]:
        return error.response()

    @app.exception_handler(RequestValidationError)
    def _request_invalid(error: RequestValidationError) -> Response[str]:
        return _invalid(list(error.errors()))

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


def lambda_handler(app: APIGatewayHttpResolver) -> LambdaHandler:
    """Wrap ``app`` as a Lambda handler with logging context, tracing and metrics flushing."""

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics
    def handler(event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        return app.resolve(event, context)

    wrapped: LambdaHandler = handler
    return wrapped

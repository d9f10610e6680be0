"""Route middlewares: who may call a route, and how often.

    @app.get("/api/status", middlewares=[requires("view:status")])

``requires`` admits provisioned callers (granted ``permission`` when one is given) and keeps the
resolved caller for ``current_caller(app)``; ``enforce_rate_limits`` (on every resolver) applies the
limiter's rules and adds the RateLimit fields to the answer, an error answer included.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

from arcturus.errors import ArcturusError
from arcturus.identity import Caller, authorize, resolve_caller
from arcturus.ratelimit import Decision, container_limiter, rule_for
from arcturus.web.answers import problem_for
from arcturus.web.problem import Problem

__all__ = ["RouteMiddleware", "current_caller", "enforce_rate_limits", "requires"]

CALLER_KEY: Final = "caller"
RouteMiddleware = Callable[[APIGatewayHttpResolver, NextMiddleware], Response[Any]]


def requires(permission: str | None = None) -> RouteMiddleware:
    """A route middleware admitting provisioned callers, and only those granted ``permission`` if given."""

    def middleware(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[Any]:
        app.context[CALLER_KEY] = authorize(app.current_event.raw_event, permission)
        return next_middleware(app)

    return middleware


def current_caller(app: APIGatewayHttpResolver) -> Caller:
    """The caller that ``requires`` resolved for this request."""
    caller = app.context.get(CALLER_KEY)
    if not isinstance(caller, Caller):
        raise RuntimeError("current_caller() on a route without the requires() middleware")
    return caller


def enforce_rate_limits(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """Resolver-wide middleware: limits the routes that have a rule and lets every other route through.

    Denied: 429 problem JSON. Allowed: the route's answer (or its error answer) with the RateLimit fields.
    """
    event = app.current_event
    rule = rule_for(event.http_method, event.path)
    if rule is None:
        return next_middleware(app)
    caller = resolve_caller(event.raw_event)
    if caller is not None and caller.is_admin:
        return next_middleware(app)
    decision = container_limiter().hit(rule, event.request_context.http.source_ip)
    if not decision.allowed:
        return too_many(decision).response()
    try:
        response = next_middleware(app)
    except ArcturusError as error:
        problem = problem_for(error)
        if problem is None:
            raise
        problem.headers.update(decision.headers())
        raise problem from error
    except Problem as problem:
        problem.headers.update(decision.headers())
        raise
    response.headers.update(decision.headers())
    return response


def too_many(decision: Decision) -> Problem:
    """The 429 answer for a denied request."""
    rule, wait = decision.rule, decision.reset_s
    return Problem(
        429,
        f"At most {rule.limit} requests per {rule.window_s} s from one address; retry in {wait} s.",
        headers=decision.headers(),
    )

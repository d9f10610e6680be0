"""Route guards: who may call a route, and how often, declared on the route itself.

    @app.get("/api/status", **guards(requires("view:status")))
    @app.post("/api/contact", **guards(limited(Rule("contact", limit=5, window_s=60))))

``requires`` admits provisioned callers (granted ``permission`` when one is given) and keeps the
resolved caller for ``current_caller(app)``; ``limited`` counts the request under its rule and adds the
RateLimit fields to the answer, an error answer included. ``guards`` turns them into the route
decorator's ``middlewares`` and the ``x-rate-limit`` extension the OpenAPI document reads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypedDict

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

from arcturus.errors import ArcturusError
from arcturus.identity import Caller, authorize, resolve_caller
from arcturus.ratelimit import Decision, Rule, container_limiter
from arcturus.web.answers import problem_for
from arcturus.web.problem import HTTPProblem

__all__ = [
    "RATE_LIMIT_EXTENSION",
    "Limited",
    "RouteGuards",
    "RouteMiddleware",
    "current_caller",
    "guards",
    "limited",
    "requires",
    "too_many",
]

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


RATE_LIMIT_EXTENSION: Final = "x-rate-limit"
"""The operation extension naming a limited route's rule (``python -m local openapi`` documents it)."""


class Limited:
    """The route middleware ``limited(rule)`` returns; ``rule`` is there for ``guards`` to document."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.__name__ = f"limited_{rule.name}"  # Powertools logs a middleware by its name

    def __call__(self, app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[Any]:
        event = app.current_event
        caller = resolve_caller(event.raw_event)
        if caller is not None and caller.is_admin:
            return next_middleware(app)
        decision = container_limiter().hit(self.rule, event.request_context.http.source_ip)
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
        except HTTPProblem as problem:
            problem.headers.update(decision.headers())
            raise
        response.headers.update(decision.headers())
        return response


def limited(rule: Rule) -> Limited:
    """A route middleware counting each request under ``rule`` (administrators are exempt).

    Denied: 429 problem JSON. Allowed: the route's answer (or its error answer) with the RateLimit fields.
    """
    return Limited(rule)


class RouteGuards(TypedDict):
    """What ``guards`` gives a route decorator."""

    middlewares: list[RouteMiddleware]
    openapi_extensions: dict[str, Any]


def guards(*middlewares: RouteMiddleware, openapi_extensions: dict[str, Any] | None = None) -> RouteGuards:
    """The route decorator's ``middlewares`` (in order: put ``limited`` first, so a flood is answered
    before any roles lookup) and ``openapi_extensions``, with the rate limit of a ``limited`` guard."""
    extensions = dict(openapi_extensions or {})
    for middleware in middlewares:
        if isinstance(middleware, Limited):
            rule = middleware.rule
            extensions[RATE_LIMIT_EXTENSION] = {
                "name": rule.name,
                "limit": rule.limit,
                "windowSeconds": rule.window_s,
            }
    return {"middlewares": list(middlewares), "openapi_extensions": extensions}


def too_many(decision: Decision) -> HTTPProblem:
    """The 429 answer for a denied request."""
    rule, wait = decision.rule, decision.reset_s
    return HTTPProblem(
        429,
        f"At most {rule.limit} requests per {rule.window_s} s from one address; retry in {wait} s.",
        headers=decision.headers(),
    )

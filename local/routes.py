"""HTTP API route selection: the most specific route wins, as API Gateway picks it.

Literal segments beat ``{param}`` segments, which beat a greedy ``{proxy+}``; at equal paths a route's
own method beats ``ANY``; ``$default`` catches what nothing else matched.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from local.template import HttpRoute

_LITERAL, _PARAMETER, _GREEDY = 0, 1, 2


@dataclass(frozen=True)
class Match:
    route: HttpRoute
    route_key: str
    path_parameters: dict[str, str]


def _segments(path: str) -> list[str]:
    return path.split("/")[1:]


def _kind(segment: str) -> int:
    if segment.startswith("{") and segment.endswith("+}"):
        return _GREEDY
    if segment.startswith("{") and segment.endswith("}"):
        return _PARAMETER
    return _LITERAL


class RouteTable:
    def __init__(self, routes: list[HttpRoute]) -> None:
        def specificity(route: HttpRoute) -> tuple[bool, tuple[int, ...], bool]:
            kinds = tuple(_kind(segment) for segment in _segments(route.path))
            return route.path == "$default", kinds, route.method == "ANY"

        self._routes = sorted(routes, key=specificity)

    def match(self, method: str, raw_path: str) -> Match | None:
        """The route for ``method raw_path`` with its decoded path parameters, or None."""
        segments = _segments(raw_path)
        for route in self._routes:
            if route.method not in (method, "ANY"):
                continue
            if route.path == "$default":
                return Match(route, "$default", {})
            parameters = _bind(_segments(route.path), segments)
            if parameters is not None:
                return Match(route, f"{route.method} {route.path}", parameters)
        return None


def _bind(pattern: list[str], segments: list[str]) -> dict[str, str] | None:
    parameters: dict[str, str] = {}
    for index, part in enumerate(pattern):
        kind = _kind(part)
        if kind == _GREEDY:
            rest = segments[index:]
            if not rest or rest == [""]:
                return None
            parameters[part[1:-2]] = unquote("/".join(rest))
            return parameters
        if index >= len(segments):
            return None
        if kind == _PARAMETER:
            if not segments[index]:
                return None
            parameters[part[1:-1]] = unquote(segments[index])
        elif unquote(segments[index]) != part:
            return None
    return parameters if len(segments) == len(pattern) else None

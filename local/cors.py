"""An HttpApi's CorsConfiguration, applied as API Gateway applies it.

API Gateway answers preflight requests itself (before routes and authorizers) and sets the CORS headers
of every answer to a request from an allowed origin, replacing whatever the function sent.
"""

from __future__ import annotations

from typing import Any

from local.payload import HttpRequest, HttpResponse


def _listed(value: Any) -> list[str]:
    return [str(item) for item in (value if isinstance(value, list) else [value] if value else [])]


class Cors:
    def __init__(self, configuration: dict[str, Any] | bool) -> None:
        settings: dict[str, Any] = (
            {"AllowOrigins": ["*"]} if configuration is True else dict(configuration or {})
        )
        self._origins = _listed(settings.get("AllowOrigins"))
        self._headers = ",".join(_listed(settings.get("AllowHeaders"))).lower()
        self._methods = ",".join(_listed(settings.get("AllowMethods")))
        self._expose = ",".join(_listed(settings.get("ExposeHeaders"))).lower()
        self._max_age = str(settings.get("MaxAge", ""))
        self._credentials = str(settings.get("AllowCredentials", False)).lower() == "true"

    def _allowed_origin(self, origin: str | None) -> str | None:
        if not origin:
            return None
        if origin in self._origins:
            return origin
        if "*" in self._origins:
            return origin if self._credentials else "*"
        return None

    @staticmethod
    def is_preflight(request: HttpRequest) -> bool:
        return (
            request.method == "OPTIONS"
            and request.header("origin") is not None
            and request.header("access-control-request-method") is not None
        )

    def preflight(self, request: HttpRequest) -> HttpResponse:
        """API Gateway's own answer to a preflight request."""
        origin = self._allowed_origin(request.header("origin"))
        response = HttpResponse(204)
        if origin is not None:
            response.headers += [("Access-Control-Allow-Origin", origin)]
            response.headers += [
                (name, value)
                for name, value in (
                    ("Access-Control-Allow-Methods", self._methods),
                    ("Access-Control-Allow-Headers", self._headers),
                    ("Access-Control-Max-Age", self._max_age),
                    ("Access-Control-Allow-Credentials", "true" if self._credentials else ""),
                )
                if value
            ]
        return response

    def apply(self, request: HttpRequest, response: HttpResponse) -> None:
        """Replace the function's CORS headers with the API's (none unless the origin is allowed)."""
        response.headers = [
            (n, v) for n, v in response.headers if not n.lower().startswith("access-control-")
        ]
        origin = self._allowed_origin(request.header("origin"))
        if origin is None:
            return
        response.headers.append(("Access-Control-Allow-Origin", origin))
        if self._expose:
            response.headers.append(("Access-Control-Expose-Headers", self._expose))
        if self._credentials:
            response.headers.append(("Access-Control-Allow-Credentials", "true"))

"""The API's JSON bodies as pydantic models: what the routes answer, for the OpenAPI document.

Routes refer to these by name (``arcturus.web.docs.documented("StatusSummary", ...)``), and the OpenAPI
build (``python -m local openapi``) turns the references into schemas. No function imports this module:
building a pydantic model costs milliseconds at init, and the routes build their bodies as plain
dicts, so the models would buy a cold start nothing. Unit tests hold the builders' real output against
these models, and the fuzzing suite every live answer against the document.

Every model refuses fields it does not list, so a body that grows a field the document lacks fails
those checks instead of drifting silently. Request bodies the functions validate (``ContactMessage``,
``ChatRequest``, ``RolesDocument``, ``ProfileUpdate``) live with their code and are listed in
``COMPONENTS`` as they are.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from arcturus.roles import DashboardProfile, ProfileUpdate, RolesDocument, Widget

__all__ = [
    "COMPONENTS",
    "CacheState",
    "CacheStatus",
    "CallerProfile",
    "ChatReply",
    "ContactReceipt",
    "Dashboard",
    "DownService",
    "FailedSource",
    "FieldError",
    "GatewayError",
    "MemoryCacheStats",
    "Problem",
    "ProfileRef",
    "ServiceCheck",
    "ServiceCounts",
    "ServicesReport",
    "StatusSummary",
    "ValidationProblem",
    "WarmupReport",
    "WidgetData",
    "WidgetError",
]

CacheState = Literal["HIT", "STALE", "MISS"]


class _Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class Problem(BaseModel):
    """RFC 9457 problem details: every error answer of the functions (``application/problem+json``).

    Extension members may follow the four standard ones.
    """

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="Always about:blank: the status code and title say what happened.")
    title: str
    status: int = Field(ge=400, le=599)
    detail: str = Field(description="What went wrong and what to do about it, for a person.")


class FieldError(_Body):
    field: str = Field(description="Dotted path of the field (users.a@b.example.role); empty: the body.")
    message: str


class ValidationProblem(Problem):
    """422: the request did not validate; ``errors`` names every field that failed and why."""

    errors: list[FieldError]


class GatewayError(_Body):
    """API Gateway's own answer when its JWT authorizer refuses a token (not a function's)."""

    message: str


class CallerProfile(_Body):
    """The signed-in user as the roles document describes them."""

    email: str
    display_name: str = Field(description="From the roles document, else the email's local part.")
    role: str
    permissions: list[str]
    services: list[str]
    features: list[str]
    sites: list[str]
    dashboard_profiles: list[DashboardProfile]


class MemoryCacheStats(_Body):
    keys: int = Field(ge=0)
    oldest_entry: str | None = Field(description="ISO 8601 fetch time of the oldest entry; null when empty.")
    newest_entry: str | None


class CacheStatus(_Body):
    """The answering container's memory tier, one page of the cache's and the roles' KV keys, and (on the
    first page) how many other keys there are per class; their names are never shown."""

    memory_cache: MemoryCacheStats
    kv_keys: list[str] = Field(description="cache: and data: keys, in order.")
    cursor: str | None = Field(default=None, description="Present while more keys remain: send it back.")
    other_keys: dict[str, int] | None = Field(
        default=None, description="First page only: keys of every other class (rate, session, ...), counted."
    )
    other_keys_complete: bool | None = Field(
        default=None, description="False when counting stopped at its time budget (the counts are a floor)."
    )


class FailedSource(_Body):
    source: str = Field(description="service:<id>, dashboard:<widget>, status, services or roles.")
    error: str


class WarmupReport(_Body):
    """What one warmup run wrote (``warmed``) and what it could not ask or write (``failed``)."""

    warmed: list[str]
    failed: list[FailedSource]
    duration_ms: int = Field(ge=0)


class ServiceCounts(_Body):
    total: int = Field(ge=0)
    up: int = Field(ge=0)
    down: int = Field(ge=0)


class DownService(_Body):
    id: str
    name: str
    error: str | None


class StatusSummary(_Body):
    """The infrastructure summary: ``operational`` when every service is up, ``outage`` when none is."""

    status: Literal["operational", "degraded", "outage", "unknown"]
    services: ServiceCounts
    down: list[DownService]
    average_latency_ms: int | None = Field(description="Mean latency of the services that are up.")
    checked_at: str


class ServiceCheck(_Body):
    """One health check; ``error`` only when the service is down."""

    id: str
    name: str
    status: Literal["up", "down"]
    status_code: int | None = Field(description="The service's HTTP status; null when it did not answer.")
    latency_ms: int | None
    checked_at: str
    error: str | None = None


class ServicesReport(_Body):
    services: list[ServiceCheck]
    checked_at: str


class ProfileRef(_Body):
    id: str
    name: str


class WidgetData(_Body):
    id: Widget
    data: Any = Field(description="The widget's upstream JSON, as it answered.")
    fetched_at: str
    cache: CacheState


class WidgetError(_Body):
    id: Widget
    error: str = Field(description="Why its source gave nothing (the other widgets may still have data).")


class Dashboard(_Body):
    """The widgets of one of the caller's dashboard profiles; ``profile`` is null when they have none."""

    profile: ProfileRef | None
    profiles: list[ProfileRef]
    widgets: list[WidgetData | WidgetError]


class ContactReceipt(_Body):
    id: str = Field(description="The stored message's id.")


class ChatReply(_Body):
    session_id: str = Field(description="Send it back as sessionId to continue the conversation.")
    reply: str


COMPONENTS: Final[tuple[type[BaseModel], ...]] = (
    Problem,
    ValidationProblem,
    GatewayError,
    CallerProfile,
    ProfileUpdate,
    RolesDocument,
    CacheStatus,
    WarmupReport,
    StatusSummary,
    ServicesReport,
    Dashboard,
    ContactReceipt,
    ChatReply,
)
"""Every model a route refers to by name; their nested models come along."""

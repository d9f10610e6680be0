"""Who is calling: the JWT authorizer's email resolved against the roles document.

API Gateway's JWT authorizer has already checked the token's signature, issuer, audience and expiry;
what it cannot know is whether the person is provisioned and what they may do. ``authorize`` answers
that (``arcturus.web.guards.requires`` runs it for every authenticated route): NotSignedIn when the
request carries no identity, NotPermitted when the email is not in the roles document or its role lacks
the permission, otherwise the resolved ``Caller``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from typing_extensions import TypedDict

from arcturus.errors import NotPermitted, NotSignedIn
from arcturus.formats import field, wire_body
from arcturus.observability import logger
from arcturus.roles import (
    ADMIN_PERMISSION,
    DashboardProfile,
    RolesDocument,
    grants,
    permissions_of,
    roles_store,
)
from arcturus.settings import settings

__all__ = [
    "Caller",
    "CallerProfile",
    "authorize",
    "caller_from",
    "claimed_email",
    "resolve_caller",
]

Event = Mapping[str, Any]
"""An HTTP API (payload format 2.0) event, as Lambda passes it."""


@wire_body
class CallerProfile(TypedDict):
    """The signed-in user as the roles document describes them."""

    email: str
    displayName: Annotated[str, field(description="From the roles document, else the email's local part.")]
    role: str
    permissions: list[str]
    services: list[str]
    features: list[str]
    sites: list[str]
    dashboardProfiles: list[DashboardProfile]


@dataclass(frozen=True)
class Caller:
    """A provisioned user, as the roles document describes them at the time of the request."""

    email: str
    role: str
    permissions: tuple[str, ...]
    display_name: str
    services: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()
    dashboard_profiles: tuple[DashboardProfile, ...] = ()

    def permits(self, permission: str) -> bool:
        """Whether the caller's role grants ``permission`` (``*``, ``prefix:*`` or exact)."""
        return grants(self.permissions, permission)

    @property
    def is_admin(self) -> bool:
        """Holds ``*``: every permission, and exempt from rate limits."""
        return ADMIN_PERMISSION in self.permissions

    def profile(self) -> CallerProfile:
        """What ``GET /api/auth/me`` answers: identity, role, permissions, grants and dashboards."""
        return {
            "email": self.email,
            "displayName": self.display_name,
            "role": self.role,
            "permissions": list(self.permissions),
            "services": list(self.services),
            "features": list(self.features),
            "sites": list(self.sites),
            "dashboardProfiles": list(self.dashboard_profiles),
        }


def caller_from(document: RolesDocument, email: str) -> Caller | None:
    """The caller ``email`` is in ``document``, or None when not provisioned."""
    user = document["users"].get(email)
    if user is None:
        return None
    return Caller(
        email=email,
        role=user["role"],
        permissions=permissions_of(document, email),
        display_name=user.get("displayName") or email.partition("@")[0],
        services=tuple(user["services"]),
        features=tuple(user["features"]),
        sites=tuple(user["sites"]),
        dashboard_profiles=tuple(user["dashboardProfiles"]),
    )


def claimed_email(event: Event) -> str | None:
    """The lower-cased ``email`` claim the JWT authorizer passed on, or None.

    The claim must be plain ASCII with nothing around it, checked before lower-casing: Unicode case
    folding maps other characters onto ASCII letters (the Kelvin sign K onto k), and a padded address is
    not the one the issuer verified. ``email_verified`` must be true (the boolean or the string
    ``"true"``): anyone can type an address they do not own at sign-up. An issuer that never sends the
    claim is trusted only when ``REQUIRE_EMAIL_VERIFIED`` is ``false``; a claim it does send must still
    be true.
    """
    claims = (((event.get("requestContext") or {}).get("authorizer") or {}).get("jwt") or {}).get("claims")
    if not isinstance(claims, Mapping):
        return None
    email = claims.get("email")
    if not isinstance(email, str) or not email or not email.isascii() or email != email.strip():
        return None
    if "email_verified" in claims:
        verified = claims["email_verified"]
        if verified is not True and verified != "true":
            return None
    elif settings().require_email_verified:
        return None
    return email.lower()


def resolve_caller(event: Event) -> Caller | None:
    """The provisioned caller of ``event``, or None (no identity, unverified, or not in the document).

    For code that runs before route middlewares, such as the rate limiter exempting admins.
    """
    email = claimed_email(event)
    return None if email is None else caller_from(roles_store().document(), email)


def authorize(event: Event, permission: str | None = None) -> Caller:
    """The provisioned caller of ``event``, granted ``permission`` if one is given.

    Raises NotSignedIn (no verified email claim) or NotPermitted (not provisioned, or not granted).
    """
    email = claimed_email(event)
    if email is None:
        raise NotSignedIn(
            "Sign in first: the request carries no verified email claim (send the OIDC ID token)."
        )
    caller = caller_from(roles_store().document(), email)
    if caller is None:
        logger.info("caller not provisioned", extra={"email": email})
        raise NotPermitted(f"{email} is not provisioned in the roles document.")
    if permission is not None and not caller.permits(permission):
        logger.info("permission denied", extra={"email": email, "permission": permission})
        raise NotPermitted(f"Role {caller.role!r} does not grant {permission!r}.")
    return caller

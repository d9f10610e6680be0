"""The user-roles document (``data:user-roles``): its model, its rules, and its store.

The document is the whole authorization database: ``users`` keyed by lower-case email (role, display
name, services, features, sites, dashboard profiles) and ``roles`` (permissions, description). It is
read on every authenticated request, so ``RolesStore`` keeps it in the container's memory for
``MEMORY_TTL_S`` (a warm request reads DynamoDB zero times) and every write goes through
compare-and-set, so no write is lost and no write lands on a version its author did not see.

Every write is validated in full first (``parse_document``): a write that would leave the document
malformed, pointing at a missing role, or with nobody able to manage roles (a lockout) never reaches
the store.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal, NamedTuple, NotRequired, TypeAlias, get_args

from typing_extensions import TypedDict

from arcturus.container import per_container
from arcturus.errors import ArcturusError, StoreUnavailable, VersionConflict
from arcturus.formats import Validator, after, field, is_email, wire_body
from arcturus.kv import KVNamespace
from arcturus.observability import logger, metrics

if TYPE_CHECKING:
    from pydantic_core import InitErrorDetails

__all__ = [
    "ADMIN_PERMISSION",
    "GRANT_ALL",
    "MANAGE_ROLES",
    "MAX_PROFILES",
    "MAX_WIDGETS",
    "MEMORY_TTL_S",
    "PROFILE_SAVE_ATTEMPTS",
    "RETRY_BASE_S",
    "RETRY_CAP_S",
    "ROLES_KEY",
    "WIDGETS",
    "DashboardProfile",
    "DashboardProfiles",
    "Email",
    "Grant",
    "Permission",
    "ProfileUpdate",
    "RoleEntry",
    "RoleName",
    "RolesDocument",
    "RolesDocumentCorrupt",
    "RolesStore",
    "StoredDocument",
    "UserEntry",
    "UserNotProvisioned",
    "Widget",
    "check_stored",
    "empty_document",
    "grants",
    "parse_document",
    "parse_profile_update",
    "permissions_of",
    "roles_store",
]

ROLES_KEY: Final = "data:user-roles"
Widget = Literal["system-health", "docker-status", "storage", "network"]
WIDGETS: Final[tuple[str, ...]] = get_args(Widget)
"""Every widget a dashboard profile may show; the dashboard and the cache warmup know each of them."""
ADMIN_PERMISSION: Final = "*"
GRANT_ALL: Final = "*"
"""In a user's ``services``, ``features`` or ``sites``: every one."""
MANAGE_ROLES: Final = "manage:roles"
MEMORY_TTL_S: Final = 60.0
"""How long a container trusts its copy: the bound on how stale another container's write can look."""
PROFILE_SAVE_ATTEMPTS: Final = 12
"""Compare-and-set attempts of one profile save. With the backoff below, 20 users saving in the same
instant all land (measured: the unluckiest needs 6 to 8 attempts); a save that still loses gives up
with 503 after at most 5.3 s of sleeping, inside the functions' 10 s timeout."""
RETRY_BASE_S: Final = 0.01
RETRY_CAP_S: Final = 1.0
MAX_PROFILES: Final = 20
MAX_WIDGETS: Final = 16

_SEGMENT = r"[a-z0-9][a-z0-9_.-]*"
_PERMISSION = re.compile(rf"\*|{_SEGMENT}(?::{_SEGMENT})*:(?:{_SEGMENT}|\*)")
_ROLE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")


# -- permissions ---------------------------------------------------------------------------------------


def grants(granted: Iterable[str], wanted: str) -> bool:
    """Whether any permission in ``granted`` covers ``wanted``.

    ``*`` covers everything; ``prefix:*`` covers every permission that starts with ``prefix:``
    (``manage:*`` covers ``manage:roles`` and ``manage:cache``); anything else covers only itself.
    """
    for permission in granted:
        if permission in (ADMIN_PERMISSION, wanted):
            return True
        if permission.endswith(":*") and wanted.startswith(permission[:-1]):
            return True
    return False


def _permission(value: str) -> str:
    if not _PERMISSION.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a permission: use '*', 'verb:object' (lower-case, e.g. 'view:status') "
            "or 'verb:*'"
        )
    return value


def _email(value: str) -> str:
    if value != value.strip().lower():
        raise ValueError(f"{value!r} must be lower-case without surrounding spaces")
    if not value.isascii() or not is_email(value):
        raise ValueError(f"{value!r} is not a valid email address")
    return value


def _role_name(value: str) -> str:
    if not _ROLE_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a role name: lower-case letters, digits, '-' or '_', up to 64")
    return value


def _unique_profile_ids(profiles: list[DashboardProfile]) -> list[DashboardProfile]:
    seen: set[str] = set()
    for profile in profiles:
        if profile["id"] in seen:
            raise ValueError(f"profile id {profile['id']!r} appears more than once; ids must be unique")
        seen.add(profile["id"])
    return profiles


# Aliases as strings: their metadata is made when pydantic first reads them (``arcturus.formats``).
Permission: TypeAlias = "Annotated[str, after(_permission)]"
Email: TypeAlias = "Annotated[str, after(_email)]"
RoleName: TypeAlias = "Annotated[str, after(_role_name)]"
Grant: TypeAlias = "Annotated[str, field(min_length=1, max_length=200)]"


# -- the document --------------------------------------------------------------------------------------


@wire_body
class DashboardProfile(TypedDict):
    """A named set of widgets a user can switch to on the dashboard."""

    id: Annotated[str, field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    name: Annotated[str, field(min_length=1, max_length=100)]
    widgets: Annotated[list[Widget], field(max_length=MAX_WIDGETS)]


DashboardProfiles: TypeAlias = (
    "Annotated[list[DashboardProfile], field(max_length=MAX_PROFILES), after(_unique_profile_ids)]"
)


# The snake_case names earlier versions read too (their models took either).
_DISPLAY_NAME: Final = ("displayName", "display_name")
_DASHBOARD_PROFILES: Final = ("dashboardProfiles", "dashboard_profiles")


@wire_body
class UserEntry(TypedDict):
    """One provisioned user; ``*`` in services, features or sites means all of them.

    A document the store holds has every key but ``displayName``, which is there only when set.
    """

    email: Email
    role: RoleName
    displayName: NotRequired[Annotated[str | None, field(max_length=100, accepts=_DISPLAY_NAME)]]
    services: NotRequired[list[Grant]]
    features: NotRequired[list[Grant]]
    sites: NotRequired[list[Grant]]
    dashboardProfiles: NotRequired[Annotated[DashboardProfiles, field(accepts=_DASHBOARD_PROFILES)]]


@wire_body
class RoleEntry(TypedDict):
    """A role: the permissions it grants."""

    permissions: list[Permission]
    description: NotRequired[Annotated[str, field(max_length=500)]]


@wire_body
class RolesDocument(TypedDict):
    """The whole ``data:user-roles`` document, as stored and as the API shows it."""

    users: NotRequired[dict[Email, UserEntry]]
    roles: NotRequired[dict[RoleName, RoleEntry]]


@wire_body
class ProfileUpdate(TypedDict):
    """The body of ``POST /api/auth/profile``: the caller's complete new list of profiles."""

    dashboardProfiles: Annotated[DashboardProfiles, field(accepts=_DASHBOARD_PROFILES)]


def empty_document() -> RolesDocument:
    """The document of a table that has none yet: nobody is provisioned."""
    return {"users": {}, "roles": {}}


def permissions_of(document: RolesDocument, email: str) -> tuple[str, ...]:
    """The permissions of the user's role (none when the user or the role is missing)."""
    user = document["users"].get(email)
    role = document["roles"].get(user["role"]) if user else None
    return tuple(role["permissions"]) if role else ()


class UserNotProvisioned(ArcturusError):
    """The email has no entry in the roles document."""


class RolesDocumentCorrupt(ArcturusError):
    """The stored document does not parse (edited by hand around the API); nobody is authorized."""


_DOCUMENT: Final[Validator[RolesDocument]] = Validator(RolesDocument)
_PROFILE_UPDATE: Final[Validator[ProfileUpdate]] = Validator(ProfileUpdate)
_BASE_PROFILES: Final[Validator[dict[str, list[DashboardProfile]]]] = Validator(
    dict[str, list[DashboardProfile]]
)


def _complete(document: RolesDocument) -> RolesDocument:
    """``document`` (validated) with every key the store keeps: what the API shows and the code reads.

    Absent lists become empty, an absent description empty, a null ``displayName`` absent; keys in the
    order the API has always shown them.
    """
    users: dict[str, UserEntry] = {}
    for email, user in document.get("users", {}).items():
        entry: UserEntry = {"email": user["email"], "role": user["role"]}
        display_name = user.get("displayName")
        if display_name is not None:
            entry["displayName"] = display_name
        entry["services"] = user.get("services", [])
        entry["features"] = user.get("features", [])
        entry["sites"] = user.get("sites", [])
        entry["dashboardProfiles"] = user.get("dashboardProfiles", [])
        users[email] = entry
    roles: dict[str, RoleEntry] = {
        name: {"permissions": role["permissions"], "description": role.get("description", "")}
        for name, role in document.get("roles", {}).items()
    }
    return {"users": users, "roles": roles}


def parse_document(data: Any) -> RolesDocument:
    """Validate ``data`` as a document that may be written; raises pydantic's ValidationError.

    Beyond the shape: every key equals its entry's ``email``, every user's role exists, and at least
    one user keeps ``*`` or ``manage:roles`` so the document cannot lock every administrator out.
    Each error names the field (``users.<email>.role``) and says why.
    """
    document = _complete(_DOCUMENT.json(data) if isinstance(data, str | bytes) else _DOCUMENT.python(data))
    errors = list(_reference_errors(document))
    if errors:
        from pydantic_core import ValidationError  # noqa: PLC0415 - a write path: see arcturus.formats

        raise ValidationError.from_exception_data("RolesDocument", errors)
    return document


def parse_profile_update(text: str | bytes) -> list[DashboardProfile]:
    """The profiles of a ``POST /api/auth/profile`` body; raises pydantic's ValidationError."""
    return _PROFILE_UPDATE.json(text)["dashboardProfiles"]


class StoredDocument(NamedTuple):
    """The roles document as the store writes it: its JSON, and the KV metadata that holds its seal."""

    text: str
    metadata: dict[str, str]


def check_stored(text: str | bytes) -> StoredDocument:
    """What to store under ``ROLES_KEY`` for a document written by hand (``kv put``, a bulk import, the
    local seed): validated as ``PUT /api/auth/roles`` validates it, and sealed as the store seals what
    it writes, so no function validates it again on its cold start. ValueError (pydantic's
    ValidationError is one) says why it is refused.

    The fields the store itself keeps in the stored JSON (``revision``, ``baseProfiles``) may be there,
    as ``kv get`` shows them, and are kept: the revision is the document's ETag, and the base profiles
    are what an administrator's edit based on it is merged against.
    """
    data = json.loads(text)
    if not isinstance(data, dict):
        return _stored(parse_document(data), None, {})  # refused, with pydantic's own words
    revision = data.get("revision")
    if revision is not None and not isinstance(revision, str):
        raise ValueError(f"revision must be a string (the ETag), not {type(revision).__name__}")
    base = _BASE_PROFILES.python(data.get("baseProfiles", {}))
    document = parse_document({name: value for name, value in data.items() if name not in _STORE_FIELDS})
    return _stored(document, revision, base)


def _reference_errors(document: RolesDocument) -> Iterable[InitErrorDetails]:
    users, roles = document["users"], document["roles"]
    for key, user in users.items():
        if user["email"] != key:
            yield _error(
                ("users", key, "email"),
                "email_mismatch",
                f"the entry's email {user['email']!r} differs from its key {key!r}",
                user["email"],
            )
        if user["role"] not in roles:
            yield _error(
                ("users", key, "role"),
                "unknown_role",
                f"role {user['role']!r} is not defined in roles (defined: {', '.join(sorted(roles))})",
                user["role"],
            )
    if not any(grants(permissions_of(document, email), MANAGE_ROLES) for email in users):
        yield _error(
            ("users",),
            "lockout",
            f"no user would keep '{ADMIN_PERMISSION}' or '{MANAGE_ROLES}': the document would lock every "
            "administrator out",
            sorted(users),
        )


def _error(loc: tuple[str | int, ...], kind: str, message: str, value: Any) -> InitErrorDetails:
    from pydantic_core import InitErrorDetails, PydanticCustomError  # noqa: PLC0415 - a write path

    # The message is passed as a context value so braces in user input are never read as a template.
    return InitErrorDetails(type=PydanticCustomError(kind, "{why}", {"why": message}), loc=loc, input=value)


def _seal(text: str | bytes) -> str:
    """The digest the store keeps in the KV metadata of the JSON it validated (``_SEAL``).

    A read whose JSON still matches it needs no validation, so reading the document never imports
    pydantic; JSON edited around the store (a hand edit in the console) no longer matches and is
    validated in full before anyone is authorized by it. It guards against accidents, not attackers:
    whoever can write the table can write a valid document. Kept in the metadata, not the JSON, so an
    earlier version of the functions (a rollback) reads the document as it always did.
    """
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


# -- the store -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Stored:
    """The document as stored: its KV version (for compare-and-set), its access ``revision`` (the ETag),
    and ``base_profiles``: each user whose profiles changed since that revision, with the profiles they
    had at it, so an administrator's edit based on the revision can be merged with those saves."""

    document: RolesDocument
    kv_version: str | None
    revision: str | None
    base_profiles: dict[str, list[DashboardProfile]]
    read_at: float


class RolesStore:
    """The roles document in KV with this container's copy in front of it.

    ``document()`` answers from memory while the copy is younger than ``ttl`` seconds (no DynamoDB
    call), else reads it once, strongly consistent. Writes go through ``put_if_version`` and replace
    the copy at once, so a write through this container is visible to it immediately; other containers
    see it within ``ttl``. A store error is raised, never answered from an expired copy: authorization
    fails closed.

    Two kinds of write share the document. An administrator's ``replace`` changes who may do what and
    starts a new ``revision`` (the ETag); a user's ``update_user_profiles`` changes only their own
    dashboard profiles and keeps the revision. So an edit based on revision R is refused (a conflict)
    only when access changed since R, or when it changes the profiles of a user who saved their own
    since R; otherwise it lands, and users' saves since R are kept (a three-way merge per user, the
    base being the profiles at R).
    """

    def __init__(
        self,
        kv: KVNamespace,
        *,
        ttl: float = MEMORY_TTL_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._kv = kv
        self._ttl = ttl
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._copy: _Stored | None = None

    def document(self) -> RolesDocument:
        """The document, from memory while fresh."""
        copy = self._fresh_copy()
        if copy is not None:
            return copy.document
        with self._lock:
            # Another thread may have refreshed while this one waited for the lock.
            copy = self._fresh_copy()
            return copy.document if copy is not None else self._load().document

    def refresh(self) -> RolesDocument:
        """Re-read the document now, whatever the age of the copy (the cache warmup calls this)."""
        with self._lock:
            return self._load().document

    def read_with_version(self) -> tuple[RolesDocument, str | None]:
        """The stored document and its revision (the ETag) by a strongly consistent read (None: never
        written)."""
        with self._lock:
            copy = self._load()
        return copy.document, copy.revision

    def replace(self, data: Any, revision: str | None) -> tuple[RolesDocument, str]:
        """Validate ``data`` (the document, or its JSON text) and store it if access is still as at
        ``revision``; users' own profile saves since then are merged in (see the class docstring).

        Returns the stored document and its new revision. Raises ValidationError (nothing written),
        VersionConflict (access changed since ``revision``, or the edit changes profiles their user
        saved since), or StoreUnavailable when profile saves kept landing in between.
        """
        document = parse_document(data)
        for attempt in range(PROFILE_SAVE_ATTEMPTS):
            self._back_off(attempt)
            with self._lock:
                stored = self._load()
            if stored.revision != revision:
                raise VersionConflict("the roles document's access changed since that revision")
            merged = _merge_profiles(document, stored)
            new_revision = uuid.uuid4().hex
            try:
                self._write(merged, stored.kv_version, new_revision, {})
            except VersionConflict:
                continue  # a profile save landed in between: merge with it too
            logger.info(
                "roles document replaced", extra={"version": new_revision, "users": len(merged["users"])}
            )
            return merged, new_revision
        raise StoreUnavailable("the roles document kept changing while it was replaced")

    def update_user_profiles(self, email: str, profiles: Sequence[DashboardProfile]) -> UserEntry:
        """Set one user's dashboard profiles by read-modify-write, retried on conflict.

        Concurrent saves by different users each land: a save that loses the compare-and-set re-reads
        the winner's document and applies its change on top. The first attempt builds on the memory
        copy when it is fresh (a warm save costs one write and no read); a stale copy just loses the
        compare-and-set and the retry reads. Raises UserNotProvisioned when the email has no entry,
        StoreUnavailable when the document kept changing for every attempt.
        """
        for attempt in range(PROFILE_SAVE_ATTEMPTS):
            self._back_off(attempt)
            stored = self._fresh_copy() if attempt == 0 else None
            if stored is None or stored.kv_version is None or email not in stored.document["users"]:
                with self._lock:
                    stored = self._load()
            user = stored.document["users"].get(email)
            if user is None:
                raise UserNotProvisioned(email)
            updated: UserEntry = {**user, "dashboardProfiles": list(profiles)}
            changed: RolesDocument = {
                **stored.document,
                "users": {**stored.document["users"], email: updated},
            }
            base = {email: user["dashboardProfiles"]} | stored.base_profiles
            try:
                self._write(changed, stored.kv_version, stored.revision, base)
            except VersionConflict:
                metrics.add_metric(name="RolesWriteConflict", unit="Count", value=1)
                continue
            return updated
        raise StoreUnavailable(f"the roles document kept changing; {email}'s profiles were not saved")

    def _back_off(self, attempt: int) -> None:
        if attempt:
            # Full jitter keeps colliding writers from colliding again in lock-step.
            backoff = min(RETRY_CAP_S, RETRY_BASE_S * 2 ** (attempt - 1))
            self._sleep(random.uniform(0, backoff))  # noqa: S311 - jitter, not a secret

    def _write(
        self,
        document: RolesDocument,
        kv_version: str | None,
        revision: str | None,
        base_profiles: dict[str, list[DashboardProfile]],
    ) -> None:
        stored = _stored(document, revision, base_profiles)
        new_kv_version = self._kv.put_if_version(ROLES_KEY, stored.text, kv_version, metadata=stored.metadata)
        with self._lock:
            self._copy = _Stored(document, new_kv_version, revision, base_profiles, self._clock())

    def _fresh_copy(self) -> _Stored | None:
        copy = self._copy
        return copy if copy is not None and self._clock() - copy.read_at < self._ttl else None

    def _load(self) -> _Stored:
        """Read the stored document into the copy (call with the lock held)."""
        text, kv_version, metadata = self._kv.get_with_version_and_metadata(ROLES_KEY, "bytes")
        if text is None:
            self._copy = _Stored(empty_document(), None, None, {}, self._clock())
            return self._copy
        try:
            raw = json.loads(text)
            document, base = _sealed(raw, text, metadata) or _validated(raw)
        except ValueError as error:  # pydantic's ValidationError is one
            # Fail closed and loudly: a hand-edited broken document must not half-authorize anyone.
            logger.error("the stored roles document is invalid", extra={"version": kv_version})
            raise RolesDocumentCorrupt(f"{ROLES_KEY} (version {kv_version}) is invalid: {error}") from error
        # A document written before revisions existed: its KV version was its ETag.
        revision = raw.get("revision") or kv_version
        self._copy = _Stored(document, kv_version, revision, base, self._clock())
        return self._copy


_STORE_FIELDS: Final = ("revision", "baseProfiles")
"""What the store keeps in the stored JSON beside the document itself."""
_SEAL: Final = "seal"
"""The KV metadata field of the document's seal."""


def _stored(
    document: RolesDocument, revision: str | None, base_profiles: dict[str, list[DashboardProfile]]
) -> StoredDocument:
    """What the store writes: the document, its revision and the base profiles if any, sealed."""
    stored: dict[str, Any] = {**document, "revision": revision}
    if base_profiles:
        stored["baseProfiles"] = base_profiles
    text = json.dumps(stored, separators=(",", ":"), ensure_ascii=False)
    return StoredDocument(text, {_SEAL: _seal(text)})


def _sealed(
    raw: Any, text: bytes, metadata: Any
) -> tuple[RolesDocument, dict[str, list[DashboardProfile]]] | None:
    """The document and base profiles of stored JSON (``raw``, parsed from ``text``) that the store
    wrote and nobody changed since, else None (and it is validated in full)."""
    if not isinstance(metadata, dict) or metadata.get(_SEAL) != _seal(text):
        return None
    if (
        not isinstance(raw, dict)
        or not isinstance(raw.get("users"), dict)
        or not isinstance(raw.get("roles"), dict)
    ):
        return None  # the store never writes this: a forged seal, validated (and refused) in full
    return {"users": raw["users"], "roles": raw["roles"]}, raw.get("baseProfiles", {})


def _validated(raw: Any) -> tuple[RolesDocument, dict[str, list[DashboardProfile]]]:
    """The document and base profiles of stored JSON without a valid seal, validated in full (shape
    only: a document the store did not write is still read as long as it is well-formed)."""
    if not isinstance(raw, dict):
        raise ValueError(f"the stored JSON is a {type(raw).__name__}, not an object")
    logger.warning(
        "the stored roles document was written around the store (no valid seal): every cold start "
        "validates it until it is written through PUT /api/auth/roles or kv put"
    )
    base = _BASE_PROFILES.python(raw.get("baseProfiles", {}))
    document = _DOCUMENT.python({name: value for name, value in raw.items() if name not in _STORE_FIELDS})
    return _complete(document), base


def _merge_profiles(edited: RolesDocument, stored: _Stored) -> RolesDocument:
    """``edited`` (based on the stored revision) with the profile saves users made since it.

    Per user: profiles the edit left as they were at the revision take the user's saves; profiles only
    the edit changed take the edit's; both changed (differently) is a VersionConflict.
    """
    users = dict(edited["users"])
    for email, user in edited["users"].items():
        current = stored.document["users"].get(email)
        if current is None:
            continue
        base = stored.base_profiles.get(email, current["dashboardProfiles"])
        mine, theirs = user["dashboardProfiles"], current["dashboardProfiles"]
        if mine == base:
            users[email] = {**user, "dashboardProfiles": theirs}
        elif theirs not in (base, mine):
            raise VersionConflict(f"{email} saved dashboard profiles that this edit changes too")
    return {**edited, "users": users}


@per_container
def roles_store() -> RolesStore:
    """The container's roles store on the configured KV namespace (built on first use, then reused)."""
    return RolesStore(KVNamespace.from_env())

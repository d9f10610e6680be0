"""Every route fuzzed through ``python -m local serve`` with schemathesis, against docs/openapi.json.

The cases come from the committed document (which ``GET /api/openapi.json`` serves: checked below),
drawn deterministically, a bounded number per operation. Every answer must be no server error, have a
documented status, content type, headers and body, and every error must be problem JSON (API Gateway's
own ``{"message": "Unauthorized"}`` from the JWT authorizer aside). Invalid input must be refused with a
4xx, and each signed-in route must refuse a request without its credentials.

Signed-in routes get an administrator's token (so permission checks pass and the routes' own code
runs), the warmup its bearer secret. A second, smaller pass signs in as a member on the routes only an
administrator may call: whatever the input, the answer is 403 (permissions are checked before the body).

The requests come from their own loopback address, so the rate limits they exhaust (429 is a documented
answer too) are nobody else's. PUT /api/auth/roles cannot succeed here (its If-Match would have to
guess a random version), so no fuzzed document replaces the roles; POST /api/auth/profile does change
the administrator's dashboard profiles, and the roles document is put back as it was afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from requests.adapters import HTTPAdapter

from local.datadir import DataDir
from local.endpoint import client
from tests.integration.conftest import ROOT, LocalServe

pytestmark = pytest.mark.integration

DOCUMENT = ROOT / "docs" / "openapi.json"
FUZZ_ADDRESS = "127.0.7.1"
ADMIN, MEMBER = "admin@example.com", "member@example.com"
ADMIN_ONLY = ("GET /api/auth/roles", "PUT /api/auth/roles", "GET /api/cache/status")
UNREACHABLE_SUCCESS = {"PUT /api/auth/roles": "its If-Match would have to guess the stored version"}


def _config(max_examples: int, *, coverage: bool) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "seed": 20260701,
            "request-timeout": 30,
            "generation": {"max-examples": max_examples, "deterministic": True, "database": "none"},
            "phases": {
                "coverage": {
                    "enabled": coverage,
                    # Methods a route does not have: API Gateway answers them itself (404), as the
                    # local gateway does; TRACE and QUERY never reach an HTTP API's routes.
                    "unexpected-methods": ["GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"],
                },
                "stateful": {"enabled": False},
            },
            "checks": {
                # Valid by the document is not always acceptable: a session id or profile that does
                # not exist (404), a stale If-Match (412), an email the roles document lacks. The
                # document states shapes, not which values exist.
                "positive_data_acceptance": {"enabled": False},
                # API Gateway answers an undeclared method with 404 (no route), not 405 and Allow.
                "unsupported_method": {"enabled": False},
            },
        }
    )


schema = schemathesis.openapi.from_path(DOCUMENT, config=_config(40, coverage=True))
admin_only = schemathesis.openapi.from_path(DOCUMENT, config=_config(8, coverage=False)).include(
    name=list(ADMIN_ONLY)
)


class Credentials:
    """Sends each operation the bearer its security scheme asks for (nothing on public routes)."""

    by_scheme: dict[str, str]

    def get(self, case: schemathesis.Case, context: schemathesis.AuthContext) -> str | None:
        security = case.operation.definition.raw.get("security", [])
        schemes = [name for requirement in security for name in requirement]
        return self.by_scheme.get(schemes[0]) if schemes else None

    def set(self, case: schemathesis.Case, data: str, context: schemathesis.AuthContext) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@schema.auth(refresh_interval=None)
class AsAdministrator(Credentials):
    by_scheme: dict[str, str] = {}  # noqa: RUF012 - filled by the signed_in fixture, read by schemathesis


@admin_only.auth(refresh_interval=None)
class AsMember(Credentials):
    by_scheme: dict[str, str] = {}  # noqa: RUF012 - filled by the signed_in fixture, read by schemathesis


@schemathesis.check
def problem_details(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """Every error is RFC 9457 problem JSON whose status is the answer's, but API Gateway's own 401."""
    if response.status_code < 400:
        return None
    media_type = (response.headers.get("content-type") or [""])[0]
    body = json.loads(response.content)
    if response.status_code == 401 and media_type == "application/json":
        assert body == {"message": "Unauthorized"}, (
            f"401 that is neither the authorizer's nor problem JSON: {body}"
        )
        return None
    assert media_type == "application/problem+json", f"{response.status_code} answered as {media_type!r}"
    assert body.get("type") == "about:blank", body
    assert body.get("status") == response.status_code, body
    assert isinstance(body.get("title"), str), body
    assert isinstance(body.get("detail"), str), body
    return True


class _FromAddress(HTTPAdapter):
    """Connections from one loopback address: the rate limiter keys on the client's address."""

    def __init__(self, address: str) -> None:
        self._address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self._address, 0)
        super().init_poolmanager(*args, **kwargs)


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as fuzzing:
        fuzzing.mount("http://", _FromAddress(FUZZ_ADDRESS))
        yield fuzzing


@pytest.fixture(scope="module")
def tokens(app: LocalServe) -> dict[str, str]:
    return {
        email: app.cli("token", "--email", email, "--ttl", "900").stdout.splitlines()[-1]
        for email in (ADMIN, MEMBER)
    }


@pytest.fixture(scope="module")
def warmup_secret(app: LocalServe) -> str:
    info = DataDir(app.data_dir).running()
    assert info is not None
    secret: str = client("secretsmanager", info.aws).get_secret_value(SecretId="CacheWarmupSecret")[
        "SecretString"
    ]
    return secret


@pytest.fixture(scope="module")
def roles_kept(app: LocalServe, tokens: dict[str, str], session: requests.Session) -> Iterator[None]:
    """The roles document as the fuzzing found it, put back when it is done."""
    admin = {"Authorization": f"Bearer {tokens[ADMIN]}"}
    url = f"http://127.0.0.1:{app.port}/api/auth/roles"
    original = session.get(url, headers=admin, timeout=30)
    assert original.status_code == 200, original.text
    yield
    current = session.get(url, headers=admin, timeout=30)
    restored = session.put(
        url, headers=admin | {"If-Match": current.headers["ETag"]}, json=original.json(), timeout=30
    )
    assert restored.status_code == 200, restored.text


@dataclass
class Tally:
    """What one operation's cases were answered."""

    operation: str = ""
    statuses: list[int] = field(default_factory=list)


@pytest.fixture
def tally() -> Iterator[Tally]:
    """Per operation: its success must have been reached, or every pass would hold on 401s alone."""
    answers = Tally()
    yield answers
    assert answers.statuses, "no case was sent"
    if answers.operation not in UNREACHABLE_SUCCESS:
        assert any(200 <= status < 300 for status in answers.statuses), (answers.operation, answers.statuses)


@pytest.fixture(scope="module")
def signed_in(tokens: dict[str, str], warmup_secret: str, roles_kept: None) -> Iterator[None]:
    """The credentials each pass sends, for as long as this module's tests run."""
    AsAdministrator.by_scheme.update(jwt=tokens[ADMIN], warmupSecret=warmup_secret)
    AsMember.by_scheme.update(jwt=tokens[MEMBER])
    yield
    AsAdministrator.by_scheme.clear()
    AsMember.by_scheme.clear()


def test_the_served_document_is_the_committed_one(app: LocalServe) -> None:
    served = app.request("GET", "/api/openapi.json", timeout=120)

    assert served.status == 200, served.body
    assert served.header("Content-Type") == "application/json"
    assert served.body == DOCUMENT.read_bytes()


@schema.parametrize()
# The tally is meant to outlive each input: it collects the statuses of all of them.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_answer_conforms(
    case: schemathesis.Case, app: LocalServe, session: requests.Session, signed_in: None, tally: Tally
) -> None:
    response = case.call_and_validate(
        base_url=f"http://127.0.0.1:{app.port}", session=session, additional_checks=[problem_details]
    )

    tally.operation = case.operation.label
    tally.statuses.append(response.status_code)


@admin_only.parametrize()
def test_a_member_is_refused_whatever_the_request(
    case: schemathesis.Case, app: LocalServe, session: requests.Session, signed_in: None
) -> None:
    response = case.call_and_validate(
        base_url=f"http://127.0.0.1:{app.port}", session=session, additional_checks=[problem_details]
    )

    # Negative cases may leave the credentials out (the authorizer refuses first), or send a body that is
    # not text at all (no request to read, so nothing to authorize).
    signed = response.request.headers.get("Authorization") == f"Bearer {AsMember.by_scheme['jwt']}"
    expected = 403 if signed and readable(response.request.body) else 400 if signed else 401
    assert response.status_code == expected, (case.operation.label, response.content)


def readable(body: bytes | str | None) -> bool:
    """Whether a request's body is absent or UTF-8 text: what a function can read.

    A str body goes over the wire as ISO-8859-1, so ``"\\x80"`` arrives as a byte that is not UTF-8.
    """
    if body is None:
        return True
    if isinstance(body, str):
        body = body.encode("latin-1", errors="replace")
    try:
        body.decode()
    except UnicodeDecodeError:
        return False
    return True


# -- hostile values the document's strategies do not draw ------------------------------------------------

BODY_FIELDS = {
    "/api/contact": ("name", "email", "message"),
    "/api/public/chat": ("message", "sessionId"),
    "/api/auth/profile": ("dashboardProfiles",),
}
UNICODE_TRAPS = ("\u2028", "\u2029", "\u0085", "\u202e", "\u2066", "\u200b", "\ufeff", "\x9b", "\u212a")
HOSTILE = st.one_of(
    # Past Python's 4,300-digit limit on int(str): json.loads refuses these with a bare ValueError.
    st.integers(min_value=4_301, max_value=6_000).map(lambda digits: "9" * digits),
    st.builds(
        lambda before, trap, after: json.dumps(before + trap + after, ensure_ascii=False),
        st.text(max_size=20),
        st.sampled_from(UNICODE_TRAPS),
        st.text(max_size=20),
    ),
)


@pytest.fixture(scope="module")
def hostile_session() -> Iterator[requests.Session]:
    """Its own loopback address: these requests spend no other test's rate-limit quota."""
    with requests.Session() as hostile:
        hostile.mount("http://", _FromAddress("127.0.7.2"))
        yield hostile


@pytest.mark.parametrize("path", sorted(BODY_FIELDS))
@settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(values=st.lists(HOSTILE, min_size=1, max_size=3))
def test_huge_integers_and_unicode_traps_are_refused_not_crashed_on(
    app: LocalServe, hostile_session: requests.Session, tokens: dict[str, str], path: str, values: list[str]
) -> None:
    fields = BODY_FIELDS[path]
    body = "{" + ", ".join(f'"{fields[i % len(fields)]}": {value}' for i, value in enumerate(values)) + "}"

    response = hostile_session.post(
        f"http://127.0.0.1:{app.port}{path}",
        data=body.encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {tokens[ADMIN]}"},
        timeout=30,
    )

    assert response.status_code < 500, (path, body[:200], response.text)
    if response.status_code >= 400:
        assert response.headers["Content-Type"] == "application/problem+json", response.text

"""The auth functions in process: GET /api/auth/me, POST /api/auth/profile, GET and PUT /api/auth/roles.

Concurrency is tested a layer down (test_roles.py: 20 threads on the store) and over HTTP
(tests/integration/test_auth.py: 20 requests to separate worker processes), not here: Powertools keeps
the current event on a class attribute, so two handlers in one process cannot run at once (Lambda
never does that either).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from arcturus import aws
from arcturus.kv import KVNamespace
from arcturus.roles import ROLES_KEY, RolesStore
from tests.unit.support import (
    ADMIN,
    DEMO,
    MEMBER,
    DynamoDBCalls,
    claims_for,
    cold_start,
    http_event,
    invoke,
    json_body,
    load_function,
    provision,
    roles_document,
)


@pytest.fixture
def stored(dynamodb: Any) -> KVNamespace:
    """The KV namespace holding the three users of the original design (a fresh container's view)."""
    cold_start()
    provision()
    return KVNamespace.from_env()


def me(module: ModuleType, email: str | None) -> dict[str, Any]:
    return invoke(module, http_event("GET", "/api/auth/me", claims=claims_for(email) if email else None))


def save_profiles(module: ModuleType, email: str, body: Any) -> dict[str, Any]:
    return invoke(module, http_event("POST", "/api/auth/profile", body=body, claims=claims_for(email)))


def get_roles(module: ModuleType, email: str = ADMIN) -> dict[str, Any]:
    return invoke(module, http_event("GET", "/api/auth/roles", claims=claims_for(email)))


def put_roles(module: ModuleType, body: Any, if_match: str | None, email: str = ADMIN) -> dict[str, Any]:
    headers = {"If-Match": if_match} if if_match is not None else {}
    return invoke(
        module, http_event("PUT", "/api/auth/roles", body=body, headers=headers, claims=claims_for(email))
    )


def problem(response: dict[str, Any]) -> dict[str, Any]:
    assert response["headers"]["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = json_body(response)
    assert body["status"] == response["statusCode"]
    return body


class TestMe:
    @pytest.mark.parametrize(
        ("email", "role", "permissions"),
        [
            (ADMIN, "admin", ["*"]),
            (MEMBER, "member", ["view:dashboard", "use:chat", "view:status"]),
            (DEMO, "demo", ["view:dashboard", "view:status"]),
        ],
    )
    def test_each_user_gets_their_resolved_profile(
        self, stored: KVNamespace, email: str, role: str, permissions: list[str]
    ) -> None:
        response = me(load_function("auth_me"), email)

        assert response["statusCode"] == 200
        body = json_body(response)
        assert (body["email"], body["role"], body["permissions"]) == (email, role, permissions)
        assert set(body) == {
            "email",
            "displayName",
            "role",
            "permissions",
            "services",
            "features",
            "sites",
            "dashboardProfiles",
        }

    def test_unauthenticated_is_401_and_unprovisioned_is_403(self, stored: KVNamespace) -> None:
        module = load_function("auth_me")

        assert problem(me(module, None))["status"] == 401
        assert problem(me(module, "stranger@example.com"))["status"] == 403

    def test_cold_costs_one_read_and_warm_costs_none(self, stored: KVNamespace) -> None:
        with DynamoDBCalls(aws.dynamodb()) as calls:
            module = load_function("auth_me")
            me(module, MEMBER)
            cold = list(calls.operations)
            calls.reset()
            for _ in range(10):
                me(module, MEMBER)

        assert cold == ["GetItem"]
        assert calls.operations == []


class TestProfile:
    def test_saving_replaces_the_callers_profiles_and_me_shows_them(self, stored: KVNamespace) -> None:
        profiles = [
            {"id": "ops", "name": "Ops", "widgets": ["docker-status", "network"]},
            {"id": "disk", "name": "Disk", "widgets": ["storage"]},
        ]

        response = save_profiles(load_function("auth_profile"), DEMO, {"dashboardProfiles": profiles})

        assert response["statusCode"] == 200
        assert json_body(response)["dashboardProfiles"] == profiles
        assert json_body(response)["email"] == DEMO
        assert stored.get(ROLES_KEY, "json")["users"][DEMO]["dashboardProfiles"] == profiles
        assert json_body(me(load_function("auth_me"), DEMO))["dashboardProfiles"] == profiles

    def test_only_the_callers_entry_changes(self, stored: KVNamespace) -> None:
        before = stored.get(ROLES_KEY, "json")

        save_profiles(load_function("auth_profile"), MEMBER, {"dashboardProfiles": []})

        after = RolesStore(stored).document()
        assert after["users"][MEMBER]["dashboardProfiles"] == []
        after["users"][MEMBER]["dashboardProfiles"] = before["users"][MEMBER]["dashboardProfiles"]
        assert after == before

    @pytest.mark.parametrize(
        ("body", "field", "why"),
        [
            (
                {"dashboardProfiles": [{"id": "a", "name": "A", "widgets": ["mining"]}]},
                "dashboardProfiles.0.widgets.0",
                "'system-health'",
            ),
            (
                {"dashboardProfiles": [{"id": "a", "name": "A", "widgets": []}] * 2},
                "dashboardProfiles",
                "'a' appears more than once",
            ),
            ({"profiles": []}, "dashboardProfiles", "Field required"),
            ("{not json", "", "Invalid JSON"),
        ],
    )
    def test_invalid_profiles_are_422_naming_the_field_and_nothing_is_written(
        self, stored: KVNamespace, body: Any, field: str, why: str
    ) -> None:
        before = stored.get_with_version(ROLES_KEY, "json")

        response = save_profiles(load_function("auth_profile"), MEMBER, body)

        errors = {error["field"]: error["message"] for error in problem(response)["errors"]}
        assert response["statusCode"] == 422
        assert why in errors[field]
        assert stored.get_with_version(ROLES_KEY, "json") == before

    def test_a_body_in_another_media_type_is_415_and_nothing_is_written(self, stored: KVNamespace) -> None:
        before = stored.get_with_version(ROLES_KEY, "json")
        body = '{"dashboardProfiles": []}'

        response = invoke(
            load_function("auth_profile"),
            http_event(
                "POST",
                "/api/auth/profile",
                body=body,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                claims=claims_for(MEMBER),
            ),
        )

        assert problem(response)["status"] == 415
        assert stored.get_with_version(ROLES_KEY, "json") == before

    def test_identity_is_checked_before_the_body(self, stored: KVNamespace) -> None:
        response = save_profiles(load_function("auth_profile"), "stranger@example.com", "{not json")

        assert problem(response)["status"] == 403


class TestRoles:
    def test_get_returns_the_document_with_its_version_as_etag(self, stored: KVNamespace) -> None:
        value, version = stored.get_with_version(ROLES_KEY, "json")

        response = get_roles(load_function("auth_roles"))

        assert response["statusCode"] == 200
        assert response["headers"]["ETag"] == f'"{version}"'
        assert response["headers"]["Cache-Control"] == "no-store"
        assert json_body(response) == value

    @pytest.mark.parametrize("email", [MEMBER, DEMO])
    def test_only_manage_roles_may_read_or_write(self, stored: KVNamespace, email: str) -> None:
        module = load_function("auth_roles")
        etag = get_roles(module)["headers"]["ETag"]

        assert problem(get_roles(module, email))["status"] == 403
        assert problem(put_roles(module, roles_document(), etag, email))["status"] == 403

    def test_put_with_the_current_etag_replaces_the_document(self, stored: KVNamespace) -> None:
        module = load_function("auth_roles")
        etag = get_roles(module)["headers"]["ETag"]
        data = roles_document("new@example.com")

        response = put_roles(module, data, etag)

        assert response["statusCode"] == 200
        new_value, new_revision = RolesStore(stored).read_with_version()
        assert new_value == data
        assert response["headers"]["ETag"] == f'"{new_revision}"' != etag
        assert json_body(response) == data

    def test_the_writing_container_sees_the_change_at_once(self, stored: KVNamespace) -> None:
        module = load_function("auth_roles")
        data = roles_document()
        data["users"][MEMBER]["role"] = "admin"

        put_roles(module, data, get_roles(module)["headers"]["ETag"])

        # The member is an admin now: this container answers from the copy the PUT left behind.
        with DynamoDBCalls(aws.dynamodb()) as calls:
            response = get_roles(module, MEMBER)
        assert response["statusCode"] == 200
        assert calls.operations == ["GetItem"]

    def test_without_if_match_is_428(self, stored: KVNamespace) -> None:
        before = stored.get_with_version(ROLES_KEY, "json")

        response = put_roles(load_function("auth_roles"), roles_document("x@example.com"), None)

        assert problem(response)["status"] == 428
        assert stored.get_with_version(ROLES_KEY, "json") == before

    def test_if_match_star_is_refused_as_a_blind_overwrite(self, stored: KVNamespace) -> None:
        response = put_roles(load_function("auth_roles"), roles_document("x@example.com"), "*")

        assert problem(response)["status"] == 428

    def test_a_stale_etag_is_412_and_nothing_is_written(self, stored: KVNamespace) -> None:
        module = load_function("auth_roles")
        stale = get_roles(module)["headers"]["ETag"]
        put_roles(module, roles_document("first@example.com"), stale)
        before = stored.get_with_version(ROLES_KEY, "json")

        response = put_roles(module, roles_document("second@example.com"), stale)

        assert problem(response)["status"] == 412
        assert stored.get_with_version(ROLES_KEY, "json") == before

    def test_members_saving_profiles_do_not_make_an_admins_edit_fail_and_their_saves_are_kept(
        self, stored: KVNamespace
    ) -> None:
        roles, profile = load_function("auth_roles"), load_function("auth_profile")
        fetched = get_roles(roles)
        mine = {"dashboardProfiles": [{"id": "mine", "name": "Mine", "widgets": ["network"]}]}
        for _ in range(3):  # a member saving while the administrator edits
            assert save_profiles(profile, MEMBER, mine)["statusCode"] == 200

        edited = json_body(fetched)
        edited["users"]["new@example.com"] = edited["users"][DEMO] | {"email": "new@example.com"}
        response = put_roles(roles, edited, fetched["headers"]["ETag"])

        assert response["statusCode"] == 200, response
        assert "new@example.com" in json_body(response)["users"]
        assert (
            json_body(me(load_function("auth_me"), MEMBER))["dashboardProfiles"] == mine["dashboardProfiles"]
        )
        assert json_body(get_roles(roles))["users"][MEMBER]["dashboardProfiles"] == mine["dashboardProfiles"]

    def test_a_weak_etag_never_matches(self, stored: KVNamespace) -> None:
        module = load_function("auth_roles")
        etag = get_roles(module)["headers"]["ETag"]

        response = put_roles(module, roles_document("x@example.com"), f"W/{etag}")

        assert problem(response)["status"] == 412

    @pytest.mark.parametrize("shape", ['"old", {etag}', "{bare}"])
    def test_a_list_of_etags_or_an_unquoted_one_matches_the_current(
        self, stored: KVNamespace, shape: str
    ) -> None:
        module = load_function("auth_roles")
        etag = get_roles(module)["headers"]["ETag"]

        response = put_roles(
            module, roles_document("x@example.com"), shape.format(etag=etag, bare=etag.strip('"'))
        )

        assert response["statusCode"] == 200

    def test_a_lockout_is_422_naming_users_and_nothing_is_written(self, stored: KVNamespace) -> None:
        module = load_function("auth_roles")
        etag = get_roles(module)["headers"]["ETag"]
        before = stored.get_with_version(ROLES_KEY, "json")
        data = roles_document()
        data["users"][ADMIN]["role"] = "member"

        response = put_roles(module, data, etag)

        body = problem(response)
        assert response["statusCode"] == 422
        assert body["errors"] == [
            {
                "field": "users",
                "message": "no user would keep '*' or 'manage:roles': the document would lock every "
                "administrator out",
            }
        ]
        assert stored.get_with_version(ROLES_KEY, "json") == before

    def test_an_unknown_role_is_422_naming_the_users_role(self, stored: KVNamespace) -> None:
        module = load_function("auth_roles")
        data = roles_document()
        data["users"][DEMO]["role"] = "guest"

        response = put_roles(module, data, get_roles(module)["headers"]["ETag"])

        assert [e["field"] for e in problem(response)["errors"]] == [f"users.{DEMO}.role"]

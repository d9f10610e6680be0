"""The roles document: permission matching, write validation, and the store's memory tier and CAS."""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from pydantic import ValidationError

from arcturus import admins
from arcturus.errors import StoreUnavailable, VersionConflict
from arcturus.kv import KVNamespace
from arcturus.roles import (
    MEMORY_TTL_S,
    PROFILE_SAVE_ATTEMPTS,
    ROLES_KEY,
    WIDGETS,
    DashboardProfile,
    RolesDocumentCorrupt,
    RolesStore,
    UserNotProvisioned,
    check_stored,
    empty_document,
    grants,
    parse_document,
    parse_profile_update,
    permissions_of,
)
from arcturus.web.problem import field_errors
from tests.conftest import Clock
from tests.unit.support import ADMIN, DEMO, MEMBER, DynamoDBCalls, roles_document


def errors_of(data: Any) -> dict[str, str]:
    """The field → message map a 422 answer would carry for ``data``."""
    with pytest.raises(ValidationError) as caught:
        parse_document(data)
    return {error["field"]: error["message"] for error in field_errors(caught.value.errors())}


def profile(id_: str, *widgets: str) -> DashboardProfile:
    return {"id": id_, "name": f"Profile {id_}", "widgets": list(widgets)}  # type: ignore[typeddict-item]


class TestPermissionMatching:
    @pytest.mark.parametrize(
        ("granted", "wanted"),
        [
            (["*"], "manage:roles"),
            (["*"], "anything:at:all"),
            (["view:status"], "view:status"),
            (["view:*"], "view:status"),
            (["view:*"], "view:dashboard"),
            (["manage:*"], "manage:roles"),
            (["use:chat", "view:*"], "view:status"),
        ],
    )
    def test_granted(self, granted: list[str], wanted: str) -> None:
        assert grants(granted, wanted)

    @pytest.mark.parametrize(
        ("granted", "wanted"),
        [
            ([], "view:status"),
            (["view:status"], "view:dashboard"),
            (["view:status"], "view:statuses"),
            (["view:*"], "manage:roles"),
            (["view:*"], "view"),
            (["manage:*"], "managed:roles"),
            (["view:dashboard"], "*"),
            (["manage:roles:*"], "manage:roles"),
        ],
    )
    def test_refused(self, granted: list[str], wanted: str) -> None:
        assert not grants(granted, wanted)


class TestValidation:
    def test_the_original_designs_document_is_valid(self) -> None:
        document = parse_document(roles_document())

        assert sorted(document["users"]) == [ADMIN, DEMO, MEMBER]
        assert permissions_of(document, MEMBER) == ("view:dashboard", "use:chat", "view:status")

    def test_the_wire_form_round_trips_with_the_original_names(self) -> None:
        data = roles_document()

        wire = parse_document(data)

        assert wire == data
        assert "displayName" in wire["users"][ADMIN]
        assert "dashboardProfiles" in wire["users"][ADMIN]

    @pytest.mark.parametrize(
        ("key", "why"),
        [
            ("Admin2@Example.com", "lower-case"),
            ("not-an-email", "not a valid email"),
            ("two@@example.com", "not a valid email"),
            ("no-domain@localhost", "not a valid email"),
            (" space@example.com", "lower-case"),
        ],
    )
    def test_user_keys_must_be_lower_case_email_addresses(self, key: str, why: str) -> None:
        data = roles_document()
        data["users"][key] = {"email": key, "role": "member"}

        errors = errors_of(data)

        assert why in errors[f"users.{key}.[key]"]

    def test_a_key_must_equal_its_entrys_email(self) -> None:
        data = roles_document()
        data["users"]["x@example.com"] = {"email": "y@example.com", "role": "member"}

        errors = errors_of(data)

        assert errors == {"users.x@example.com.email": errors["users.x@example.com.email"]}
        assert "'y@example.com' differs from its key 'x@example.com'" in errors["users.x@example.com.email"]

    def test_every_users_role_must_exist(self) -> None:
        data = roles_document()
        data["users"][MEMBER]["role"] = "operator"

        errors = errors_of(data)

        assert "role 'operator' is not defined" in errors[f"users.{MEMBER}.role"]

    @pytest.mark.parametrize(
        "permission", ["", "view", "View:status", "view:", ":status", "view status", "*:view", "view:**"]
    )
    def test_permissions_must_be_well_formed(self, permission: str) -> None:
        data = roles_document()
        data["roles"]["member"]["permissions"].append(permission)

        errors = errors_of(data)

        assert "is not a permission" in errors["roles.member.permissions.3"]

    def test_dashboard_profile_ids_are_unique_per_user(self) -> None:
        data = roles_document()
        data["users"][DEMO]["dashboardProfiles"] = [
            {"id": "main", "name": "A", "widgets": ["storage"]},
            {"id": "main", "name": "B", "widgets": ["network"]},
        ]

        errors = errors_of(data)

        assert "'main' appears more than once" in errors[f"users.{DEMO}.dashboardProfiles"]

    def test_widgets_must_be_known(self) -> None:
        data = roles_document()
        data["users"][DEMO]["dashboardProfiles"][0]["widgets"] = ["storage", "crypto-miner"]

        errors = errors_of(data)

        assert "'system-health'" in errors[f"users.{DEMO}.dashboardProfiles.0.widgets.1"]

    def test_every_known_widget_is_accepted(self) -> None:
        data = roles_document()
        data["users"][DEMO]["dashboardProfiles"][0]["widgets"] = list(WIDGETS)

        assert parse_document(data)["users"][DEMO]["dashboardProfiles"][0]["widgets"] == list(WIDGETS)

    def test_unknown_fields_are_refused_so_typos_are_not_silently_ignored(self) -> None:
        data = roles_document()
        data["users"][DEMO]["dashbordProfiles"] = []

        assert "Extra inputs are not permitted" in errors_of(data)[f"users.{DEMO}.dashbordProfiles"]

    def test_a_document_with_no_administrator_is_a_lockout(self) -> None:
        data = roles_document()
        data["users"][ADMIN]["role"] = "member"

        errors = errors_of(data)

        assert "lock every administrator out" in errors["users"]

    def test_an_empty_document_is_a_lockout(self) -> None:
        assert "lock every administrator out" in errors_of({"users": {}, "roles": {}})["users"]

    @pytest.mark.parametrize("permissions", [["manage:roles"], ["manage:*"], ["view:status", "*"]])
    def test_any_role_that_can_still_manage_roles_prevents_the_lockout(self, permissions: list[str]) -> None:
        data = roles_document()
        data["roles"]["admin"]["permissions"] = permissions

        assert permissions_of(parse_document(data), ADMIN) == tuple(permissions)

    def test_every_problem_is_reported_at_once(self) -> None:
        data = roles_document()
        data["users"][MEMBER]["role"] = "ghost"
        data["users"][ADMIN]["role"] = "demo"
        data["users"]["z@example.com"] = {"email": "q@example.com", "role": "demo"}

        assert set(errors_of(data)) == {
            f"users.{MEMBER}.role",
            "users.z@example.com.email",
            "users",
        }

    def test_user_input_with_braces_is_reported_verbatim(self) -> None:
        data = roles_document()
        data["users"]["b@example.com"] = {"email": "{why}@example.com", "role": "member"}

        assert "'{why}@example.com' differs" in errors_of(data)["users.b@example.com.email"]


@pytest.fixture
def store(kv: KVNamespace, clock: Clock) -> RolesStore:
    kv.put_if_version(ROLES_KEY, json.dumps(roles_document()), None)
    return RolesStore(kv, clock=clock, sleep=lambda _: None)


class AfterEachRead:
    """Runs ``write`` after each GetItem the client answers (not those ``write`` itself makes): another
    container writing between a store's read and its compare-and-set, timed at the AWS boundary."""

    def __init__(self, client: Any, write: Callable[[], None]) -> None:
        self._events = client.meta.events
        self._write = write
        self._busy = False

    def __enter__(self) -> AfterEachRead:
        self._events.register("after-call.dynamodb.GetItem", self._after)
        return self

    def __exit__(self, *_: object) -> None:
        self._events.unregister("after-call.dynamodb.GetItem", self._after)

    def _after(self, **_: Any) -> None:
        if self._busy:
            return
        self._busy = True
        try:
            self._write()
        finally:
            self._busy = False


def other_container(kv: KVNamespace, clock: Clock) -> RolesStore:
    """A store as another warm container holds it: same table, own memory."""
    return RolesStore(kv, clock=clock, sleep=lambda _: None)


class TestMemoryTier:
    def test_a_warm_container_reads_dynamodb_zero_times(self, store: RolesStore, dynamodb: Any) -> None:
        with DynamoDBCalls(dynamodb) as calls:
            store.document()
            first = list(calls.operations)
            for _ in range(50):
                store.document()

        assert first == ["GetItem"]
        assert calls.operations == ["GetItem"]

    def test_the_copy_is_reread_once_it_is_older_than_the_ttl(
        self, store: RolesStore, dynamodb: Any, clock: Clock
    ) -> None:
        store.document()
        clock.advance(MEMORY_TTL_S - 0.1)
        with DynamoDBCalls(dynamodb) as calls:
            store.document()
            assert calls.operations == []
            clock.advance(0.2)
            store.document()
            store.document()

        assert calls.operations == ["GetItem"]

    def test_a_write_is_visible_at_once_here_and_within_the_ttl_elsewhere(
        self, store: RolesStore, kv: KVNamespace, clock: Clock
    ) -> None:
        elsewhere = other_container(kv, clock)
        elsewhere.document()
        data = roles_document("new@example.com")
        _, version = store.read_with_version()

        store.replace(data, version)

        assert "new@example.com" in store.document()["users"]
        assert "new@example.com" not in elsewhere.document()["users"]
        clock.advance(MEMORY_TTL_S)
        assert "new@example.com" in elsewhere.document()["users"]

    def test_refresh_rereads_whatever_the_age(self, store: RolesStore, kv: KVNamespace, clock: Clock) -> None:
        store.document()
        other_container(kv, clock).replace(roles_document("late@example.com"), store.read_with_version()[1])
        store.document()

        assert "late@example.com" in store.refresh()["users"]
        assert "late@example.com" in store.document()["users"]

    def test_a_missing_document_authorizes_nobody(self, kv: KVNamespace, clock: Clock) -> None:
        document, version = RolesStore(kv, clock=clock).read_with_version()

        assert document == empty_document()
        assert version is None

    def test_a_corrupt_stored_document_fails_closed(self, kv: KVNamespace, clock: Clock) -> None:
        kv.put(ROLES_KEY, json.dumps({"users": {"A@X.IO": {"role": 1}}, "roles": {}}))

        with pytest.raises(RolesDocumentCorrupt, match="data:user-roles"):
            RolesStore(kv, clock=clock).document()

    def test_a_hand_edit_under_the_stores_seal_is_validated_and_fails_closed(
        self, store: RolesStore, kv: KVNamespace, clock: Clock
    ) -> None:
        # Written by the store (sealed), then edited around it: a string where a list belongs would
        # read as a list of characters, and '*' among them would grant everything.
        store.replace(roles_document(), store.read_with_version()[1])
        stored, seal = kv.get_with_metadata(ROLES_KEY, "json")
        stored["roles"]["demo"]["permissions"] = "*"
        kv.put(ROLES_KEY, json.dumps(stored), metadata=seal)

        with pytest.raises(RolesDocumentCorrupt, match="permissions"):
            RolesStore(kv, clock=clock).document()

    def test_the_seal_is_kept_beside_the_json_so_an_earlier_version_still_reads_it(
        self, store: RolesStore, kv: KVNamespace
    ) -> None:
        # A rollback to functions that predate the seal reads the JSON with extra keys refused.
        store.replace(roles_document(), store.read_with_version()[1])
        store.update_user_profiles(MEMBER, [profile("ops", "network")])
        stored, metadata = kv.get_with_metadata(ROLES_KEY, "json")

        assert set(stored) == {"users", "roles", "revision", "baseProfiles"}
        assert set(metadata) == {"seal"}

    def test_a_document_stored_by_hand_through_check_stored_is_read_without_validation(
        self, kv: KVNamespace, clock: Clock, caplog: pytest.LogCaptureFixture
    ) -> None:
        kv.put(ROLES_KEY, json.dumps(roles_document()))
        raw = RolesStore(kv, clock=clock).document()
        warned = "written around the store" in caplog.text
        caplog.clear()
        stored = check_stored(json.dumps(roles_document()))
        kv.put(ROLES_KEY, stored.text, metadata=stored.metadata)
        sealed = RolesStore(kv, clock=clock).document()

        assert sealed == raw
        assert (warned, "written around the store" in caplog.text) == (True, False)

    def test_a_hand_write_of_the_stored_json_keeps_what_an_administrators_merge_needs(
        self, store: RolesStore, kv: KVNamespace, clock: Clock
    ) -> None:
        store.replace(roles_document(), store.read_with_version()[1])
        edited, revision = store.read_with_version()  # an administrator starts an edit
        store.update_user_profiles(MEMBER, [profile("mine", "storage")])
        stored = check_stored(kv.get(ROLES_KEY))  # kv get, then kv put of the same JSON
        kv.put(ROLES_KEY, stored.text, metadata=stored.metadata)

        merged, _ = RolesStore(kv, clock=clock).replace(edited, revision)

        assert merged["users"][MEMBER]["dashboardProfiles"] == [profile("mine", "storage")]

    @pytest.mark.parametrize("text", ["[1, 2]", '"users"', '{"users": [], "roles": {}}'])
    def test_json_of_a_shape_the_store_never_writes_fails_closed_even_under_a_matching_seal(
        self, kv: KVNamespace, clock: Clock, text: str
    ) -> None:
        kv.put(ROLES_KEY, text, metadata={"seal": hashlib.sha256(text.encode()).hexdigest()})

        with pytest.raises(RolesDocumentCorrupt):
            RolesStore(kv, clock=clock).document()

    def test_the_snake_case_names_earlier_versions_read_are_still_read(
        self, kv: KVNamespace, clock: Clock
    ) -> None:
        data = roles_document()
        member = data["users"][MEMBER]
        member["display_name"] = member.pop("displayName", "Member")
        member["dashboard_profiles"] = member.pop("dashboardProfiles", [])
        kv.put(ROLES_KEY, json.dumps(data))  # as an earlier version's kv put stored it, verbatim

        user = RolesStore(kv, clock=clock).document()["users"][MEMBER]

        assert (user["displayName"], user["dashboardProfiles"]) == (
            member["display_name"],
            member["dashboard_profiles"],
        )
        assert parse_profile_update('{"dashboard_profiles": []}') == []

    def test_a_valid_hand_edit_is_read_and_the_next_write_seals_it_again(
        self, store: RolesStore, kv: KVNamespace, clock: Clock
    ) -> None:
        store.replace(roles_document(), store.read_with_version()[1])
        stored, seal = kv.get_with_metadata(ROLES_KEY, "json")
        del stored["users"][DEMO]["services"]
        stored["users"]["new@example.com"] = {"email": "new@example.com", "role": "demo"}
        kv.put(ROLES_KEY, json.dumps(stored), metadata=seal)

        document = RolesStore(kv, clock=clock).document()
        RolesStore(kv, clock=clock).update_user_profiles(MEMBER, [profile("ops", "network")])

        assert document["users"][DEMO]["services"] == []
        assert document["users"]["new@example.com"]["dashboardProfiles"] == []
        resealed, new_seal = kv.get_with_metadata(ROLES_KEY, "json")
        assert resealed["users"]["new@example.com"] == document["users"]["new@example.com"]
        assert new_seal != seal
        assert RolesStore(kv, clock=clock).document() == {
            **document,
            "users": {
                **document["users"],
                MEMBER: {**document["users"][MEMBER], "dashboardProfiles": [profile("ops", "network")]},
            },
        }

    def test_a_store_error_is_raised_not_answered_from_an_expired_copy(
        self, store: RolesStore, dynamodb: Any, clock: Clock
    ) -> None:
        store.document()
        clock.advance(MEMORY_TTL_S + 1)
        dynamodb.delete_table(TableName=dynamodb.list_tables()["TableNames"][0])

        with pytest.raises(Exception, match="ResourceNotFound"):
            store.document()


class TestReplace:
    def test_replace_writes_and_returns_the_new_version(self, store: RolesStore, kv: KVNamespace) -> None:
        data = roles_document("new@example.com")
        _, version = store.read_with_version()

        document, new_version = store.replace(data, version)

        assert new_version != version
        stored, stored_version = RolesStore(kv).read_with_version()
        assert (stored, stored_version) == (data, new_version)
        assert document == data

    def test_a_stale_version_conflicts_and_writes_nothing(self, store: RolesStore, kv: KVNamespace) -> None:
        _, version = store.read_with_version()
        store.replace(roles_document("first@example.com"), version)
        before = kv.get_with_version(ROLES_KEY, "json")

        with pytest.raises(VersionConflict):
            store.replace(roles_document("second@example.com"), version)

        assert kv.get_with_version(ROLES_KEY, "json") == before

    def test_an_invalid_document_writes_nothing(self, store: RolesStore, kv: KVNamespace) -> None:
        before = kv.get_with_version(ROLES_KEY, "json")
        data = roles_document()
        data["users"][ADMIN]["role"] = "demo"

        with pytest.raises(ValidationError):
            store.replace(data, before[1])

        assert kv.get_with_version(ROLES_KEY, "json") == before
        assert store.document()["users"][ADMIN]["role"] == "admin"

    def test_the_first_write_needs_the_document_absent(self, kv: KVNamespace, clock: Clock) -> None:
        fresh = RolesStore(kv, clock=clock)

        _, version = fresh.replace(roles_document(), None)

        with pytest.raises(VersionConflict):
            fresh.replace(roles_document(), None)
        assert RolesStore(kv).read_with_version()[1] == version

    def test_concurrent_replaces_of_one_version_have_exactly_one_winner(
        self, store: RolesStore, kv: KVNamespace, clock: Clock, serialized_moto: None
    ) -> None:
        _, version = store.read_with_version()
        candidates = [roles_document(f"writer{i}@example.com") for i in range(20)]
        start = threading.Barrier(20)

        def attempt(data: dict[str, Any]) -> str | None:
            container = other_container(kv, clock)
            start.wait()
            try:
                return container.replace(data, version)[1]
            except VersionConflict:
                return None

        with ThreadPoolExecutor(max_workers=20) as pool:
            results = list(pool.map(attempt, candidates))

        winners = [i for i, result in enumerate(results) if result is not None]
        assert len(winners) == 1
        stored, stored_version = RolesStore(kv).read_with_version()
        assert stored == candidates[winners[0]]
        assert stored_version == results[winners[0]]


class TestProfileSaves:
    def test_saving_changes_only_that_users_profiles(self, store: RolesStore, kv: KVNamespace) -> None:
        before = copy.deepcopy(kv.get(ROLES_KEY, "json"))

        saved = store.update_user_profiles(MEMBER, [profile("ops", "docker-status", "network")])

        after = RolesStore(kv).document()
        assert saved["dashboardProfiles"] == [profile("ops", "docker-status", "network")]
        assert after["users"][MEMBER]["dashboardProfiles"] == [
            {"id": "ops", "name": "Profile ops", "widgets": ["docker-status", "network"]}
        ]
        before["users"][MEMBER]["dashboardProfiles"] = after["users"][MEMBER]["dashboardProfiles"]
        assert after == before
        assert store.document()["users"][MEMBER]["dashboardProfiles"] == saved["dashboardProfiles"]

    def test_a_warm_save_costs_one_write_and_no_read(self, store: RolesStore, dynamodb: Any) -> None:
        store.document()

        with DynamoDBCalls(dynamodb) as calls:
            store.update_user_profiles(MEMBER, [profile("ops", "network")])

        assert calls.operations == ["UpdateItem"]

    def test_a_stale_copy_loses_the_first_try_and_keeps_the_other_write(
        self, store: RolesStore, kv: KVNamespace, clock: Clock, dynamodb: Any
    ) -> None:
        store.document()
        rival = other_container(kv, clock)
        rival.replace(roles_document("rival@example.com"), rival.read_with_version()[1])

        with DynamoDBCalls(dynamodb) as calls:
            store.update_user_profiles(MEMBER, [profile("ops", "network")])

        assert calls.operations == ["UpdateItem", "GetItem", "UpdateItem"]
        stored = RolesStore(kv).document()
        assert "rival@example.com" in stored["users"]
        assert stored["users"][MEMBER]["dashboardProfiles"][0]["id"] == "ops"

    def test_a_user_missing_from_the_copy_is_looked_up_in_the_store(
        self, store: RolesStore, kv: KVNamespace, clock: Clock
    ) -> None:
        store.document()
        rival = other_container(kv, clock)
        rival.replace(roles_document("new@example.com"), rival.read_with_version()[1])

        saved = store.update_user_profiles("new@example.com", [profile("mine", "storage")])

        assert saved["dashboardProfiles"] == [profile("mine", "storage")]

    def test_an_unprovisioned_email_is_refused(self, store: RolesStore) -> None:
        with pytest.raises(UserNotProvisioned):
            store.update_user_profiles("stranger@example.com", [])

    def test_a_lost_compare_and_set_is_retried_on_the_winners_document(
        self, store: RolesStore, kv: KVNamespace, clock: Clock, dynamodb: Any
    ) -> None:
        rival = other_container(kv, clock)

        def rival_saves() -> None:
            if rival.document()["users"][MEMBER]["dashboardProfiles"][0]["id"] != "rival":
                rival.update_user_profiles(MEMBER, [profile("rival", "storage")])

        with AfterEachRead(dynamodb, rival_saves):
            store.update_user_profiles(DEMO, [profile("mine", "storage")])

        document = other_container(kv, clock).document()
        assert document["users"][MEMBER]["dashboardProfiles"][0]["id"] == "rival"
        assert document["users"][DEMO]["dashboardProfiles"][0]["id"] == "mine"

    def test_retries_are_bounded(
        self, store: RolesStore, kv: KVNamespace, clock: Clock, dynamodb: Any
    ) -> None:
        rival = other_container(kv, clock)
        saves = itertools.count()

        def rival_always_wins() -> None:
            rival.update_user_profiles(MEMBER, [profile(f"rival{next(saves)}", "storage")])

        with (
            AfterEachRead(dynamodb, rival_always_wins),
            pytest.raises(StoreUnavailable, match="kept changing"),
        ):
            store.update_user_profiles(DEMO, [profile("mine", "storage")])

        assert next(saves) == PROFILE_SAVE_ATTEMPTS
        assert other_container(kv, clock).document()["users"][DEMO]["dashboardProfiles"][0]["id"] == "default"

    def test_twenty_users_saving_at_once_all_land(
        self, kv: KVNamespace, clock: Clock, serialized_moto: None
    ) -> None:
        users = [f"user{i}@example.com" for i in range(20)]
        kv.put_if_version(ROLES_KEY, json.dumps(roles_document(*users)), None)
        start = threading.Barrier(len(users))

        def save(email: str) -> None:
            container = RolesStore(kv, clock=clock)
            start.wait()
            container.update_user_profiles(email, [profile(email.partition("@")[0], "network")])

        with ThreadPoolExecutor(max_workers=len(users)) as pool:
            list(pool.map(save, users))

        stored = RolesStore(kv).document()
        for email in users:
            assert stored["users"][email]["dashboardProfiles"] == [
                {
                    "id": email.partition("@")[0],
                    "name": f"Profile {email.partition('@')[0]}",
                    "widgets": ["network"],
                }
            ]
        assert parse_document(stored)["users"].keys() == set(users) | {ADMIN, MEMBER, DEMO}


class TestFirstAdminCommand:
    def test_an_empty_table_gets_the_design_roles_and_its_first_admin(
        self, kv: KVNamespace, clock: Clock, capsys: pytest.CaptureFixture[str]
    ) -> None:
        status = admins.main(
            ["add", "Owner@Example.com", "--display-name", "Owner"], RolesStore(kv, clock=clock)
        )

        stored = RolesStore(kv).document()
        assert status == 0
        assert sorted(stored["roles"]) == ["admin", "demo", "member"]
        assert stored["users"]["owner@example.com"]["role"] == "admin"
        assert stored["users"]["owner@example.com"]["displayName"] == "Owner"
        assert stored["users"]["owner@example.com"]["dashboardProfiles"][0]["widgets"] == list(WIDGETS)
        assert "owner@example.com is an administrator" in capsys.readouterr().out

    def test_an_existing_user_is_promoted_and_keeps_the_rest(
        self, store: RolesStore, kv: KVNamespace
    ) -> None:
        before = kv.get(ROLES_KEY, "json")

        assert admins.main(["add", DEMO], store) == 0

        after = kv.get(ROLES_KEY, "json")
        assert after["users"][DEMO] == before["users"][DEMO] | {"role": "admin"}
        assert {k: v for k, v in after["users"].items() if k != DEMO} == {
            k: v for k, v in before["users"].items() if k != DEMO
        }

    def test_an_admin_role_without_star_is_not_widened(
        self, kv: KVNamespace, clock: Clock, capsys: pytest.CaptureFixture[str]
    ) -> None:
        data = roles_document()
        data["roles"]["admin"]["permissions"] = ["manage:roles"]
        kv.put_if_version(ROLES_KEY, json.dumps(data), None)
        before = kv.get_with_version(ROLES_KEY, "json")

        assert admins.main(["add", "x@example.com"], RolesStore(kv, clock=clock)) == 2

        assert "exists without '*'" in capsys.readouterr().err
        assert kv.get_with_version(ROLES_KEY, "json") == before

    def test_an_invalid_email_writes_nothing(
        self, store: RolesStore, kv: KVNamespace, capsys: pytest.CaptureFixture[str]
    ) -> None:
        before = kv.get_with_version(ROLES_KEY, "json")

        assert admins.main(["add", "not-an-email"], store) == 2

        assert "not a valid email" in capsys.readouterr().err
        assert kv.get_with_version(ROLES_KEY, "json") == before

    def test_list_prints_who_can_manage_roles(
        self, store: RolesStore, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert admins.main(["list"], store) == 0

        assert capsys.readouterr().out.split() == [ADMIN]


class TestEditsBesideProfileSaves:
    """An administrator's edit based on ETag E, and users saving their own profiles meanwhile."""

    def test_profile_saves_do_not_change_the_etag(self, store: RolesStore) -> None:
        _, etag = store.read_with_version()

        store.update_user_profiles(MEMBER, [profile("ops", "network")])
        other_container_save = store.read_with_version()[1]

        assert other_container_save == etag

    def test_an_edit_based_on_e_lands_after_profile_saves_and_keeps_them(
        self, store: RolesStore, kv: KVNamespace, clock: Clock
    ) -> None:
        _, etag = store.read_with_version()
        member = other_container(kv, clock)
        member.update_user_profiles(MEMBER, [profile("ops", "network")])
        member.update_user_profiles(DEMO, [profile("tour", "storage")])

        edited = roles_document("new@example.com")  # as the admin fetched it, plus a user
        stored, new_etag = store.replace(edited, etag)

        assert new_etag != etag
        assert "new@example.com" in stored["users"]
        assert stored["users"][MEMBER]["dashboardProfiles"] == [profile("ops", "network")]
        assert other_container(kv, clock).document()["users"][DEMO]["dashboardProfiles"] == [
            profile("tour", "storage")
        ]

    def test_an_edit_of_a_profile_nobody_saved_since_e_applies(self, store: RolesStore) -> None:
        _, etag = store.read_with_version()
        store.update_user_profiles(DEMO, [profile("tour", "storage")])
        edited = roles_document()
        edited["users"][MEMBER]["dashboardProfiles"] = [{"id": "set", "name": "By the admin", "widgets": []}]

        stored, _ = store.replace(edited, etag)

        assert [p["id"] for p in stored["users"][MEMBER]["dashboardProfiles"]] == ["set"]
        assert stored["users"][DEMO]["dashboardProfiles"] == [profile("tour", "storage")]

    def test_an_edit_of_a_profile_its_user_saved_since_e_conflicts(
        self, store: RolesStore, kv: KVNamespace
    ) -> None:
        _, etag = store.read_with_version()
        store.update_user_profiles(MEMBER, [profile("ops", "network")])
        before = kv.get(ROLES_KEY, "json")
        edited = roles_document()
        edited["users"][MEMBER]["dashboardProfiles"] = [{"id": "set", "name": "By the admin", "widgets": []}]

        with pytest.raises(VersionConflict):
            store.replace(edited, etag)

        assert kv.get(ROLES_KEY, "json") == before

    def test_an_edit_based_on_e_conflicts_once_access_changed(
        self, store: RolesStore, kv: KVNamespace, clock: Clock
    ) -> None:
        _, etag = store.read_with_version()
        other_container(kv, clock).replace(roles_document("first@example.com"), etag)

        with pytest.raises(VersionConflict):
            store.replace(roles_document("second@example.com"), etag)

    def test_a_document_stored_before_revisions_keeps_its_version_as_etag(
        self, kv: KVNamespace, clock: Clock
    ) -> None:
        legacy_version = kv.put_if_version(ROLES_KEY, json.dumps(roles_document()), None)
        store = RolesStore(kv, clock=clock)

        assert store.read_with_version()[1] == legacy_version
        _, revision = store.replace(roles_document("new@example.com"), legacy_version)
        assert store.read_with_version()[1] == revision

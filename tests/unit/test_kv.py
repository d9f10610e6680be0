"""KVNamespace against in-process moto: every Workers KV contract point, plus our extensions."""

from __future__ import annotations

import os
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError

from arcturus.errors import StoreUnavailable, VersionConflict
from arcturus.kv import CHUNK_BYTES, MAX_VALUE_BYTES, KVEntry, KVNamespace
from tests.conftest import TABLE, Clock


def stored_items(dynamodb: Any) -> list[dict[str, Any]]:
    pages = dynamodb.get_paginator("scan").paginate(TableName=TABLE)
    return [item for page in pages for item in page["Items"]]


class TestReadsAndWrites:
    def test_text_json_and_bytes_round_trip(self, kv: KVNamespace) -> None:
        kv.put("greeting", "héllo")
        kv.put("doc", '{"a": [1, 2]}')
        kv.put("blob", b"\x00\xff\x10")

        assert kv.get("greeting") == "héllo"
        assert kv.get("doc", "json") == {"a": [1, 2]}
        assert kv.get("blob", "bytes") == b"\x00\xff\x10"
        assert kv.get("greeting", "bytes") == "héllo".encode()

    def test_missing_key_reads_as_none(self, kv: KVNamespace) -> None:
        assert kv.get("nothing") is None
        assert kv.get_with_metadata("nothing") == (None, None)
        assert kv.get_with_version("nothing") == (None, None)

    def test_metadata_is_returned_with_the_value_and_in_listings(self, kv: KVNamespace) -> None:
        kv.put("k", "v", metadata={"owner": "ops", "n": 3})

        assert kv.get_with_metadata("k") == ("v", {"owner": "ops", "n": 3})
        assert kv.list()["keys"] == [{"name": "k", "metadata": {"owner": "ops", "n": 3}}]

    def test_put_overwrites_and_delete_removes(self, kv: KVNamespace) -> None:
        kv.put("k", "one")
        kv.put("k", "two")
        assert kv.get("k") == "two"

        kv.delete("k")
        kv.delete("k")  # deleting a missing key is fine

        assert kv.get("k") is None

    def test_bulk_get_returns_a_dict_in_the_order_asked(self, kv: KVNamespace) -> None:
        for i in range(100):
            kv.put(f"key-{i}", str(i))

        values = kv.get([f"key-{i}" for i in (99, 3, 150)], "json")

        assert list(values) == ["key-99", "key-3", "key-150"]
        assert values == {"key-99": 99, "key-3": 3, "key-150": None}

    def test_get_entries_brings_metadata_and_expiration_and_leaves_out_missing_and_expired(
        self, kv: KVNamespace, clock: Clock
    ) -> None:
        kv.put("a", "1", metadata={"m": 1}, expiration=int(clock.now) + 3600)
        kv.put("b", b"\x00\xff")
        kv.put("gone", "x", expiration_ttl=60)
        clock.advance(61)

        entries = kv.get_entries(["a", "b", "gone", "never"], "bytes")

        assert entries == {
            "a": KVEntry(b"1", {"m": 1}, int(clock.now) - 61 + 3600),
            "b": KVEntry(b"\x00\xff", None, None),
        }

    def test_bulk_get_retries_unprocessed_keys(self, kv: KVNamespace, dynamodb: Any) -> None:
        """DynamoDB may answer part of a BatchGetItem; the rest must be asked again, not dropped."""
        for i in range(40):
            kv.put(f"key-{i}", str(i))
        calls = []

        def leave_half_unprocessed(parsed: dict[str, Any], **_: Any) -> None:
            calls.append(1)
            items = parsed["Responses"][TABLE]
            if len(calls) == 1:
                kept, moved = items[:10], items[10:]
                parsed["Responses"][TABLE] = kept
                keys = [{"pk": item["pk"], "sk": item["sk"]} for item in moved]
                parsed["UnprocessedKeys"] = {TABLE: {"Keys": keys, "ConsistentRead": False}}

        dynamodb.meta.events.register("after-call.dynamodb.BatchGetItem", leave_half_unprocessed)

        values = kv.get([f"key-{i}" for i in range(40)])

        assert len(calls) == 2
        assert values == {f"key-{i}": str(i) for i in range(40)}


class TestLimits:
    @pytest.mark.parametrize(
        ("key", "message"),
        [("", "non-empty"), (".", '"."'), ("..", '"."'), ("k" * 513, "512"), ("é" * 257, "512")],
    )
    def test_bad_keys_are_refused_naming_the_limit(self, kv: KVNamespace, key: str, message: str) -> None:
        with pytest.raises(ValueError, match=message):
            kv.put(key, "v")
        with pytest.raises(ValueError, match=message):
            kv.get(key)

    def test_a_key_of_exactly_512_bytes_is_accepted(self, kv: KVNamespace) -> None:
        kv.put("k" * 512, "v")
        assert kv.get("k" * 512) == "v"

    def test_values_over_25_mib_are_refused(self, kv: KVNamespace) -> None:
        with pytest.raises(ValueError, match="25 MiB"):
            kv.put("k", b"x" * (MAX_VALUE_BYTES + 1))

    def test_metadata_over_1024_bytes_is_refused(self, kv: KVNamespace) -> None:
        with pytest.raises(ValueError, match="1024"):
            kv.put("k", "v", metadata={"x": "y" * 1020})
        with pytest.raises(ValueError, match="JSON"):
            kv.put("k", "v", metadata={"x": object()})

    @pytest.mark.parametrize(
        "options", [{"expiration_ttl": 59}, {"expiration_ttl": 1.5}, {"expiration_ttl": True}]
    )
    def test_expiration_ttl_under_60_seconds_is_refused(
        self, kv: KVNamespace, options: dict[str, Any]
    ) -> None:
        with pytest.raises(ValueError, match="60"):
            kv.put("k", "v", **options)

    def test_expiration_less_than_60_seconds_ahead_is_refused(self, kv: KVNamespace, clock: Clock) -> None:
        with pytest.raises(ValueError, match="60"):
            kv.put("k", "v", expiration=int(clock.now) + 30)

    def test_bulk_get_takes_at_most_100_keys(self, kv: KVNamespace) -> None:
        with pytest.raises(ValueError, match="100"):
            kv.get([f"k{i}" for i in range(101)])

    def test_values_must_be_text_or_bytes(self, kv: KVNamespace) -> None:
        with pytest.raises(ValueError, match="str or bytes"):
            kv.put("k", {"a": 1})  # type: ignore[arg-type]

    @pytest.mark.parametrize("limit", [0, 1001, "10"])
    def test_list_limit_is_1_to_1000(self, kv: KVNamespace, limit: Any) -> None:
        with pytest.raises(ValueError, match="1000"):
            kv.list(limit=limit)

    def test_unknown_value_type_is_refused(self, kv: KVNamespace) -> None:
        with pytest.raises(ValueError, match="type"):
            kv.get("k", "stream")  # type: ignore[call-overload]


class TestExpiry:
    def test_expired_values_are_never_returned_though_dynamodb_still_holds_them(
        self, kv: KVNamespace, clock: Clock, dynamodb: Any
    ) -> None:
        kv.put("short", "v", expiration_ttl=60, metadata={"m": 1})
        kv.put("long", "v", expiration_ttl=3600)
        kv.put("forever", "v")
        clock.advance(61)

        assert kv.get("short") is None
        assert kv.get_with_metadata("short") == (None, None)
        assert kv.get(["short", "long"]) == {"short": None, "long": "v"}
        assert [k["name"] for k in kv.list()["keys"]] == ["forever", "long"]
        assert len(stored_items(dynamodb)) == 3  # moto, like DynamoDB, has not deleted it yet

    def test_listing_shows_the_absolute_expiration(self, kv: KVNamespace, clock: Clock) -> None:
        kv.put("k", "v", expiration=int(clock.now) + 600)
        assert kv.list()["keys"] == [{"name": "k", "expiration": int(clock.now) + 600}]

    def test_expiration_ttl_wins_over_expiration_as_in_workers(self, kv: KVNamespace, clock: Clock) -> None:
        kv.put("k", "v", expiration=int(clock.now) + 9999, expiration_ttl=120)
        assert kv.list()["keys"][0]["expiration"] == int(clock.now) + 120

    def test_an_expired_key_can_be_written_again(self, kv: KVNamespace, clock: Clock) -> None:
        kv.put("k", "old", expiration_ttl=60)
        clock.advance(120)
        kv.put("k", "new")
        assert kv.get("k") == "new"


class TestLargeValues:
    def test_a_25_mib_value_round_trips_over_chunks(self, kv: KVNamespace, dynamodb: Any) -> None:
        value = os.urandom(MAX_VALUE_BYTES)  # random bytes do not compress, so this is 25 MiB stored

        kv.put("big", value, metadata={"kind": "blob"})

        assert kv.get("big", "bytes") == value
        chunks = [item for item in stored_items(dynamodb) if "#chunk#" in item["pk"]["S"]]
        assert len(chunks) == -(-MAX_VALUE_BYTES // CHUNK_BYTES)
        assert kv.list()["keys"] == [{"name": "big", "metadata": {"kind": "blob"}}]

    def test_overwritten_and_deleted_values_leave_no_chunks_behind(
        self, kv: KVNamespace, dynamodb: Any
    ) -> None:
        kv.put("big", os.urandom(2 * CHUNK_BYTES))
        kv.put("big", os.urandom(3 * CHUNK_BYTES))
        assert len(stored_items(dynamodb)) == 1 + 3  # the head and the new version's three chunks

        kv.put("big", "small now")
        assert len(stored_items(dynamodb)) == 1

        kv.put("big", os.urandom(2 * CHUNK_BYTES))
        kv.delete("big")
        assert stored_items(dynamodb) == []

    def test_chunks_expire_with_their_value(self, kv: KVNamespace, clock: Clock, dynamodb: Any) -> None:
        kv.put("big", os.urandom(2 * CHUNK_BYTES), expiration_ttl=300)
        expiries = {item["expires_at"]["N"] for item in stored_items(dynamodb)}
        assert expiries == {str(int(clock.now) + 300)}  # DynamoDB's TTL sweeps the chunks too

    def test_compressible_values_are_stored_compressed(self, kv: KVNamespace, dynamodb: Any) -> None:
        text = '{"service": "grafana", "status": "up"}\n' * 20_000  # 780 KB of JSON lines

        kv.put("status", text)

        (item,) = stored_items(dynamodb)
        assert len(item["v"]["B"]) < len(text) / 10
        assert "chunks" not in item
        assert kv.get("status") == text

    def test_concurrent_overwrites_never_show_a_torn_value(
        self, kv: KVNamespace, serialized_moto: None
    ) -> None:
        versions = [os.urandom(3 * CHUNK_BYTES) for _ in range(3)]
        kv.put("big", versions[0])
        stop = threading.Event()
        seen: list[bytes] = []

        def write(index: int) -> None:
            for _ in range(4):
                kv.put("big", versions[index])

        def read() -> None:
            while not stop.is_set():
                seen.append(kv.get("big", "bytes"))

        readers = [threading.Thread(target=read) for _ in range(3)]
        for reader in readers:
            reader.start()
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(write, range(3)))
        stop.set()
        for reader in readers:
            reader.join()

        assert seen
        assert all(value in versions for value in seen)


class TestListing:
    def test_more_than_2500_keys_page_by_page_each_exactly_once_in_order(
        self, kv: KVNamespace, dynamodb: Any
    ) -> None:
        names = [f"cache:status:{i:05d}" for i in range(2600)]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda name: kv.put(name, "v"), names))
        kv.put("data:user-roles", "{}")

        visited, cursor, pages = [], None, 0
        while True:
            page = kv.list(prefix="cache:", limit=1000, cursor=cursor)
            visited += [key["name"] for key in page["keys"]]
            pages += 1
            if page["list_complete"]:
                assert "cursor" not in page
                break
            cursor = page["cursor"]

        assert pages == 3
        assert visited == sorted(names)

    def test_list_queries_and_never_scans(self, kv: KVNamespace, dynamodb: Any) -> None:
        operations: list[str] = []
        dynamodb.meta.events.register(
            "before-call.dynamodb", lambda model, **_: operations.append(model.name)
        )
        kv.put("a", "v")

        kv.list()

        assert "Scan" not in operations
        assert "Query" in operations

    def test_keys_sort_by_utf8_bytes(self, kv: KVNamespace) -> None:
        for name in ["b", "a", "é", "Z", "a:b", "~"]:
            kv.put(name, "v")
        assert [k["name"] for k in kv.list()["keys"]] == sorted(["b", "a", "é", "Z", "a:b", "~"])

    def test_a_cursor_only_continues_its_own_prefix(self, kv: KVNamespace) -> None:
        for i in range(5):
            kv.put(f"a{i}", "v")
        cursor = kv.list(prefix="a", limit=2)["cursor"]

        with pytest.raises(ValueError, match="prefix"):
            kv.list(prefix="b", cursor=cursor)
        with pytest.raises(ValueError, match="cursor"):
            kv.list(prefix="a", cursor="not-a-cursor")

    def test_namespaces_on_one_table_are_isolated(self, kv: KVNamespace, dynamodb: Any, clock: Clock) -> None:
        other = KVNamespace(TABLE, "OTHER", client=dynamodb, clock=clock)
        kv.put("shared-name", "mine")
        other.put("shared-name", "theirs")
        other.put("only-theirs", "x")

        assert kv.get("shared-name") == "mine"
        assert other.get("shared-name") == "theirs"
        assert kv.get("only-theirs") is None
        assert [k["name"] for k in kv.list()["keys"]] == ["shared-name"]
        kv.delete("shared-name")
        assert other.get("shared-name") == "theirs"


class TestCompareAndSet:
    def test_a_write_with_a_stale_version_loses(self, kv: KVNamespace) -> None:
        first = kv.put_if_version("doc", "v1", None)
        second = kv.put_if_version("doc", "v2", first)

        with pytest.raises(VersionConflict):
            kv.put_if_version("doc", "v3", first)
        with pytest.raises(VersionConflict):
            kv.put_if_version("doc", "v3", None)
        assert kv.get_with_version("doc") == ("v2", second)

    def test_an_expired_item_counts_as_absent(self, kv: KVNamespace, clock: Clock) -> None:
        kv.put("lease", "holder-a", expiration_ttl=60)
        clock.advance(61)
        kv.put_if_version("lease", "holder-b", None)
        assert kv.get("lease") == "holder-b"

    def test_20_concurrent_writers_exactly_one_wins_per_version(
        self, kv: KVNamespace, serialized_moto: None
    ) -> None:
        def attempt(barrier: threading.Barrier, value: str, expected: str | None) -> str | None:
            barrier.wait()
            try:
                return kv.put_if_version("doc", value, expected)
            except VersionConflict:
                return None

        _, version = kv.get_with_version("doc")
        for round_ in range(3):
            barrier = threading.Barrier(20)
            values = [f"round {round_} writer {w}" for w in range(20)]
            with ThreadPoolExecutor(20) as pool:
                results = list(pool.map(attempt, [barrier] * 20, values, [version] * 20))

            winners = [(writer, v) for writer, v in enumerate(results) if v is not None]
            assert len(winners) == 1
            ((writer, version),) = winners
            assert kv.get_with_version("doc") == (f"round {round_} writer {writer}", version)


class TestCounter:
    def test_concurrent_increments_are_all_counted(self, kv: KVNamespace, serialized_moto: None) -> None:
        with ThreadPoolExecutor(16) as pool:
            counts = list(pool.map(lambda _: kv.increment("rate:ip", expiration_ttl=60), range(50)))

        assert sorted(counts) == list(range(1, 51))
        assert kv.get("rate:ip") == "50"

    def test_the_first_increment_fixes_the_expiry(self, kv: KVNamespace, clock: Clock) -> None:
        start = int(clock.now)
        kv.increment("rate:ip", expiration_ttl=60)
        clock.advance(50)
        kv.increment("rate:ip", expiration_ttl=60)

        assert kv.list()["keys"] == [{"name": "rate:ip", "expiration": start + 60}]
        clock.advance(11)
        assert kv.get("rate:ip") is None

    def test_an_expired_counter_starts_over(self, kv: KVNamespace, clock: Clock) -> None:
        for _ in range(3):
            kv.increment("rate:ip", expiration_ttl=60)
        clock.advance(61)

        assert kv.increment("rate:ip", expiration_ttl=60) == 1
        assert kv.increment("rate:ip", expiration_ttl=60) == 2

    def test_each_increment_is_a_single_write(self, kv: KVNamespace, dynamodb: Any) -> None:
        operations: list[str] = []
        dynamodb.meta.events.register(
            "before-call.dynamodb", lambda model, **_: operations.append(model.name)
        )
        kv.increment("rate:ip", expiration_ttl=60)
        kv.increment("rate:ip", expiration_ttl=60)
        assert operations == ["UpdateItem", "UpdateItem"]


class TestStoreErrors:
    def test_throttling_becomes_store_unavailable(self, kv: KVNamespace, dynamodb: Any) -> None:
        def throttle(**_: Any) -> None:
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
                "GetItem",
            )

        dynamodb.meta.events.register("before-call.dynamodb.GetItem", throttle)

        with pytest.raises(StoreUnavailable, match="ProvisionedThroughputExceeded"):
            kv.get("k")

    def test_from_env_needs_a_table(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("KV_TABLE_NAME", raising=False)
        with pytest.raises(RuntimeError, match="KV_TABLE_NAME"):
            KVNamespace.from_env()


def test_relayout_moves_a_table_of_the_old_layout_and_is_idempotent(dynamodb: Any) -> None:
    """Heads under <ns>#<shard>, chunks under <ns>#chunk#<key>, idempotency under idempotency#contact."""
    from arcturus.kvstore import shard_of
    from arcturus.relayout import relayout

    big = random.Random(1).randbytes(2 * CHUNK_BYTES + 1)
    old = [
        {
            "pk": {"S": f"ARGOBOX_CACHE#{shard_of('data:user-roles'):02x}"},
            "sk": {"S": "data:user-roles"},
            "ver": {"S": "v1"},
            "v": {"B": b'{"users":{}}'},
        },
        {
            "pk": {"S": f"ARGOBOX_CACHE#{shard_of('plain'):02x}"},
            "sk": {"S": "plain"},
            "ver": {"S": "v2"},
            "v": {"B": b"hello"},
        },
        {
            "pk": {"S": f"ARGOBOX_CACHE#{shard_of('cache:big'):02x}"},
            "sk": {"S": "cache:big"},
            "ver": {"S": "v3"},
            "chunks": {"N": "3"},
        },
        *[
            {
                "pk": {"S": "ARGOBOX_CACHE#chunk#cache:big"},
                "sk": {"S": f"v3#{n:05d}"},
                "v": {"B": big[n * CHUNK_BYTES : (n + 1) * CHUNK_BYTES]},
            }
            for n in range(3)
        ],
        {"pk": {"S": "idempotency#contact"}, "sk": {"S": "contact#abc"}, "status": {"S": "COMPLETED"}},
    ]
    for item in old:
        dynamodb.put_item(TableName=TABLE, Item=item)
    kv = KVNamespace(TABLE, client=dynamodb)

    moved = relayout(dynamodb, TABLE)

    assert moved == len(old)
    assert (kv.get("data:user-roles"), kv.get("plain"), kv.get("cache:big", "bytes")) == (
        '{"users":{}}',
        "hello",
        big,
    )
    assert [key["name"] for key in kv.list()["keys"]] == ["cache:big", "data:user-roles", "plain"]
    pages = dynamodb.get_paginator("scan").paginate(TableName=TABLE)
    pks = {item["pk"]["S"] for page in pages for item in page["Items"]}
    assert "ARGOBOX_CACHE#contact#idempotency" in pks
    assert not {pk for pk in pks if pk.count("#") == 1 or pk.startswith("idempotency#")}
    assert relayout(dynamodb, TABLE) == 0

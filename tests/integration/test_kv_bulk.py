"""``python -m local kv bulk put|get|delete``: wrangler's bulk JSON format, round trips and refusals."""

from __future__ import annotations

import base64
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import APP_TEMPLATE, run_cli

pytestmark = pytest.mark.integration

BINARY = bytes(range(256))


def kv(data_dir: Path, *arguments: str, check: bool = True) -> Any:
    return run_cli(
        "kv", *arguments, "--template", str(APP_TEMPLATE), "--data-dir", str(data_dir), check=check
    )


def bulk_file(path: Path, entries: list[Any]) -> str:
    path.write_text(json.dumps(entries))
    return str(path)


def test_a_bulk_file_round_trips_text_bytes_metadata_and_expirations(tmp_path: Path) -> None:
    data, expires = tmp_path / "data", int(time.time()) + 3600
    entries = [
        {"key": "import:text", "value": "héllo wörld"},
        {"key": "import:bytes", "value": base64.b64encode(BINARY).decode(), "base64": True},
        {"key": "import:meta", "value": "{}", "metadata": {"owner": "ops", "n": 3}},
        {"key": "import:expiring", "value": "soon", "expiration": expires},
        {"key": "import:ttl", "value": "later", "expiration_ttl": 600, "expiration": 1},
    ]

    wrote = kv(data, "bulk", "put", bulk_file(tmp_path / "in.json", entries))
    exported = json.loads(kv(data, "bulk", "get", "--prefix", "import:").stdout)
    again = kv(data, "bulk", "put", bulk_file(tmp_path / "out.json", exported))

    assert "wrote 5" in wrote.stderr
    by_key = {entry["key"]: entry for entry in exported}
    assert by_key["import:text"] == {"key": "import:text", "value": "héllo wörld"}
    assert base64.b64decode(by_key["import:bytes"]["value"]) == BINARY
    assert by_key["import:bytes"]["base64"] is True
    assert by_key["import:meta"]["metadata"] == {"owner": "ops", "n": 3}
    assert by_key["import:expiring"]["expiration"] == expires
    assert abs(by_key["import:ttl"]["expiration"] - (time.time() + 600)) < 30  # expiration_ttl wins
    assert "wrote 0, 5 unchanged" in again.stderr


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ({"value": "no key"}, "needs both key and value"),
        ({"key": "k"}, "needs both key and value"),
        ({"key": "k" * 513, "value": "v"}, "512"),
        ({"key": "k", "value": "v", "metadata": {"x": "y" * 1100}}, "1024"),
        ({"key": "k", "value": "v", "expiration": 1}, "expiration"),
        ({"key": "k", "value": "%%%", "base64": True}, "base64"),
        ({"key": "k", "value": 42}, "string"),
    ],
    ids=["no-key", "no-value", "long-key", "big-metadata", "past-expiration", "bad-base64", "not-text"],
)
def test_a_bad_entry_writes_nothing_and_is_named(tmp_path: Path, entry: dict[str, Any], says: str) -> None:
    data = tmp_path / "data"
    entries = [{"key": "good:1", "value": "fine"}, entry, {"key": "good:2", "value": "fine"}]

    refused = kv(data, "bulk", "put", bulk_file(tmp_path / "bad.json", entries), check=False)

    assert refused.returncode == 1
    assert "entry 1" in refused.stderr
    assert says in refused.stderr
    assert json.loads(kv(data, "bulk", "get", "--prefix", "good:").stdout) == []


def test_not_json_and_a_value_over_25_mib_are_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (tmp_path / "not.json").write_text("{not json")
    huge = [{"key": "huge", "value": "x" * (25 * 1024 * 1024 + 1)}]

    assert kv(data, "bulk", "put", str(tmp_path / "not.json"), check=False).returncode == 1
    refused = kv(data, "bulk", "put", bulk_file(tmp_path / "huge.json", huge), check=False)
    assert (refused.returncode, "entry 0 (key 'huge')" in refused.stderr) == (1, True)


def test_dry_run_no_overwrite_and_delete(tmp_path: Path) -> None:
    data = tmp_path / "data"
    kv(data, "bulk", "put", bulk_file(tmp_path / "first.json", [{"key": "x:a", "value": "1"}]))
    changed = [{"key": "x:a", "value": "2"}, {"key": "x:b", "value": "2"}]

    dry = kv(data, "bulk", "put", "--dry-run", bulk_file(tmp_path / "second.json", changed))
    kept = kv(data, "bulk", "put", "--no-overwrite", str(tmp_path / "second.json"))
    values = {e["key"]: e["value"] for e in json.loads(kv(data, "bulk", "get", "--prefix", "x:").stdout)}
    kv(data, "bulk", "delete", bulk_file(tmp_path / "keys.json", ["x:a", {"key": "x:b"}]))

    assert "would write 2" in dry.stderr
    assert "wrote 1, 1 unchanged or kept" in kept.stderr
    assert values == {"x:a": "1", "x:b": "2"}
    assert json.loads(kv(data, "bulk", "get", "--prefix", "x:").stdout) == []


def miniflare2_state(root: Path) -> Path:
    """A Miniflare 2 namespace directory as its file storage writes it."""
    namespace = root / ".mf" / "kv" / "ARGOBOX_CACHE"
    (namespace / "img").mkdir(parents=True)
    (namespace / "greeting").write_text("hello")
    (namespace / "img" / "logo.png").write_bytes(BINARY)
    (namespace / "img" / "logo.png.meta.json").write_text(
        json.dumps({"key": "img/logo.png", "metadata": {"type": "png"}})
    )
    (namespace / "cache" / "status").mkdir(parents=True)  # the key cache:status, ':' made a directory
    (namespace / "cache" / "status" / "summary").write_text("{}")
    later = int(time.time()) + 7200
    (namespace / "cache" / "status" / "summary.meta.json").write_text(
        json.dumps({"key": "cache:status:summary", "expiration": later})
    )
    (namespace / "old").write_text("gone")
    (namespace / "old.meta.json").write_text(json.dumps({"key": "old", "expiration": 1_000_000_000}))
    return namespace


def miniflare3_state(root: Path, namespace_id: str = "0f2ac74b498b48028cb68387c421e279") -> Path:
    """A Miniflare 3 (wrangler 3) KV directory: the entries table and the blobs beside it."""
    from local.miniflare import object_id

    kv_dir = root / ".wrangler" / "state" / "v3" / "kv"
    blobs = kv_dir / namespace_id / "blobs"
    blobs.mkdir(parents=True)
    (kv_dir / "miniflare-KVNamespaceObject").mkdir()
    database = kv_dir / "miniflare-KVNamespaceObject" / f"{object_id(namespace_id)}.sqlite"
    later_ms = (int(time.time()) + 7200) * 1000
    rows = [
        ("greeting", b"hello", None, None),
        ("img/logo.png", BINARY, None, '{"type": "png"}'),
        ("cache:status:summary", b"{}", later_ms, None),
        ("old", b"gone", 1_000_000_000_000, None),
    ]
    with sqlite3.connect(database) as connection:
        connection.execute(
            "CREATE TABLE _mf_entries (key TEXT PRIMARY KEY, blob_id TEXT NOT NULL, expiration INTEGER,"
            " metadata TEXT)"
        )
        for number, (key, value, expiration, metadata) in enumerate(rows):
            blob_id = f"{number:080x}"
            (blobs / blob_id).write_bytes(value)
            connection.execute(
                "INSERT INTO _mf_entries VALUES (?, ?, ?, ?)", (key, blob_id, expiration, metadata)
            )
    connection.close()
    return kv_dir


@pytest.mark.parametrize("state", [miniflare2_state, miniflare3_state], ids=["miniflare2", "miniflare3"])
def test_a_miniflare_state_directory_imports_values_metadata_and_expirations(
    tmp_path: Path, state: Any
) -> None:
    data = tmp_path / "data"

    imported = kv(data, "bulk", "put", "--from-miniflare", str(state(tmp_path)))
    exported = {entry["key"]: entry for entry in json.loads(kv(data, "bulk", "get", "--prefix", "").stdout)}

    assert "wrote 3" in imported.stderr
    assert exported["greeting"]["value"] == "hello"
    assert base64.b64decode(exported["img/logo.png"]["value"]) == BINARY
    assert exported["img/logo.png"]["metadata"] == {"type": "png"}
    assert abs(exported["cache:status:summary"]["expiration"] - (time.time() + 7200)) < 60
    assert "old" not in exported  # expired in Miniflare: left out

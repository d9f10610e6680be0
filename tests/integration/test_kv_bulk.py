"""``python -m local kv bulk put|get|delete``: wrangler's bulk JSON format, round trips and refusals."""

from __future__ import annotations

import base64
import json
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

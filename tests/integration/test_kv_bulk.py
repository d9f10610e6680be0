"""``python -m local kv bulk put|get|delete``: wrangler's bulk JSON format, round trips and refusals."""

from __future__ import annotations

import base64
import http.server
import json
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import boto3
import pytest

from arcturus.roles import ROLES_KEY as ROLES
from arcturus.roles import parse_document
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


def test_expiration_changes_are_written_and_ttl_reruns_are_not(tmp_path: Path) -> None:
    data = tmp_path / "data"
    soon, later = int(time.time()) + 3600, int(time.time()) + 7200
    kv(
        data,
        "bulk",
        "put",
        bulk_file(tmp_path / "a.json", [{"key": "e:abs", "value": "v", "expiration": soon}]),
    )
    ttl_file = bulk_file(tmp_path / "ttl.json", [{"key": "e:ttl", "value": "v", "expiration_ttl": 600}])
    kv(data, "bulk", "put", ttl_file)

    moved = kv(
        data,
        "bulk",
        "put",
        bulk_file(tmp_path / "b.json", [{"key": "e:abs", "value": "v", "expiration": later}]),
    )
    rerun = kv(data, "bulk", "put", ttl_file)
    exported = {e["key"]: e for e in json.loads(kv(data, "bulk", "get", "--prefix", "e:").stdout)}

    assert "wrote 1" in moved.stderr
    assert exported["e:abs"]["expiration"] == later
    assert "wrote 0, 1 unchanged" in rerun.stderr


ADMIN_ONLY_ROLES = {
    "users": {"admin@example.com": {"email": "admin@example.com", "role": "admin"}},
    "roles": {"admin": {"permissions": ["*"]}},
}


def test_the_roles_document_is_checked_as_the_put_route_checks_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    locked_out = json.loads(json.dumps(ADMIN_ONLY_ROLES))
    locked_out["roles"]["admin"]["permissions"] = ["view:status"]
    bad = [{"key": "import:other", "value": "x"}, {"key": "data:user-roles", "value": json.dumps(locked_out)}]

    refused = kv(data, "bulk", "put", bulk_file(tmp_path / "bad.json", bad), check=False)
    single = kv(data, "put", "data:user-roles", json.dumps(locked_out), check=False)
    good = [{"key": "data:user-roles", "value": json.dumps(ADMIN_ONLY_ROLES)}]
    accepted = kv(data, "bulk", "put", bulk_file(tmp_path / "good.json", good))

    assert refused.returncode == 1
    assert "entry 1 (key 'data:user-roles')" in refused.stderr
    assert "lock every administrator out" in refused.stderr
    assert (single.returncode, "lock every administrator out" in single.stderr) == (1, True)
    assert "wrote 1" in accepted.stderr
    [stored] = json.loads(kv(data, "bulk", "get", "--prefix", ROLES).stdout)
    # Stored as the roles store writes it: every default filled in, sealed (no function validates it again).
    document = json.loads(stored["value"])
    assert {"users": document["users"], "roles": document["roles"]} == parse_document(ADMIN_ONLY_ROLES)
    assert set(stored["metadata"]) == {"seal"}
    assert json.loads(kv(data, "bulk", "get", "--prefix", "import:").stdout) == []


STACK_TEMPLATE = {
    "Resources": {
        "KVTable": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "KeySchema": [
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                "AttributeDefinitions": [
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
            },
        }
    },
    "Outputs": {"KVTableName": {"Value": {"Ref": "KVTable"}}},
}


@pytest.fixture
def deployed_stack() -> Iterator[dict[str, str]]:
    """A stack with a KV table in a moto server, and the environment that reaches it as AWS would."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    cloudformation = boto3.client(
        "cloudformation",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    cloudformation.create_stack(StackName="arcturus-prod", TemplateBody=json.dumps(STACK_TEMPLATE))
    try:
        yield env
    finally:
        server.stop()


def test_bulk_commands_reach_a_deployed_stacks_table(tmp_path: Path, deployed_stack: dict[str, str]) -> None:
    entries = [
        {"key": "import:text", "value": "hello", "metadata": {"from": "workers"}},
        {"key": "import:bytes", "value": base64.b64encode(BINARY).decode(), "base64": True},
    ]
    source = bulk_file(tmp_path / "in.json", entries)
    unused_local = tmp_path / "never-created"

    def remote(*arguments: str, check: bool = True) -> Any:
        return run_cli("kv", *arguments, "--data-dir", str(unused_local), env=deployed_stack, check=check)

    written = remote("--stack", "arcturus-prod", "bulk", "put", source)
    table = written.stderr.split("kv: table ", 1)[1].split()[0]
    exported = json.loads(remote("bulk", "get", "--prefix", "import:", "--table", table).stdout)
    missing = remote("--stack", "no-such-stack", "list", check=False)

    assert "(stack arcturus-prod, region eu-west-1), namespace ARGOBOX_CACHE" in written.stderr
    assert "wrote 2" in written.stderr
    assert sorted(exported, key=lambda e: e["key"]) == sorted(entries, key=lambda e: e["key"])
    assert missing.returncode == 1
    assert "no-such-stack" in missing.stderr
    assert "Traceback" not in missing.stderr
    assert not unused_local.exists()  # nothing local was started or written


class FakeWorkersApi(http.server.BaseHTTPRequestHandler):
    """Cloudflare's KV REST API for one namespace: keys listed two per page, values as raw bytes, a
    429 on the first value request, 403 without the token."""

    ROOT = "/client/v4/accounts/acct/storage/kv/namespaces/ns1"
    store: ClassVar[dict[str, tuple[bytes, dict[str, Any]]]] = {}
    throttled: ClassVar[list[bool]] = []

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        if self.headers.get("Authorization") != "Bearer cf-token":
            return self._send(403, b'{"success": false, "errors": [{"code": 10000}]}')
        if url.path == f"{self.ROOT}/keys":
            names = sorted(self.store)
            start = int(urllib.parse.parse_qs(url.query).get("cursor", ["0"])[0])
            page = [{"name": name, **self.store[name][1]} for name in names[start : start + 2]]
            cursor = str(start + 2) if start + 2 < len(names) else ""
            body = {"success": True, "errors": [], "result": page, "result_info": {"cursor": cursor}}
            return self._send(200, json.dumps(body).encode())
        name = urllib.parse.unquote(url.path.removeprefix(f"{self.ROOT}/values/"))
        if not self.throttled:
            self.throttled.append(True)
            return self._send(429, b"{}", {"Retry-After": "1"})
        if name not in self.store:
            return self._send(404, b"{}")
        return self._send(200, self.store[name][0])

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


def test_a_live_workers_namespace_exports_to_a_file_put_takes(tmp_path: Path) -> None:
    expires = int(time.time()) + 3600
    FakeWorkersApi.store = {
        "data:user-roles": (json.dumps(ADMIN_ONLY_ROLES).encode(), {}),
        "img/a b.png": (BINARY, {"metadata": {"type": "png"}}),
        "cache:status:summary": (b"{}", {"expiration": expires}),
        "greeting": ("héllo".encode(), {}),
        "%weird?key#": (b"x", {"metadata": {"n": 1}}),
    }
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeWorkersApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        "CLOUDFLARE_API_TOKEN": "cf-token",
        "CLOUDFLARE_API_BASE_URL": f"http://127.0.0.1:{server.server_port}/client/v4",
    }
    data = tmp_path / "data"
    try:
        exported = run_cli("kv", "bulk", "get", "--from-workers", "ns1", "--account-id", "acct", env=env)
        denied = run_cli(
            "kv", "bulk", "get", "--from-workers", "ns1", "--account-id", "acct",
            env=env | {"CLOUDFLARE_API_TOKEN": "wrong"}, check=False,
        )  # fmt: skip
    finally:
        server.shutdown()
    (tmp_path / "workers.json").write_text(exported.stdout)
    kv(data, "bulk", "put", str(tmp_path / "workers.json"))
    imported = {e["key"]: e for e in json.loads(kv(data, "bulk", "get", "--prefix", "").stdout)}

    assert "5 keys listed" in exported.stderr
    sent = {e["key"]: e for e in json.loads(exported.stdout)}
    assert imported.keys() == sent.keys()
    # Every value as it was, but the roles document: stored as the roles store writes it (sealed).
    assert [imported[key] for key in sent if key != ROLES] == [sent[key] for key in sent if key != ROLES]
    assert json.loads(imported[ROLES]["value"])["users"] == parse_document(ADMIN_ONLY_ROLES)["users"]
    assert set(imported[ROLES]["metadata"]) == {"seal"}
    assert base64.b64decode(imported["img/a b.png"]["value"]) == BINARY
    assert imported["img/a b.png"]["metadata"] == {"type": "png"}
    assert imported["cache:status:summary"]["expiration"] == expires
    assert imported["greeting"]["value"] == "héllo"
    assert imported["%weird?key#"]["value"] == "x"
    assert (denied.returncode, "403" in denied.stderr, "Traceback" in denied.stderr) == (1, True, False)

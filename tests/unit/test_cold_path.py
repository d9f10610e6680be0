"""A function that takes no input never imports pydantic, neither at init nor on a request that reads the
roles document as the store wrote it: about 90 ms of every cold start (``make bench``).

Each case is a new interpreter (a new container), with in-process moto in it: pydantic, once imported
by this test process, cannot be un-imported.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from typing import Any

import pytest

from arcturus.cache import TwoTierCache
from arcturus.kv import KVNamespace
from arcturus.roles import RolesStore
from tests.conftest import TABLE
from tests.unit.support import ADMIN, ROOT, roles_document

# The child stores what the parent wrote (the roles document with the store's seal, a cached value)
# into its own moto, then answers one request as the function's first.
CHILD = """
import json, os, pickle, sys
from moto import mock_aws

with mock_aws():
    import boto3
    from arcturus.kvstore import create_table
    from tests.unit.support import ADMIN, claims_for, http_event, invoke, json_body, load_function

    create_table(boto3.client("dynamodb"), os.environ["KV_TABLE_NAME"])
    stored = pickle.loads(sys.stdin.buffer.read())
    table = boto3.client("dynamodb")
    for item in stored:
        table.put_item(TableName=os.environ["KV_TABLE_NAME"], Item=item)
    function = load_function(sys.argv[1])
    at_init = "pydantic" in sys.modules or "pydantic_core" in sys.modules
    response = invoke(function, http_event("GET", sys.argv[2], claims=claims_for(ADMIN)))
    after = "pydantic" in sys.modules or "pydantic_core" in sys.modules
    print(json.dumps({"status": response["statusCode"], "body": json_body(response),
                      "pydanticAtInit": at_init, "pydanticAfter": after}))
"""


def first_request(dynamodb: Any, kv: KVNamespace, function: str, path: str) -> dict[str, Any]:
    """The child's account of ``function``'s first request, on the items the store and cache wrote."""
    store = RolesStore(kv)
    store.replace(roles_document(), store.read_with_version()[1])
    TwoTierCache(kv).put("services", "all", {"services": [], "checkedAt": "2026-12-02T00:00:00Z"})
    done = subprocess.run(
        [sys.executable, "-c", CHILD, function, path],
        input=pickle.dumps(dynamodb.scan(TableName=TABLE)["Items"]),
        capture_output=True,
        cwd=ROOT,
        env=os.environ | {"PYTHONPATH": f"{ROOT / 'layers' / 'shared'}:{ROOT}", "SOURCES_CONFIG": "{}"},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    answer: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return answer


@pytest.mark.parametrize(
    ("function", "path"),
    [
        ("auth_me", "/api/auth/me"),
        ("status", "/api/status"),
        ("services", "/api/services"),
    ],
)
def test_a_function_without_input_answers_its_first_request_without_pydantic(
    dynamodb: Any, kv: KVNamespace, function: str, path: str
) -> None:
    answer = first_request(dynamodb, kv, function, path)

    assert answer["status"] == 200, answer
    assert (answer["pydanticAtInit"], answer["pydanticAfter"]) == (False, False)
    if function == "auth_me":
        assert answer["body"]["email"] == ADMIN


def test_the_check_sees_pydantic_where_a_function_takes_input(dynamodb: Any, kv: KVNamespace) -> None:
    # Guards the test itself: the roles function validates every request (its PUT takes a body).
    answer = first_request(dynamodb, kv, "auth_roles", "/api/auth/roles")

    assert (answer["status"], answer["pydanticAtInit"]) == (200, True)

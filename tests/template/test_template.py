"""template.yaml as a deployer meets it: routes and who may call them, the KV table, code, permissions."""

from __future__ import annotations

import ast
import fnmatch
import json
import re
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import lint_file
from cfnlint.decode import cfn_yaml

from arcturus.cache import CacheState
from arcturus.kvstore import KEY_CLASSES, OTHER_CLASS, KVTable, idempotency_partition

pytestmark = pytest.mark.template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"

# DESIGN.md's route table: (method, path) -> (function, authorizer). Public routes must not ask for a JWT.
ROUTES = {
    ("GET", "/api/auth/me"): ("AuthMeFunction", "JwtAuthorizer"),
    ("POST", "/api/auth/profile"): ("AuthProfileFunction", "JwtAuthorizer"),
    ("GET", "/api/auth/roles"): ("AuthRolesFunction", "JwtAuthorizer"),
    ("PUT", "/api/auth/roles"): ("AuthRolesFunction", "JwtAuthorizer"),
    ("POST", "/api/cache/warmup"): ("CacheWarmupFunction", "NONE"),
    ("GET", "/api/cache/status"): ("CacheStatusFunction", "JwtAuthorizer"),
    ("GET", "/api/status"): ("StatusFunction", "JwtAuthorizer"),
    ("GET", "/api/services"): ("ServicesFunction", "JwtAuthorizer"),
    ("GET", "/api/dashboard"): ("DashboardFunction", "JwtAuthorizer"),
    ("POST", "/api/contact"): ("ContactFunction", "NONE"),
    ("POST", "/api/public/chat"): ("ChatFunction", "NONE"),
}

DYNAMODB_ACTIONS = {
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
}


@cache
def template() -> dict[str, Any]:
    return dict(cfn_yaml.loads(TEMPLATE.read_text(encoding="utf-8"), str(TEMPLATE)))


def functions() -> dict[str, dict[str, Any]]:
    resources = template()["Resources"]
    return {
        name: resource["Properties"]
        for name, resource in resources.items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def declared_routes() -> dict[tuple[str, str], tuple[str, str | None]]:
    routes = {}
    for name, props in functions().items():
        for event in props.get("Events", {}).values():
            if event["Type"] != "HttpApi":
                continue
            ev = event["Properties"]
            assert ev.get("ApiId") == {"Ref": "HttpApi"}, f"{name} is not routed through HttpApi"
            routes[(ev["Method"].upper(), ev["Path"])] = (name, ev.get("Auth", {}).get("Authorizer"))
    return routes


def policy_statements(props: dict[str, Any]) -> list[dict[str, Any]]:
    """Inline statements of a function plus those of the managed policies it references."""
    resources = template()["Resources"]
    statements: list[dict[str, Any]] = []
    for policy in props.get("Policies", []):
        document = policy
        if isinstance(policy, dict) and "Ref" in policy:
            document = resources[policy["Ref"]]["Properties"]["PolicyDocument"]
        if isinstance(document, dict) and "Statement" in document:
            statements.extend(document["Statement"])
    return statements


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_every_route_of_the_design_is_declared_with_its_authorizer() -> None:
    # Given the functions' HttpApi events / When collected by method and path
    # Then they are exactly the design's routes, each naming its authorizer explicitly
    assert declared_routes() == ROUTES


def test_the_api_checks_jwts_unless_a_route_opts_out() -> None:
    api = template()["Resources"]["HttpApi"]["Properties"]
    assert api["Auth"]["DefaultAuthorizer"] == "JwtAuthorizer"
    jwt = api["Auth"]["Authorizers"]["JwtAuthorizer"]
    assert jwt["IdentitySource"] == "$request.header.Authorization"
    assert set(jwt["JwtConfiguration"]) == {"issuer", "audience"}


def test_kv_table_matches_the_code_and_survives_stack_deletion() -> None:
    table = template()["Resources"]["KVTable"]
    props = table["Properties"]
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"


def test_functions_run_python313_on_arm64_with_the_shared_layer() -> None:
    globals_ = template()["Globals"]["Function"]
    assert globals_["Runtime"] == "python3.13"
    assert globals_["Architectures"] == ["arm64"]
    assert globals_["Handler"] == "app.handler"
    assert globals_["Layers"] == [{"Ref": "SharedLayer"}]
    assert globals_["Environment"]["Variables"]["KV_TABLE_NAME"] == {"Ref": "KVTable"}
    for name, props in functions().items():
        overridden = {key for key in ("Runtime", "Architectures", "Handler", "Layers") if key in props}
        assert not overridden, f"{name} overrides {overridden}"


@pytest.mark.parametrize("name", sorted({fn for fn, _ in ROUTES.values()}))
def test_each_function_has_code_with_a_handler(name: str) -> None:
    app = ROOT / functions()[name]["CodeUri"] / "app.py"
    assert app.is_file(), f"{name}: {app.relative_to(ROOT)} is missing"
    defined: set[str] = set()
    for node in ast.parse(app.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef):
            defined.add(node.name)
        elif isinstance(node, ast.Assign):
            defined.update(target.id for target in node.targets if isinstance(target, ast.Name))
        elif isinstance(node, ast.ImportFrom):
            defined.update(alias.asname or alias.name for alias in node.names)
    assert "handler" in defined, f"{name}: no top-level `handler` in {app.relative_to(ROOT)}"


def test_no_function_gets_blanket_dynamodb_access() -> None:
    for name, props in functions().items():
        for policy in props.get("Policies", []):
            assert not (isinstance(policy, str) and "DynamoDB" in policy), f"{name} attaches {policy}"
        for statement in policy_statements(props):
            actions = {a for a in as_list(statement["Action"]) if a.startswith("dynamodb:")}
            if not actions:
                continue
            assert actions <= DYNAMODB_ACTIONS, f"{name} may {actions - DYNAMODB_ACTIONS}"
            assert statement["Resource"] == {"Fn::GetAtt": ["KVTable", "Arn"]}, f"{name}: {statement}"


RUNTIME_PROVIDED = {"boto3", "botocore", "s3transfer", "jmespath", "urllib3", "python-dateutil", "six"}


def test_layer_ships_a_hash_locked_tree_without_what_the_lambda_runtime_provides() -> None:
    lock = (ROOT / "layers/shared/requirements.txt").read_text(encoding="utf-8")
    pinned_with_hashes = r"^([A-Za-z0-9_.\-]+)==\S+ \\\n((?:\s+--hash=sha256:[0-9a-f]{64}(?: \\)?\n)+)"
    pins = re.findall(pinned_with_hashes, lock, re.M)
    requirement_lines = [line for line in lock.splitlines() if line and not line.startswith((" ", "#"))]

    assert len(pins) == len(requirement_lines) > 0, "every requirement is pinned with its hashes"
    assert not {name.lower() for name, _ in pins} & RUNTIME_PROVIDED
    direct = (ROOT / "layers/shared/requirements.in").read_text(encoding="utf-8")
    for line in direct.splitlines():
        if line and not line.startswith("#"):
            name, _, version = re.sub(r"\[.*\]", "", line).partition("==")
            assert f"{name}=={version} \\" in lock, f"{line} is not what the lock holds: run make lock"


def test_deployed_functions_use_aws_endpoints_and_sam_local_may_redirect_them() -> None:
    # SAM CLI's --env-vars only overrides variables the template declares; an empty one is ignored by
    # botocore (tests/unit/test_aws.py), so a deployed function talks to AWS's regional endpoints.
    assert template()["Globals"]["Function"]["Environment"]["Variables"]["AWS_ENDPOINT_URL"] == ""
    for name, props in functions().items():
        assert "AWS_ENDPOINT_URL" not in props.get("Environment", {}).get("Variables", {}), name


def test_cfn_lint_finds_nothing() -> None:
    assert [str(match) for match in lint_file(TEMPLATE)] == []


def test_sign_in_accounts_are_case_insensitive_and_email_changes_wait_for_verification() -> None:
    pool = template()["Resources"]["UserPool"]["Properties"]

    assert pool["UsernameConfiguration"] == {"CaseSensitive": False}
    assert pool["UserAttributeUpdateSettings"] == {"AttributesRequireVerificationBeforeUpdate": ["email"]}


def test_prod_names_its_dashboard_origin_instead_of_any() -> None:
    rule = template()["Rules"]["ProdNamesItsDashboardOrigin"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}
    assert rule["Assertions"][0]["Assert"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "CorsAllowOrigins"}, "*"]}]
    }

    prod = tomllib.loads((ROOT / "samconfig.toml").read_text())["prod"]["deploy"]["parameters"]
    overrides = dict(pair.split("=", 1) for pair in prod["parameter_overrides"].split())
    assert overrides["Stage"] == "prod"
    assert overrides["CorsAllowOrigins"].startswith("https://")


def test_public_functions_have_reserved_concurrency_and_their_routes_their_own_throttle() -> None:
    api = template()["Resources"]["HttpApi"]["Properties"]
    default = api["DefaultRouteSettings"]
    public = {
        route: fn for route, (fn, auth) in ROUTES.items() if auth == "NONE" and fn != "CacheWarmupFunction"
    }

    for (method, path), function in public.items():
        reserved = functions()[function]["ReservedConcurrentExecutions"]
        parameter = template()["Parameters"][reserved["Ref"]]
        throttle = api["RouteSettings"][f"{method} {path}"]
        assert parameter["Type"] == "Number"
        assert parameter["MinValue"] >= 1, function
        assert throttle["ThrottlingRateLimit"] < default["ThrottlingRateLimit"], path
        assert throttle["ThrottlingBurstLimit"] <= parameter["Default"], path


# Which key classes each function may write and read (arcturus.kvstore.KEY_CLASSES plus "other").
KEY_CLASS_ACCESS = {
    "AuthMeFunction": (set(), {"data"}),
    "AuthProfileFunction": ({"data", "rate"}, {"data", "rate"}),
    "AuthRolesFunction": ({"data"}, {"data"}),
    "CacheWarmupFunction": ({"cache", "lease"}, {"data", "cache", "lease"}),
    "CacheStatusFunction": (set(), set(KEY_CLASSES) | {OTHER_CLASS}),
    "StatusFunction": ({"cache", "lease"}, {"data", "cache", "lease"}),
    "ServicesFunction": ({"cache", "lease"}, {"data", "cache", "lease"}),
    "DashboardFunction": ({"cache", "lease"}, {"data", "cache", "lease"}),
    "ContactFunction": ({"rate", "contact"}, {"rate", "contact"}),
    "ChatFunction": ({"rate", "session", "ai"}, {"rate", "session", "ai"}),
}


def allows(function: str, action: str, partition_key: str) -> bool:
    """Whether the function's policies let ``action`` reach an item under ``partition_key`` (Allow
    statements on the KV table, their dynamodb:LeadingKeys condition evaluated as IAM's StringLike)."""
    for statement in policy_statements(functions()[function]):
        if statement["Resource"] != {"Fn::GetAtt": ["KVTable", "Arn"]} or action not in as_list(
            statement["Action"]
        ):
            continue
        condition = statement.get("Condition")
        if condition is None:
            return True
        patterns = condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
        if any(fnmatch.fnmatchcase(partition_key, pattern) for pattern in as_list(patterns)):
            return True
    return False


@pytest.mark.parametrize("function", sorted(KEY_CLASS_ACCESS))
def test_iam_lets_each_function_touch_only_its_key_classes(function: str) -> None:
    namespace = template()["Globals"]["Function"]["Environment"]["Variables"]["KV_NAMESPACE"]
    table = KVTable(None, "kv", namespace)  # type: ignore[arg-type]  # only its key layout is used
    writes, reads = KEY_CLASS_ACCESS[function]
    for cls in sorted(KEY_CLASSES | {OTHER_CLASS}):
        key = f"{cls}:x" if cls != OTHER_CLASS else "no-class"
        for partition_key in (
            table.shard_pk(cls, 0x0F),
            table.chunk_pk(key),
            idempotency_partition(namespace, cls),
        ):
            assert allows(function, "dynamodb:UpdateItem", partition_key) == (cls in writes), (
                cls,
                partition_key,
            )
            assert allows(function, "dynamodb:BatchWriteItem", partition_key) == (cls in writes), cls
            assert allows(function, "dynamodb:GetItem", partition_key) == (cls in reads), (cls, partition_key)
            assert allows(function, "dynamodb:Query", partition_key) == (cls in reads), cls


AWS_METRICS = {
    "AWS/ApiGateway": {"Count", "4xx", "5xx", "Latency"},
    "AWS/Lambda": {"Errors", "Throttles", "Invocations", "Duration", "ConcurrentExecutions"},
    "AWS/DynamoDB": {
        "ConsumedReadCapacityUnits",
        "ConsumedWriteCapacityUnits",
        "ReadThrottleEvents",
        "WriteThrottleEvents",
    },
}
"""The AWS metrics the dashboard and alarms may use: each is one these services publish."""


def emitted_metrics() -> set[str]:
    """Every metric name the layer and the functions emit, read from their source."""
    sources = [*(ROOT / "layers/shared/arcturus").rglob("*.py"), *(ROOT / "functions").glob("*/app.py")]
    text = "\n".join(path.read_text(encoding="utf-8") for path in sources)
    literal = set(re.findall(r'add_metric\(name="(\w+)"', text))
    # The one computed name: CacheHit, CacheStale, CacheMiss (arcturus.cache).
    assert text.count("add_metric(") == len(re.findall(r'add_metric\(name="\w+"', text)) + 1
    return literal | {f"Cache{state.value.title()}" for state in CacheState}


def dashboard_metrics() -> set[tuple[str, str]]:
    body = template()["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))["widgets"]
    return {(metric[0], metric[1]) for widget in widgets for metric in widget["properties"]["metrics"]}


def test_every_metric_the_code_emits_is_on_the_dashboard() -> None:
    namespace = template()["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
    shown = dashboard_metrics()

    assert {name for ns, name in shown if ns == namespace} == emitted_metrics()
    assert {ns for ns, _ in shown} == {namespace, *AWS_METRICS}
    assert all(name in AWS_METRICS[ns] for ns, name in shown if ns != namespace)


def alarm_metrics(properties: dict[str, Any]) -> list[tuple[str, str]]:
    if "MetricName" in properties:
        return [(properties["Namespace"], properties["MetricName"])]
    return [
        (query["MetricStat"]["Metric"]["Namespace"], query["MetricStat"]["Metric"]["MetricName"])
        for query in properties["Metrics"]
        if "MetricStat" in query
    ]


def test_every_alarm_watches_a_metric_that_exists_and_pages_the_alarm_topic() -> None:
    namespace = template()["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
    alarms = {
        name: resource["Properties"]
        for name, resource in template()["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }

    assert len(alarms) >= 6
    for name, properties in alarms.items():
        for ns, metric in alarm_metrics(properties):
            known = emitted_metrics() if ns == namespace else AWS_METRICS.get(ns, set())
            assert metric in known, f"{name} watches {ns}/{metric}, which nothing emits"
        assert properties["AlarmActions"] == [{"Ref": "AlarmTopic"}], name

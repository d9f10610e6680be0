"""Create, in the embedded AWS, the resources template.yaml declares that the functions use.

Tables (key schema, indexes, TTL), topics, secrets (the generated value kept in the data directory so
it survives restarts) and SSM parameters. Functions, APIs and layers get the references CloudFormation
would give them; anything else (IAM, log groups, Cognito) is not emulated and stays unresolvable.
"""

from __future__ import annotations

import json
import secrets
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.aws import EmbeddedAWS
from local.intrinsics import ACCOUNT_ID, REGION, Resolver
from local.template import HTTP_API, IMPLICIT_HTTP_API, LAYER, Template

API_ID = "local"


@dataclass
class Table:
    """A created DynamoDB table and its TTL attribute (None when TTL is off)."""

    name: str
    ttl_attribute: str | None


@dataclass
class Resources:
    """What ``!Ref`` and ``!GetAtt`` give for each created resource, and the tables to persist."""

    refs: dict[str, Any] = field(default_factory=dict)
    attrs: dict[str, dict[str, Any]] = field(default_factory=dict)
    tables: dict[str, Table] = field(default_factory=dict)
    secret_values: dict[str, str] = field(default_factory=dict)


def provision(
    template: Template, aws: EmbeddedAWS, secrets_file: Path, *, tables_only: bool = False
) -> Resources:
    """Create the template's emulated resources on ``aws`` (only its tables: ``tables_only``)."""
    resources = Resources()
    resolver = template.resolver(resources.refs, resources.attrs)
    _name_serverless(template, resources)
    for logical_id, props in template.of_type("AWS::DynamoDB::Table").items():
        _table(aws, logical_id, resolver.resolve(props), resources)
    if tables_only:
        return resources
    for logical_id, props in template.of_type("AWS::SNS::Topic").items():
        name = resolver.resolve(props).get("TopicName") or logical_id
        arn = aws.client("sns").create_topic(Name=name)["TopicArn"]
        resources.refs[logical_id] = arn
        resources.attrs[logical_id] = {"TopicArn": arn, "TopicName": name}
    _secrets(template, aws, resolver, secrets_file, resources)
    for logical_id, props in template.of_type("AWS::SSM::Parameter").items():
        resolved = resolver.resolve(props)
        name = resolved.get("Name") or logical_id
        value = resolved["Value"]
        aws.client("ssm").put_parameter(
            Name=name, Value=value, Type=resolved.get("Type", "String"), Overwrite=True
        )
        resources.refs[logical_id] = name
        resources.attrs[logical_id] = {"Type": resolved.get("Type", "String"), "Value": value}
    return resources


def _name_serverless(template: Template, resources: Resources) -> None:
    for logical_id, spec in template.functions().items():
        arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{spec.name}"
        resources.refs[logical_id] = spec.name
        resources.attrs[logical_id] = {"Arn": arn}
    for logical_id in template.of_type(LAYER):
        resources.refs[logical_id] = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:layer:{logical_id}:1"
    for logical_id in [*template.of_type(HTTP_API), IMPLICIT_HTTP_API]:
        resources.refs[logical_id] = API_ID
        resources.attrs[logical_id] = {"ApiEndpoint": "", "ApiId": API_ID}


def _table(aws: EmbeddedAWS, logical_id: str, props: dict[str, Any], resources: Resources) -> None:
    name = props.get("TableName") or logical_id
    definition: dict[str, Any] = {
        key: props[key]
        for key in ("KeySchema", "AttributeDefinitions", "LocalSecondaryIndexes", "StreamSpecification")
        if key in props
    }
    # On-demand everywhere locally: capacity settings mean nothing to moto.
    indexes = [
        {key: value for key, value in index.items() if key != "ProvisionedThroughput"}
        for index in props.get("GlobalSecondaryIndexes", [])
    ]
    if indexes:
        definition["GlobalSecondaryIndexes"] = indexes
    client = aws.client("dynamodb")
    table = client.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", **definition)[
        "TableDescription"
    ]
    ttl = props.get("TimeToLiveSpecification") or {}
    ttl_attribute = ttl.get("AttributeName") if str(ttl.get("Enabled")).lower() == "true" else None
    if ttl_attribute:
        client.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute}
        )
    resources.refs[logical_id] = name
    resources.attrs[logical_id] = {"Arn": table["TableArn"], "StreamArn": table.get("LatestStreamArn", "")}
    resources.tables[logical_id] = Table(name, ttl_attribute)


def _secrets(
    template: Template, aws: EmbeddedAWS, resolver: Resolver, secrets_file: Path, resources: Resources
) -> None:
    stored: dict[str, str] = json.loads(secrets_file.read_text()) if secrets_file.exists() else {}
    for logical_id, props in template.of_type("AWS::SecretsManager::Secret").items():
        resolved = resolver.resolve(props)
        value = resolved.get("SecretString") or stored.get(logical_id)
        if value is None:
            value = generate_secret(resolved.get("GenerateSecretString", {}))
            stored[logical_id] = value
        arn = aws.client("secretsmanager").create_secret(
            Name=resolved.get("Name") or logical_id, SecretString=value
        )["ARN"]
        resources.refs[logical_id] = arn
        resources.attrs[logical_id] = {"Id": arn}
        resources.secret_values[logical_id] = value
    if stored:
        secrets_file.parent.mkdir(parents=True, exist_ok=True)
        secrets_file.write_text(json.dumps(stored, indent=2) + "\n")
        secrets_file.chmod(0o600)


def generate_secret(spec: dict[str, Any]) -> str:
    """A value as Secrets Manager's GenerateSecretString would make it (length, character classes)."""
    alphabet = ""
    for characters, excluded in (
        (string.ascii_lowercase, "ExcludeLowercase"),
        (string.ascii_uppercase, "ExcludeUppercase"),
        (string.digits, "ExcludeNumbers"),
        (string.punctuation, "ExcludePunctuation"),
    ):
        if str(spec.get(excluded, False)).lower() != "true":
            alphabet += characters
    if str(spec.get("IncludeSpace", False)).lower() == "true":
        alphabet += " "
    alphabet = "".join(c for c in alphabet if c not in str(spec.get("ExcludeCharacters", "")))
    value = "".join(secrets.choice(alphabet) for _ in range(int(spec.get("PasswordLength", 32))))
    if "SecretStringTemplate" in spec and "GenerateStringKey" in spec:
        return json.dumps(json.loads(spec["SecretStringTemplate"]) | {spec["GenerateStringKey"]: value})
    return value

"""The embedded AWS holds what template.yaml declares, reachable at the endpoint serve publishes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local.datadir import DataDir
from local.endpoint import client
from tests.integration.conftest import LocalServe

pytestmark = pytest.mark.integration


def _aws(server: LocalServe, service: str) -> Any:
    info = DataDir(server.data_dir).running()
    assert info is not None
    return client(service, info.aws)


def test_the_kv_table_has_the_templates_keys_and_ttl(app: LocalServe) -> None:
    dynamodb = _aws(app, "dynamodb")

    table = dynamodb.describe_table(TableName="KVTable")["Table"]
    ttl = dynamodb.describe_time_to_live(TableName="KVTable")["TimeToLiveDescription"]

    assert table["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}


def test_the_topic_secret_and_parameter_exist(app: LocalServe) -> None:
    topics = [topic["TopicArn"] for topic in _aws(app, "sns").list_topics()["Topics"]]
    secret = _aws(app, "secretsmanager").get_secret_value(SecretId="CacheWarmupSecret")["SecretString"]
    sources = json.loads(_aws(app, "ssm").get_parameter(Name="/arcturus/dev/sources")["Parameter"]["Value"])

    assert sorted(topics) == [
        "arn:aws:sns:us-east-1:123456789012:AlarmTopic",
        "arn:aws:sns:us-east-1:123456789012:ContactTopic",
    ]
    assert len(secret) == 48
    assert secret.isalnum()
    assert sources["services"], "serve points the sources at its demo upstream"

"""POST /api/contact: validation, storage, the SNS notification, Idempotency-Key retries, the rate limit."""

from __future__ import annotations

import json
import re
import sys
import threading
import time
import unicodedata
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from pydantic import ValidationError

from arcturus import aws, background
from arcturus.contact import (
    IDEMPOTENCY_TTL_S,
    NOT_IN_A_LINE,
    ContactInbox,
    ContactMessage,
)
from arcturus.errors import ArcturusError
from arcturus.kv import KVNamespace
from arcturus.kvstore import idempotency_layout
from arcturus.web.answers import problem_for
from tests.conftest import TABLE, Clock
from tests.unit.support import (
    FakeContext,
    InjectedError,
    Mailbox,
    cold_start,
    configure,
    http_event,
    invoke,
    json_body,
    load_function,
)

IDEMPOTENCY_PARTITION = "ARGOBOX_CACHE#contact#idempotency"
MESSAGE = {"name": "Ada Lovelace", "email": "ada@example.org", "message": "Hello from the contact form."}


@pytest.fixture
def mailbox(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> Mailbox:
    """The contact topic, with a queue subscribed where the test reads what was sent."""
    box = Mailbox(
        boto3.client("sns", region_name="us-east-1"), boto3.client("sqs", region_name="us-east-1"), "contact"
    )
    configure(monkeypatch, CONTACT_TOPIC_ARN=box.topic_arn)
    return box


@pytest.fixture
def function(mailbox: Mailbox) -> Iterator[ModuleType]:
    cold_start()
    yield load_function("contact")
    cold_start()


def post(
    function: ModuleType, body: Any = MESSAGE, *, ip: str = "198.51.100.7", key: str | None = None
) -> dict[str, Any]:
    headers = {"Idempotency-Key": key} if key is not None else None
    return invoke(function, http_event("POST", "/api/contact", body=body, headers=headers, source_ip=ip))


def stored(kv: KVNamespace) -> list[dict[str, Any]]:
    return [kv.get(entry["name"], type="json") for entry in kv.list(prefix="contact:")["keys"]]


class TestMessage:
    @pytest.mark.parametrize(
        "email",
        [
            "ada@example.org",
            "a.b+tag@sub.example.co.uk",
            "o'brien@example.ie",
            "zoë@exämple.de",
            "x@xn--p1ai.xn--p1ai",
        ],
    )
    def test_accepted_addresses(self, email: str) -> None:
        assert ContactMessage(name="A", email=email, message="hi").email == email

    @pytest.mark.parametrize(
        "email",
        [
            "ada",
            "ada@",
            "@example.org",
            "ada@example",
            "ada@@example.org",
            "ada @example.org",
            "ada@exa mple.org",
            "ada@-example.org",
            "ada@example.org.",
            ".ada@example.org",
            "ada..lovelace@example.org",
            "<ada@example.org>",
            "ada@example.123",
            f"{'a' * 65}@example.org",
        ],
    )
    def test_refused_addresses(self, email: str) -> None:
        with pytest.raises(ValidationError):
            ContactMessage(name="A", email=email, message="hi")

    def test_surrounding_whitespace_is_dropped(self) -> None:
        message = ContactMessage(name="  Ada ", email=" ada@example.org\n", message="\n hi \n")

        assert (message.name, message.email, message.message) == ("Ada", "ada@example.org", "hi")

    def test_the_message_may_have_lines_but_the_name_may_not(self) -> None:
        assert ContactMessage(name="Ada", email="ada@example.org", message="one\ntwo\r\n\tthree").message

        with pytest.raises(ValidationError):
            ContactMessage(name="Ada\nBcc: x@y.z", email="ada@example.org", message="hi")

    @pytest.mark.parametrize(
        "separator",
        ["\u2028", "\u2029", "\u0085", "\u202e", "\u2066", "\u200b", "\ufeff", "\x9b", "\U000e0041"],
        ids=["LS", "PS", "NEL", "RLO", "LRI", "ZWSP", "BOM", "CSI", "TAG-A"],
    )
    def test_a_name_cannot_forge_lines_or_reorder_text_in_the_notification(self, separator: str) -> None:
        # Mail clients break lines at LS, PS and NEL, and bidi controls reorder what the owner reads.
        with pytest.raises(ValidationError):
            ContactMessage(name=f"Ada{separator}Received: forged", email="ada@example.org", message="hi")

    def test_names_in_any_script_are_welcome(self) -> None:
        assert ContactMessage(name="Ада Лавлейс — 艾达 ☕", email="ada@example.org", message="hi").name

    def test_the_refused_characters_are_unicodes_separators_controls_and_format_characters(self) -> None:
        refused = re.compile(f"[{NOT_IN_A_LINE}]")
        categories = {"Zl", "Zp", "Cc", "Cf", "Cs"}

        mismatched = [
            hex(code)
            for code in range(sys.maxunicode + 1)
            if (unicodedata.category(chr(code)) in categories) != bool(refused.match(chr(code)))
        ]

        assert mismatched == [], f"NOT_IN_A_LINE is out of date for Unicode {unicodedata.unidata_version}"


class TestRetention:
    def test_a_message_is_kept_90_days_by_default(self, function: ModuleType, kv: KVNamespace) -> None:
        before = time.time()
        post(function)

        [entry] = kv.list(prefix="contact:")["keys"]
        assert int(before) + 90 * 86_400 <= entry["expiration"] <= time.time() + 90 * 86_400 + 1

    def test_the_retention_comes_from_the_template_parameter(
        self, mailbox: Mailbox, kv: KVNamespace, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        configure(monkeypatch, CONTACT_RETENTION_DAYS="7")
        cold_start()
        post(load_function("contact"))

        [entry] = kv.list(prefix="contact:")["keys"]
        assert abs(entry["expiration"] - (time.time() + 7 * 86_400)) < 5

    @pytest.mark.parametrize("days", ["0", "-1", "3651", "ninety", "", "7.5"])
    def test_a_bad_retention_fails_the_init_naming_the_variable(
        self, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch, days: str
    ) -> None:
        configure(monkeypatch, CONTACT_RETENTION_DAYS=days)
        cold_start()

        with pytest.raises(RuntimeError, match="CONTACT_RETENTION_DAYS"):
            load_function("contact")


class TestContactForm:
    def test_a_message_is_stored_sent_and_answered_202(
        self, function: ModuleType, mailbox: Mailbox, kv: KVNamespace
    ) -> None:
        response = post(function)

        assert response["statusCode"] == 202
        message_id = json_body(response)["id"]
        assert uuid.UUID(message_id)
        [entry] = kv.list(prefix="contact:")["keys"]
        assert entry["name"].startswith("contact:20")
        assert entry["name"].endswith(f"Z:{message_id}")
        record = kv.get(entry["name"], type="json")
        assert record == {
            "id": message_id,
            "receivedAt": entry["name"].split(":", 1)[1].rsplit(":", 1)[0],
            **MESSAGE,
        }
        [notification] = mailbox.received()
        assert notification["Subject"] == "Arcturus-Prime contact form"
        assert "From: Ada Lovelace <ada@example.org>" in notification["Message"]
        assert MESSAGE["message"] in notification["Message"]
        assert message_id in notification["Message"]

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"email": "ada@example.org", "message": "hi"}, "name"),
            ({**MESSAGE, "name": "   "}, "name"),
            ({**MESSAGE, "name": "x" * 101}, "name"),
            ({**MESSAGE, "email": "not-an-address"}, "email"),
            ({**MESSAGE, "message": ""}, "message"),
            ({**MESSAGE, "message": "x" * 5001}, "message"),
            ({**MESSAGE, "message": 42}, "message"),
            ({**MESSAGE, "phone": "555"}, "phone"),
        ],
        ids=[
            "no-name",
            "blank-name",
            "long-name",
            "bad-email",
            "empty",
            "long-message",
            "number",
            "extra-field",
        ],
    )
    def test_invalid_messages_are_422_problems(
        self, function: ModuleType, mailbox: Mailbox, kv: KVNamespace, body: dict[str, Any], field: str
    ) -> None:
        response = post(function, body)

        assert response["statusCode"] == 422
        assert response["headers"]["Content-Type"] == "application/problem+json"
        problem = json_body(response)
        assert problem["status"] == 422
        assert field in {error["field"] for error in problem["errors"]}
        assert stored(kv) == []
        assert mailbox.received() == []

    def test_a_body_that_is_not_json_is_422(self, function: ModuleType) -> None:
        response = post(function, "name=Ada&email=ada@example.org")

        assert response["statusCode"] == 422

    def test_a_5000_character_message_is_accepted(self, function: ModuleType) -> None:
        assert post(function, {**MESSAGE, "message": "é" * 5000})["statusCode"] == 202

    def test_a_failed_notification_keeps_the_message_and_is_counted(
        self, function: ModuleType, mailbox: Mailbox, kv: KVNamespace, capsys: pytest.CaptureFixture[str]
    ) -> None:
        with InjectedError(aws.client("sns"), "Publish", code="InternalError", status=500):
            response = post(function)
            background.drain(10)  # the notification is published after the response

        assert response["statusCode"] == 202
        assert [record["id"] for record in stored(kv)] == [json_body(response)["id"]]
        assert mailbox.received() == []
        assert "ContactNotifyFailed" in capsys.readouterr().out

    def test_a_store_failure_is_503_and_sends_nothing(
        self, function: ModuleType, mailbox: Mailbox, kv: KVNamespace
    ) -> None:
        # Every write fails: the limiter's counter (it fails open) and the message's.
        with InjectedError(
            aws.dynamodb(), "UpdateItem", code="ProvisionedThroughputExceededException", status=400
        ):
            response = post(function)

        assert response["statusCode"] == 503
        assert kv.list(prefix="contact:")["keys"] == []
        assert mailbox.received() == []

    def test_the_function_refuses_to_start_without_its_topic(
        self, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        configure(monkeypatch, CONTACT_TOPIC_ARN=None)

        with pytest.raises(RuntimeError, match="CONTACT_TOPIC_ARN"):
            load_function("contact")


class TestIdempotency:
    def test_a_retry_with_the_same_key_gets_the_first_answer_and_stores_once(
        self, function: ModuleType, mailbox: Mailbox, kv: KVNamespace
    ) -> None:
        key = str(uuid.uuid4())

        first, retry = post(function, key=key), post(function, key=key)

        assert first["statusCode"] == retry["statusCode"] == 202
        assert json_body(first) == json_body(retry)
        assert len(stored(kv)) == 1
        assert len(mailbox.received()) == 1

    def test_a_quoted_key_is_the_same_key(self, function: ModuleType, kv: KVNamespace) -> None:
        first, retry = post(function, key="order-7"), post(function, key='"order-7"')

        assert json_body(first) == json_body(retry)
        assert len(stored(kv)) == 1

    def test_the_same_key_with_another_message_is_422(self, function: ModuleType, kv: KVNamespace) -> None:
        post(function, key="k-1")

        response = post(function, {**MESSAGE, "message": "Something else"}, key="k-1")

        assert response["statusCode"] == 422
        assert "Idempotency-Key" in json_body(response)["detail"]
        assert len(stored(kv)) == 1

    def test_without_a_key_every_post_is_a_new_message(self, function: ModuleType, kv: KVNamespace) -> None:
        ids = {json_body(post(function))["id"] for _ in range(3)}

        assert len(ids) == 3
        assert len(stored(kv)) == 3

    @pytest.mark.parametrize("key", ["", "with space", "x" * 256, "naïve"])
    def test_a_malformed_key_is_400(self, function: ModuleType, kv: KVNamespace, key: str) -> None:
        response = post(function, key=key)

        assert response["statusCode"] == 400
        assert stored(kv) == []

    def test_idempotency_records_stay_out_of_the_namespace_and_expire_by_ttl(
        self, function: ModuleType, kv: KVNamespace, dynamodb: Any
    ) -> None:
        post(function, key="k-ttl")

        assert {entry["name"].split(":")[0] for entry in kv.list()["keys"]} == {"contact", "rate"}
        [record] = dynamodb.query(
            TableName=TABLE,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": IDEMPOTENCY_PARTITION}},
        )["Items"]
        assert record["status"]["S"] == "COMPLETED"
        assert abs(int(record["expires_at"]["N"]) - (time.time() + IDEMPOTENCY_TTL_S)) < 60

    @pytest.mark.usefixtures("serialized_moto")
    def test_concurrent_retries_store_and_send_once(
        self, dynamodb: Any, mailbox: Mailbox, kv: KVNamespace, clock: Clock
    ) -> None:
        persistence = DynamoDBPersistenceLayer(
            table_name=TABLE, boto3_client=dynamodb, **idempotency_layout(kv.namespace, "contact")
        )
        inbox = ContactInbox(
            kv,
            mailbox.topic_arn,
            sns=boto3.client("sns", region_name="us-east-1"),
            idempotency=persistence,
            clock=clock,
        )
        message = ContactMessage.model_validate(MESSAGE)
        barrier = threading.Barrier(8)

        def send(_: int) -> str:
            barrier.wait()
            try:
                return inbox.accept(message, key="same-key", context=FakeContext())["id"]
            except ArcturusError as error:
                problem = problem_for(error)
                return str(problem.status if problem else error)

        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(send, range(8)))

        ids = {answer for answer in answers if answer != "409"}
        assert len(ids) == 1
        assert len(stored(kv)) == 1
        assert len(mailbox.received()) == 1


class TestRateLimit:
    @pytest.mark.usefixtures("fresh_rate_window")
    def test_the_sixth_post_in_a_minute_is_429_and_other_ips_are_unaffected(
        self, function: ModuleType, kv: KVNamespace
    ) -> None:
        answers = [post(function) for _ in range(6)]

        assert [a["statusCode"] for a in answers] == [202] * 5 + [429]
        assert answers[0]["headers"]["RateLimit-Policy"] == '"contact";q=5;w=60'
        assert answers[4]["headers"]["RateLimit"].startswith('"contact";r=0;')
        assert 1 <= int(answers[5]["headers"]["Retry-After"]) <= 60
        assert json_body(answers[5])["status"] == 429
        assert len(stored(kv)) == 5
        assert post(function, ip="198.51.100.8")["statusCode"] == 202

    def test_invalid_posts_do_not_use_the_quota(self, function: ModuleType) -> None:
        for _ in range(10):
            assert post(function, {"name": "Ada"})["statusCode"] == 422

        assert [post(function)["statusCode"] for _ in range(5)] == [202] * 5

    def test_the_429_is_logged_as_a_metric(
        self, function: ModuleType, capsys: pytest.CaptureFixture[str]
    ) -> None:
        for _ in range(5):
            post(function)
        capsys.readouterr()

        post(function)

        emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
        assert any(line.get("RateLimited") == [1.0] or line.get("RateLimited") == 1.0 for line in emitted)

"""POST /api/public/chat: sessions in KV with a renewed 24 h TTL, bounded history, the models, the limit."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.exceptions import ReadTimeoutError
from botocore.stub import Stubber

from arcturus.chat import (
    MAX_HISTORY_BYTES,
    MAX_HISTORY_TURNS,
    MAX_REPLY_TOKENS,
    SESSION_TTL_S,
    SYSTEM_PROMPT,
    BedrockModel,
    LocalEchoModel,
    PublicChat,
    Turn,
    bounded,
    model_from_env,
)
from arcturus.errors import ArcturusError
from arcturus.kv import KVNamespace
from arcturus.observability import metrics
from arcturus.web.answers import problem_for
from tests.conftest import Clock
from tests.unit.support import Mailbox, cold_start, configure, http_event, invoke, json_body, load_function


@pytest.fixture
def function(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    configure(monkeypatch, CHAT_PROVIDER="local")
    cold_start()
    yield load_function("chat")
    cold_start()


@pytest.fixture
def chat(kv: KVNamespace, clock: Clock) -> PublicChat:
    return PublicChat(kv, LocalEchoModel(), clock=clock)


class RecordingModel:
    """A model double (the model is an outside service): remembers the history it was shown."""

    name = "recording"

    def __init__(self) -> None:
        self.histories: list[list[Turn]] = []

    def reply(self, history: Sequence[Turn], message: str) -> str:
        self.histories.append(list(history))
        return f"reply to {message[:20]}"


def send(function: ModuleType, body: Any, *, ip: str = "198.51.100.7") -> dict[str, Any]:
    return invoke(function, http_event("POST", "/api/public/chat", body=body, source_ip=ip))


class TestRoute:
    def test_a_first_message_opens_a_session_kept_for_24_hours(
        self, function: ModuleType, kv: KVNamespace
    ) -> None:
        response = send(function, {"message": "Hello there"})

        assert response["statusCode"] == 200
        body = json_body(response)
        session_id = body["sessionId"]
        assert str(uuid.UUID(session_id)) == session_id
        assert body["reply"] == "[local echo model] Message 1 of this conversation: Hello there"
        expirations = {
            entry["name"]: entry["expiration"] for entry in kv.list()["keys"] if "rate:" not in entry["name"]
        }
        assert set(expirations) == {f"ai:conversation:{session_id}", f"session:{session_id}"}
        for expiration in expirations.values():
            assert abs(expiration - (time.time() + SESSION_TTL_S)) < 5
        conversation = kv.get(f"ai:conversation:{session_id}", type="json")
        assert conversation["turns"] == [
            {"role": "user", "text": "Hello there"},
            {"role": "assistant", "text": body["reply"]},
        ]
        session = kv.get(f"session:{session_id}", type="json")
        assert session["id"] == session_id
        assert session["turns"] == 2
        assert session["model"] == "local-echo"

    def test_the_session_carries_the_conversation_on(self, function: ModuleType, kv: KVNamespace) -> None:
        session_id = json_body(send(function, {"message": "one"}))["sessionId"]

        response = send(function, {"message": "two", "sessionId": session_id})

        assert json_body(response) == {
            "sessionId": session_id,
            "reply": "[local echo model] Message 2 of this conversation: two",
        }
        assert len(kv.get(f"ai:conversation:{session_id}", type="json")["turns"]) == 4

    def test_an_unknown_session_is_404(self, function: ModuleType) -> None:
        response = send(function, {"message": "hi", "sessionId": str(uuid.uuid4())})

        assert response["statusCode"] == 404
        assert response["headers"]["Content-Type"] == "application/problem+json"

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"message": "hi", "sessionId": "not-a-uuid"}, "sessionId"),
            ({"message": "hi", "sessionId": "0123456789abcdef0123456789abcdef"}, "sessionId"),
            ({"message": "hi", "sessionId": 42}, "sessionId"),
            ({"message": "x" * 4001}, "message"),
            ({"message": "   "}, "message"),
            ({"sessionId": str(uuid.uuid4())}, "message"),
            ({"message": "hi", "model": "gpt"}, "model"),
        ],
        ids=["not-uuid", "uuid-without-dashes", "number", "4001-chars", "blank", "no-message", "extra-field"],
    )
    def test_invalid_requests_are_422(
        self, function: ModuleType, kv: KVNamespace, body: dict[str, Any], field: str
    ) -> None:
        response = send(function, body)

        assert response["statusCode"] == 422
        assert field in {error["field"] for error in json_body(response)["errors"]}
        assert kv.list(prefix="session:")["keys"] == []

    def test_a_4000_character_message_is_accepted(self, function: ModuleType) -> None:
        assert send(function, {"message": "ß" * 4000})["statusCode"] == 200

    @pytest.mark.usefixtures("fresh_rate_window")
    def test_the_eleventh_message_in_a_minute_is_429(self, function: ModuleType) -> None:
        answers = [send(function, {"message": f"m{n}"}) for n in range(11)]

        assert [a["statusCode"] for a in answers] == [200] * 10 + [429]
        assert answers[0]["headers"]["RateLimit-Policy"] == '"chat";q=10;w=60'
        assert "Retry-After" in answers[10]["headers"]
        assert send(function, {"message": "hi"}, ip="198.51.100.8")["statusCode"] == 200

    def test_chat_and_contact_are_counted_apart(
        self, function: ModuleType, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        mailbox = Mailbox(
            boto3.client("sns", region_name="us-east-1"),
            boto3.client("sqs", region_name="us-east-1"),
            "contact",
        )
        configure(monkeypatch, CONTACT_TOPIC_ARN=mailbox.topic_arn)
        contact = load_function("contact")
        message = {"name": "Ada", "email": "ada@example.org", "message": "hi"}
        contact_event = http_event("POST", "/api/contact", body=message)

        assert [invoke(contact, contact_event)["statusCode"] for _ in range(6)] == [202] * 5 + [429]
        assert [send(function, {"message": "hi"})["statusCode"] for _ in range(10)] == [200] * 10


class TestSessions:
    def test_a_session_ends_24_hours_after_its_last_message(self, chat: PublicChat, clock: Clock) -> None:
        session_id = chat.answer("hello")["sessionId"]
        clock.advance(SESSION_TTL_S + 1)

        with pytest.raises(ArcturusError) as caught:
            chat.answer("still there?", session_id)

        assert answer(caught.value).status == 404

    def test_each_message_renews_the_session(self, chat: PublicChat, clock: Clock, kv: KVNamespace) -> None:
        session_id = chat.answer("hello")["sessionId"]
        for _ in range(3):
            clock.advance(SESSION_TTL_S - 3600)
            chat.answer("still here", session_id)

        [session] = [e for e in kv.list(prefix="session:")["keys"]]
        assert session["expiration"] == int(clock()) + SESSION_TTL_S
        assert chat.answer("last one", session_id)["reply"].startswith("[local echo model] Message 5 ")

    def test_session_ids_are_case_insensitive(self, chat: PublicChat) -> None:
        session_id = chat.answer("hello")["sessionId"]

        assert chat.answer("again", session_id.upper())["sessionId"] == session_id

    def test_two_messages_at_once_on_one_session_lose_nothing(self, kv: KVNamespace, clock: Clock) -> None:
        other = PublicChat(kv, LocalEchoModel(), clock=clock)

        class InterruptedModel(RecordingModel):
            """While this reply is being written, another message on the same session is answered."""

            def reply(self, history: Sequence[Turn], message: str) -> str:
                if len(history) == 2:
                    other.answer("sent from another tab", session_id)
                return super().reply(history, message)

        chat = PublicChat(kv, InterruptedModel(), clock=clock)
        session_id = chat.answer("first")["sessionId"]

        with pytest.raises(ArcturusError) as caught:
            chat.answer("second", session_id)

        assert answer(caught.value).status == 409
        turns = kv.get(f"ai:conversation:{session_id}", type="json")["turns"]
        assert [t["text"] for t in turns if t["role"] == "user"] == ["first", "sent from another tab"]


class TestBounds:
    def test_history_keeps_the_last_exchanges_within_the_turn_bound(
        self, kv: KVNamespace, clock: Clock
    ) -> None:
        model = RecordingModel()
        chat = PublicChat(kv, model, clock=clock)
        session_id = chat.answer("message 0")["sessionId"]
        for n in range(1, 30):
            chat.answer(f"message {n}", session_id)

        assert max(len(history) for history in model.histories) == MAX_HISTORY_TURNS
        turns = kv.get(f"ai:conversation:{session_id}", type="json")["turns"]
        assert len(turns) == MAX_HISTORY_TURNS
        assert turns[0] == {"role": "user", "text": "message 20"}
        assert turns[-1] == {"role": "assistant", "text": "reply to message 29"}

    def test_history_stays_within_the_byte_bound(self, kv: KVNamespace, clock: Clock) -> None:
        chat = PublicChat(kv, LocalEchoModel(), clock=clock)
        session_id = chat.answer("x" * 3000)["sessionId"]
        for _ in range(10):
            chat.answer("y" * 3000, session_id)

        turns = kv.get(f"ai:conversation:{session_id}", type="json")["turns"]
        assert len(json.dumps(turns).encode()) <= MAX_HISTORY_BYTES
        assert [t["role"] for t in turns[:2]] == ["user", "assistant"]
        assert len(turns) < MAX_HISTORY_TURNS

    def test_the_latest_exchange_is_kept_whatever_its_size(self) -> None:
        message, reply = "🙂" * 4000, "🙂" * 5000  # 16,000 and 20,000 bytes of UTF-8
        history = [Turn("user", "hi"), Turn("assistant", "hello")]

        kept = bounded([*history, Turn("user", message), Turn("assistant", reply)])

        assert kept == [Turn("user", message), Turn("assistant", reply)]

    def test_a_short_history_is_kept_whole(self) -> None:
        history = [Turn("user", "a"), Turn("assistant", "b"), Turn("user", "c"), Turn("assistant", "d")]

        assert bounded(history) == history


class TestModels:
    @pytest.fixture
    def bedrock(self, aws_env: None) -> Iterator[tuple[BedrockModel, Stubber]]:
        client = boto3.client("bedrock-runtime", region_name="us-east-1")
        with Stubber(client) as stubber:
            yield BedrockModel("anthropic.claude-3-haiku-20240307-v1:0", client=client), stubber

    def test_bedrock_gets_the_conversation_and_the_system_prompt(
        self, bedrock: tuple[BedrockModel, Stubber]
    ) -> None:
        model, stubber = bedrock
        stubber.add_response(
            "converse",
            {
                "output": {
                    "message": {
                        "role": "assistant",
                        "content": [{"text": "It is a "}, {"text": "dashboard."}],
                    }
                },
                "stopReason": "end_turn",
                "usage": {"inputTokens": 30, "outputTokens": 5, "totalTokens": 35},
                "metrics": {"latencyMs": 120},
            },
            {
                "modelId": "anthropic.claude-3-haiku-20240307-v1:0",
                "system": [{"text": SYSTEM_PROMPT}],
                "messages": [
                    {"role": "user", "content": [{"text": "hi"}]},
                    {"role": "assistant", "content": [{"text": "hello"}]},
                    {"role": "user", "content": [{"text": "What is Arcturus-Prime?"}]},
                ],
                "inferenceConfig": {"maxTokens": MAX_REPLY_TOKENS, "temperature": 0.3},
            },
        )

        reply = model.reply([Turn("user", "hi"), Turn("assistant", "hello")], "What is Arcturus-Prime?")

        assert reply == "It is a dashboard."
        stubber.assert_no_pending_responses()

    @pytest.mark.parametrize(
        ("code", "status"),
        [("ThrottlingException", 503), ("ServiceUnavailableException", 503), ("AccessDeniedException", 502)],
    )
    def test_bedrock_failures_are_problems(
        self, bedrock: tuple[BedrockModel, Stubber], code: str, status: int
    ) -> None:
        model, stubber = bedrock
        stubber.add_client_error("converse", service_error_code=code, http_status_code=400)

        with pytest.raises(ArcturusError) as caught:
            model.reply([], "hi")

        assert answer(caught.value).status == status
        assert metrics.metric_set["ChatModelFailed"]["Value"] == [1.0]

    def test_a_bedrock_timeout_is_503(self, aws_env: None) -> None:
        client = boto3.client("bedrock-runtime", region_name="us-east-1")

        def time_out(**_: Any) -> None:
            raise ReadTimeoutError(endpoint_url="https://bedrock-runtime.invalid")

        client.meta.events.register("before-call.bedrock-runtime.Converse", time_out)

        with pytest.raises(ArcturusError) as caught:
            BedrockModel("some-model", client=client).reply([], "hi")

        assert answer(caught.value).status == 503
        assert answer(caught.value).headers["Retry-After"] == "5"

    def test_the_local_model_is_deterministic(self) -> None:
        history = [Turn("user", "a"), Turn("assistant", "b")]

        assert LocalEchoModel().reply(history, "c") == LocalEchoModel().reply(history, "c")
        assert LocalEchoModel().reply(history, "c") == "[local echo model] Message 2 of this conversation: c"

    def test_the_provider_is_chosen_by_configuration(
        self, aws_env: None, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        configure(monkeypatch, CHAT_PROVIDER="local")
        assert isinstance(model_from_env(), LocalEchoModel)

        configure(monkeypatch, CHAT_PROVIDER="bedrock")
        configure(monkeypatch, CHAT_MODEL_ID="anthropic.claude-3-haiku-20240307-v1:0")
        model = model_from_env()
        assert isinstance(model, BedrockModel)
        assert model.name == "anthropic.claude-3-haiku-20240307-v1:0"

    @pytest.mark.parametrize(
        ("provider", "model_id", "complaint"),
        [("bedrock", "", "CHAT_MODEL_ID"), ("openai", "gpt", "CHAT_PROVIDER")],
    )
    def test_a_wrong_configuration_fails_at_init(
        self, aws_env: None, monkeypatch: pytest.MonkeyPatch, provider: str, model_id: str, complaint: str
    ) -> None:
        configure(monkeypatch, CHAT_PROVIDER=provider)
        configure(monkeypatch, CHAT_MODEL_ID=model_id)

        with pytest.raises(RuntimeError, match=complaint):
            model_from_env()


def answer(error: ArcturusError) -> Any:
    """The HTTP answer the web adapter gives ``error`` (it has one)."""
    problem = problem_for(error)
    assert problem is not None, error
    return problem

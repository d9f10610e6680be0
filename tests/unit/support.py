"""Builders for in-process handler tests: HTTP API v2.0 events, a Lambda context, a function loader.

A function's ``app.py`` is loaded by path under a fresh module name, so each test gets its own init
(the same thing a cold start does) and no two functions' ``app`` modules collide.
"""

from __future__ import annotations

import base64
import collections
import importlib.util
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any
from urllib.parse import urlencode

import pytest
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError, ReadTimeoutError

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "functions"
_loads = itertools.count()


class FakeContext:
    """The attributes of a Lambda context that Powertools and our handlers read."""

    def __init__(self, function_name: str = "test-function", timeout_s: float = 30.0) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 256
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "test"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def http_event(
    method: str,
    path: str,
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    claims: dict[str, Any] | None = None,
    source_ip: str = "198.51.100.7",
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event as the service sends it to a function.

    ``body`` that is not str/bytes is sent as JSON (with a JSON content type unless one is given);
    bytes are base64-encoded as API Gateway does for binary bodies. ``claims`` become the JWT
    authorizer's claims (``requestContext.authorizer.jwt.claims``); None means an unauthenticated route.
    Header names are lower-cased, as the HTTP API delivers them.
    """
    sent_headers = {name.lower(): value for name, value in (headers or {}).items()}
    encoded = False
    raw_body: str | None
    if body is None:
        raw_body = None
    elif isinstance(body, bytes):
        raw_body, encoded = base64.b64encode(body).decode("ascii"), True
    elif isinstance(body, str):
        raw_body = body
    else:
        raw_body = json.dumps(body)
        sent_headers.setdefault("content-type", "application/json")
    sent_headers.setdefault("host", "api.example.test")
    sent_headers.setdefault("user-agent", "pytest")
    now = time.time()
    request_context: dict[str, Any] = {
        "accountId": "123456789012",
        "apiId": "api1234567",
        "domainName": "api.example.test",
        "domainPrefix": "api",
        "http": {
            "method": method.upper(),
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": source_ip,
            "userAgent": sent_headers["user-agent"],
        },
        "requestId": f"req-{uuid.uuid4()}",
        "routeKey": f"{method.upper()} {path}",
        "stage": "$default",
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
        "timeEpoch": int(now * 1000),
    }
    if claims is not None:
        request_context["authorizer"] = {"jwt": {"claims": dict(claims), "scopes": None}}
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": request_context["routeKey"],
        "rawPath": path,
        "rawQueryString": urlencode(query or {}),
        "headers": sent_headers,
        "requestContext": request_context,
        "isBase64Encoded": encoded,
    }
    if query:
        event["queryStringParameters"] = dict(query)
    if raw_body is not None:
        event["body"] = raw_body
    return event


def claims_for(email: str) -> dict[str, Any]:
    """JWT claims as an OIDC issuer puts them in an ID token for ``email``."""
    now = int(time.time())
    return {
        "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, email)),
        "email": email,
        "email_verified": "true",
        "iss": "https://issuer.example.test",
        "aud": "arcturus-test",
        "iat": str(now),
        "exp": str(now + 3600),
    }


def load_function(directory: str) -> ModuleType:
    """Import ``functions/<directory>/app.py`` as a new module (a cold start: its init runs again)."""
    path = FUNCTIONS / directory / "app.py"
    name = f"function_{directory}_{next(_loads)}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def invoke(module: ModuleType, event: dict[str, Any]) -> dict[str, Any]:
    """Call the module's ``handler`` as Lambda would and return its HTTP API response."""
    result: dict[str, Any] = module.handler(event, FakeContext(module.__name__))
    return result


def json_body(response: dict[str, Any]) -> Any:
    """The response body decoded from JSON (base64 first when the resolver encoded it)."""
    body = response.get("body") or ""
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode("utf-8")
    return json.loads(body)


# -- the roles document --------------------------------------------------------------------------------

ADMIN = "admin@example.com"
MEMBER = "member@example.com"
DEMO = "demo@example.com"


def roles_document(*extra_users: str, extra_role: str = "member") -> dict[str, Any]:
    """A valid roles document: the three roles of the original design, one user of each, plus
    ``extra_users`` (each with ``extra_role`` and one default profile)."""

    def user(email: str, role: str, name: str, grants: list[str]) -> dict[str, Any]:
        return {
            "email": email,
            "role": role,
            "displayName": name,
            "services": grants,
            "features": grants,
            "sites": grants,
            "dashboardProfiles": [
                {"id": "default", "name": "Overview", "widgets": ["system-health", "storage"]}
            ],
        }

    users = {
        ADMIN: user(ADMIN, "admin", "Commander", ["*"]),
        MEMBER: user(MEMBER, "member", "Member", ["git", "grafana"]),
        DEMO: user(DEMO, "demo", "Demo", []),
    }
    users |= {email: user(email, extra_role, email.partition("@")[0], []) for email in extra_users}
    return {
        "users": users,
        "roles": {
            "admin": {"permissions": ["*"], "description": "Full access to all features and services"},
            "member": {
                "permissions": ["view:dashboard", "use:chat", "view:status"],
                "description": "Limited access to specific features",
            },
            "demo": {"permissions": ["view:dashboard", "view:status"], "description": "Read-only tour"},
        },
    }


def provision(document: dict[str, Any] | None = None) -> str:
    """Store ``document`` (default: ``roles_document()``) as ``data:user-roles`` in the configured KV
    namespace and drop the container's roles store, as a new deployment would. Returns the version.

    Call inside ``aws_env`` with the table created (the ``dynamodb`` fixture).
    """
    from arcturus.kv import KVNamespace
    from arcturus.roles import ROLES_KEY, roles_store

    version = KVNamespace.from_env().put_if_version(ROLES_KEY, json.dumps(document or roles_document()), None)
    roles_store.cache_clear()
    return version


class DynamoDBCalls:
    """Counts the requests a boto3 DynamoDB client sends, by operation (a botocore event hook).

    Use as a context manager so the hook comes off the (often process-wide) client afterwards.
    """

    READS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})

    def __init__(self, client: Any) -> None:
        self.operations: list[str] = []
        self._events = client.meta.events
        self._events.register("before-call.dynamodb", self._count)

    def __enter__(self) -> DynamoDBCalls:
        return self

    def __exit__(self, *_: object) -> None:
        self._events.unregister("before-call.dynamodb", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.operations.append(model.name)

    @property
    def reads(self) -> int:
        return sum(1 for name in self.operations if name in self.READS)

    def reset(self) -> None:
        self.operations.clear()


class InjectedError:
    """Makes one operation of a boto3 client fail before anything is sent (faking AWS, not our code).

    ``InjectedError(client, "UpdateItem", code="ProvisionedThroughputExceededException")`` answers with
    that service error; ``raises=`` raises the given botocore exception instead (a transport failure).
    A context manager, so the hook comes off the client afterwards; ``calls`` counts the attempts.
    """

    def __init__(
        self,
        client: Any,
        operation: str,
        *,
        code: str = "InternalServerError",
        status: int = 500,
        raises: Exception | None = None,
    ) -> None:
        self.calls = 0
        self._code, self._status, self._raises = code, status, raises
        self._event = f"before-call.{client.meta.service_model.service_id.hyphenize()}.{operation}"
        self._events = client.meta.events
        self._events.register_first(self._event, self._fail)

    def __enter__(self) -> InjectedError:
        return self

    def __exit__(self, *_: object) -> None:
        self._events.unregister(self._event, self._fail)

    def _fail(self, **_: Any) -> tuple[Any, dict[str, Any]]:
        from botocore.awsrequest import AWSResponse

        self.calls += 1
        if self._raises is not None:
            raise self._raises
        error = {"Code": self._code, "Message": "injected by the test"}
        return AWSResponse("https://aws.invalid", self._status, {}, None), {
            "Error": error,
            "ResponseMetadata": {"HTTPStatusCode": self._status},
        }


def cold_start() -> None:
    """Forget everything the container keeps, as a new container would start."""
    from arcturus import container

    container.reset()


def configure(monkeypatch: pytest.MonkeyPatch, **variables: str | None) -> None:
    """Give the function these environment variables (None: unset) in a new container: Lambda never
    changes a running container's environment, and the settings are read once per container."""
    for name, value in variables.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    cold_start()


class Mailbox:
    """An SQS queue subscribed to an SNS topic on moto: what the topic's subscribers receive."""

    def __init__(self, sns: Any, sqs: Any, name: str) -> None:
        self.topic_arn: str = sns.create_topic(Name=name)["TopicArn"]
        self._sqs = sqs
        self._queue_url: str = sqs.create_queue(QueueName=f"{name}-inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=["QueueArn"])
        sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"])

    def received(self) -> list[dict[str, Any]]:
        """The SNS notifications delivered so far (each has Subject and Message), oldest first, once the
        post-response work queued until now (the contact form publishes there) is done."""
        from arcturus import background

        background.drain(10)
        notifications = []
        while True:
            answer = self._sqs.receive_message(QueueUrl=self._queue_url, MaxNumberOfMessages=10)
            batch = answer.get("Messages", [])
            if not batch:
                return notifications
            for message in batch:
                notifications.append(json.loads(message["Body"]))
                self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])


# -- AWS failing on the wire ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """How one request fails: an error answer (``code``, ``status``) or a transport exception
    (``raises``, built from the request's URL). ``lands`` lets the request reach moto first, so the
    write happens and only its answer is lost (a timeout after DynamoDB committed)."""

    name: str
    code: str = ""
    status: int = 0
    raises: Callable[[str], Exception] | None = None
    lands: bool = False


THROTTLED = Fault("throttled", code="ProvisionedThroughputExceededException", status=400)
SERVER_ERROR = Fault("5xx", code="InternalServerError", status=500)
TIMEOUT = Fault("timeout", raises=lambda url: ReadTimeoutError(endpoint_url=url, error="injected"))
RESET = Fault("reset", raises=lambda url: ConnectionClosedError(endpoint_url=url))
UNREACHABLE = Fault("unreachable", raises=lambda url: EndpointConnectionError(endpoint_url=url))
ANSWER_LOST = Fault(
    "answer lost", raises=lambda url: ReadTimeoutError(endpoint_url=url, error="injected"), lands=True
)
STORE_FAULTS = (THROTTLED, SERVER_ERROR, TIMEOUT, RESET, UNREACHABLE)
"""What a DynamoDB outage looks like from a client: each is retried by botocore, then given up on."""


@dataclass
class _Plan:
    operation: str | None
    fault: Fault
    times: int | None
    after: int
    key_prefix: str | None = None


class FailingAWS:
    """Faults between a boto3 client and moto, where the network would be (faking AWS, not our code).

    ``fail(operation, fault, times=N, after=M)`` lets M requests of ``operation`` (every operation when
    None) through, then makes the next N fail with ``fault`` (all of them when ``times`` is None); the
    others reach moto. A refused request never reaches moto, so a throttled write does not land.
    Unlike ``InjectedError`` (a before-call hook, which skips the client's retries), each failed
    request goes through botocore's retry handler as a real one would. While the context is active,
    botocore's backoff sleeps (any client's) are recorded in ``sleeps`` instead of slept, so retries
    take no time. ``attempts`` counts the requests each operation sent, ``failed`` the ones that
    failed. On exit the client talks to moto directly again.
    """

    def __init__(self, client: Any) -> None:
        from moto.core.models import botocore_stubber

        self.attempts: collections.Counter[str] = collections.Counter()
        self.failed: collections.Counter[str] = collections.Counter()
        self.sleeps: list[float] = []
        self._events = client.meta.events
        self._protocol: str = client.meta.service_model.protocol
        self._moto = botocore_stubber
        self._plans: list[_Plan] = []
        self._lock = threading.Lock()
        self._saved_time: Any = None

    def fail(
        self,
        operation: str | None,
        fault: Fault,
        *,
        times: int | None = None,
        after: int = 0,
        key_prefix: str | None = None,
    ) -> FailingAWS:
        """See the class; ``key_prefix`` narrows the plan to requests on items whose sort key (the KV
        key) starts with it, e.g. ``rate:`` for the limiter's counters (an UpdateItem like any write)."""
        with self._lock:
            self._plans.append(_Plan(operation, fault, times, after, key_prefix))
        return self

    def heal(self) -> None:
        """Every request reaches moto again (the outage is over)."""
        with self._lock:
            self._plans.clear()

    def __enter__(self) -> FailingAWS:
        import botocore.endpoint

        self._events.unregister("before-send", self._moto)
        self._events.register("before-send", self._send)
        self._saved_time = botocore.endpoint.time
        botocore.endpoint.time = SimpleNamespace(sleep=self.sleeps.append)  # type: ignore[attr-defined]
        return self

    def __exit__(self, *_: object) -> None:
        import botocore.endpoint

        botocore.endpoint.time = self._saved_time  # type: ignore[attr-defined]
        self._events.unregister("before-send", self._send)
        self._events.register("before-send", self._moto)

    def _fault_for(self, operation: str, sort_key: str) -> Fault | None:
        with self._lock:
            self.attempts[operation] += 1
            for plan in self._plans:
                if plan.operation not in (None, operation) or plan.times == 0:
                    continue
                if plan.key_prefix is not None and not sort_key.startswith(plan.key_prefix):
                    continue
                if plan.after:
                    plan.after -= 1
                    continue
                if plan.times is not None:
                    plan.times -= 1
                self.failed[operation] += 1
                return plan.fault
        return None

    def _send(self, event_name: str, request: Any, **kwargs: Any) -> Any:
        operation = event_name.rsplit(".", 1)[-1]
        fault = self._fault_for(operation, _sort_key(request.body))
        if fault is None:
            return self._moto(event_name, request, **kwargs)
        if fault.lands:
            self._moto(event_name, request, **kwargs)
        if fault.raises is not None:
            raise fault.raises(request.url)
        return self._error_answer(request.url, fault)

    def _error_answer(self, url: str, fault: Fault) -> Any:
        from botocore.awsrequest import AWSResponse
        from moto.core.botocore_stubber import MockRawResponse

        message = f"injected {fault.name}"
        if self._protocol == "query":
            body = (
                f"<ErrorResponse><Error><Type>Receiver</Type><Code>{fault.code}</Code>"
                f"<Message>{message}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
            )
            headers = {"Content-Type": "text/xml"}
        else:
            body = json.dumps({"__type": fault.code, "message": message})
            headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": str(uuid.uuid4())}
        return AWSResponse(url, fault.status, headers, MockRawResponse(body))


def _sort_key(body: bytes | str | None) -> str:
    """The ``sk`` a DynamoDB request names in ``Key`` or ``Item`` ("" for any other request)."""
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return ""
    target = request.get("Key") or request.get("Item") or {} if isinstance(request, dict) else {}
    return str(target.get("sk", {}).get("S", "")) if isinstance(target, dict) else ""


# -- every function at once ----------------------------------------------------------------------------

WARMUP_SECRET = "warmup-secret-for-tests"
CONTACT = {"name": "Ada Lovelace", "email": "ada@example.org", "message": "Hello from the contact form."}


@dataclass(frozen=True)
class Stack:
    """What template.yaml gives every function, on moto: the KV table with the roles document, the
    contact topic (read through ``mailbox``), the warmup secret, the sources, the local chat model."""

    mailbox: Mailbox
    roles_version: str


def stand_up_stack(
    monkeypatch: Any, sources: dict[str, Any], document: dict[str, Any] | None = None
) -> Stack:
    """Configure every function's environment (call inside ``aws_env`` with the table created) and start
    from a cold container. ``sources`` is the sources document (``SOURCES_CONFIG``)."""
    import boto3

    mailbox = Mailbox(
        boto3.client("sns", region_name="us-east-1"), boto3.client("sqs", region_name="us-east-1"), "contact"
    )
    secret = boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name=f"warmup-{uuid.uuid4().hex}", SecretString=WARMUP_SECRET
    )
    for name, value in {
        "CONTACT_TOPIC_ARN": mailbox.topic_arn,
        "CACHE_WARMUP_SECRET_ARN": secret["ARN"],
        "SOURCES_CONFIG": json.dumps(sources),
        "CHAT_PROVIDER": "local",
    }.items():
        monkeypatch.setenv(name, value)
    cold_start()
    return Stack(mailbox, provision(document))


def route_requests(roles_version: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """A well-formed request to every route, by name: ``(function directory, event)``. The roles PUT
    sends ``roles_version`` as its If-Match."""
    profiles = {"dashboardProfiles": [{"id": "mine", "name": "Mine", "widgets": ["storage"]}]}
    return {
        "GET /api/auth/me": ("auth_me", http_event("GET", "/api/auth/me", claims=claims_for(MEMBER))),
        "POST /api/auth/profile": (
            "auth_profile",
            http_event("POST", "/api/auth/profile", body=profiles, claims=claims_for(MEMBER)),
        ),
        "GET /api/auth/roles": ("auth_roles", http_event("GET", "/api/auth/roles", claims=claims_for(ADMIN))),
        "PUT /api/auth/roles": (
            "auth_roles",
            http_event(
                "PUT",
                "/api/auth/roles",
                body=roles_document("new@example.com"),
                headers={"If-Match": f'"{roles_version}"'},
                claims=claims_for(ADMIN),
            ),
        ),
        "POST /api/cache/warmup": (
            "cache_warmup",
            http_event("POST", "/api/cache/warmup", headers={"Authorization": f"Bearer {WARMUP_SECRET}"}),
        ),
        "GET /api/cache/status": (
            "cache_status",
            http_event("GET", "/api/cache/status", claims=claims_for(ADMIN)),
        ),
        "GET /api/status": ("status", http_event("GET", "/api/status", claims=claims_for(MEMBER))),
        "GET /api/services": ("services", http_event("GET", "/api/services", claims=claims_for(MEMBER))),
        "GET /api/dashboard": ("dashboard", http_event("GET", "/api/dashboard", claims=claims_for(MEMBER))),
        "POST /api/contact": ("contact", http_event("POST", "/api/contact", body=CONTACT)),
        "POST /api/public/chat": ("chat", http_event("POST", "/api/public/chat", body={"message": "Hello?"})),
    }

"""The embedded AWS endpoint: a moto server in this process, one request at a time, on loopback.

moto keeps no per-table lock, so two conditional writes racing in its threads can both succeed, which
DynamoDB never allows for one item. Serialising every request gives the per-item atomicity the KV code
relies on (compare-and-set, counters) at a throughput far beyond what a laptop asks of it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from local import endpoint

_DYNAMODB_WRITES = frozenset(
    {
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "TransactWriteItems",
        "ExecuteStatement",
        "BatchExecuteStatement",
        "ExecuteTransaction",
    }
)


class SerializedApp:
    """moto's WSGI application behind one lock, the whole response produced inside it.

    It also counts DynamoDB writes, so the snapshotter knows when the tables changed.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self._lock = threading.Lock()
        self.dynamodb_writes = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        with self._lock:
            response = self._app(environ, start_response)
            try:
                body = list(response)
            finally:
                close = getattr(response, "close", None)
                if close is not None:
                    close()
            if target.startswith("DynamoDB_") and target.rpartition(".")[2] in _DYNAMODB_WRITES:
                self.dynamodb_writes += 1
        return body


class _SerializedMotoServer:
    """moto's WSGI application (``SerializedApp`` around it) served by werkzeug on a thread of its own.

    Built from moto's and werkzeug's public pieces rather than by subclassing ``ThreadedMotoServer``,
    whose server loop is private: the loop here is werkzeug's ``serve_forever``.
    """

    def __init__(self, host: str, port: int) -> None:
        self.app = SerializedApp(DomainDispatcherApplication(create_backend_app))
        self._httpd = make_server(host, port, self.app, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="embedded aws", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def get_host_and_port(self) -> tuple[str, int]:
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)


class EmbeddedAWS:
    """moto on ``host:port`` (port 0 picks a free one); ``endpoint`` is what AWS_ENDPOINT_URL gets."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per AWS call drowns the API's
        self._server = _SerializedMotoServer(host, port)
        self.endpoint = ""

    def start(self) -> str:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"
        return self.endpoint

    def stop(self) -> None:
        self._server.stop()

    @property
    def dynamodb_writes(self) -> int:
        return self._server.app.dynamodb_writes

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` on this endpoint with the fake credentials."""
        return endpoint.client(service, self.endpoint)

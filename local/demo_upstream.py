"""A demo upstream for local runs: believable answers for every source, and faults on demand.

``start_demo_upstream()`` serves, on loopback:

- ``GET /health/<service>``: a health endpoint for each service of ``demo_sources_config``;
- ``GET /widgets/<widget>``: the JSON of each dashboard widget (host load, containers, pools, links),
  varying a little from call to call as live data does;
- ``POST /__demo/faults`` ``{"source": "<service id or widget>", "mode": "slow"|"fail"|"ok", "delayMs": N}``:
  make a source answer after ``delayMs`` (default 5000), answer 503, or behave again;
  ``GET /__demo/faults`` lists them; ``GET /__demo/calls`` counts the requests each source got;
  ``POST /__demo/reset`` clears faults and counts.

``python -m local serve`` starts it and points ``SOURCES_CONFIG`` at it; run alone with
``python -m local.demo_upstream [port]``.
"""

from __future__ import annotations

import collections
import contextlib
import json
import math
import random
import socket
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SERVICES: tuple[tuple[str, str], ...] = (
    ("gateway", "Edge Gateway"),
    ("git", "Gitea"),
    ("grafana", "Grafana"),
    ("media", "Jellyfin"),
    ("nas", "TrueNAS"),
)
WIDGETS: tuple[str, ...] = ("system-health", "docker-status", "storage", "network")
SERVICE_TIMEOUT_MS = 2000
WIDGET_TIMEOUT_MS = 3000
DEFAULT_SLOW_MS = 5000
MODES = ("ok", "slow", "fail")


@dataclass(frozen=True)
class Fault:
    mode: str
    delay_ms: int = 0


def demo_sources_config(base_url: str) -> dict[str, Any]:
    """The sources document (``SOURCES_CONFIG``) for a demo upstream at ``base_url``."""
    return {
        "services": [
            {"id": sid, "name": name, "url": f"{base_url}/health/{sid}", "timeoutMs": SERVICE_TIMEOUT_MS}
            for sid, name in SERVICES
        ],
        "widgets": {w: {"url": f"{base_url}/widgets/{w}", "timeoutMs": WIDGET_TIMEOUT_MS} for w in WIDGETS},
    }


class DemoUpstream:
    """What the server answers, the faults set on it, and the requests each source received."""

    def __init__(self, *, seed: int | None = None) -> None:
        self.faults: dict[str, Fault] = {}
        self.calls: collections.Counter[str] = collections.Counter()
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._random = random.Random(seed)  # noqa: S311 - demo figures, not secrets
        self._started = time.time()

    def sources(self) -> set[str]:
        return {sid for sid, _ in SERVICES} | set(WIDGETS)

    def set_fault(self, source: str, mode: str, delay_ms: int | None) -> None:
        if source not in self.sources():
            raise KeyError(source)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        with self._lock:
            if mode == "ok":
                self.faults.pop(source, None)
            else:
                self.faults[source] = Fault(mode, DEFAULT_SLOW_MS if delay_ms is None else delay_ms)

    def reset(self) -> None:
        with self._lock:
            self.faults.clear()
            self.calls.clear()

    def answer(self, source: str) -> tuple[int, Any]:
        """Count the call, apply the source's fault, then answer as the source would."""
        with self._lock:
            self.calls[source] += 1
            fault = self.faults.get(source)
        if fault is not None and fault.mode == "slow":
            self.stopping.wait(fault.delay_ms / 1000)
        if fault is not None and fault.mode == "fail":
            return 503, {"error": f"{source} is failing (demo fault)"}
        if source in WIDGETS:
            return 200, self._widget(source)
        return 200, {"status": "ok", "service": source, "uptimeSeconds": self._uptime(3 * 86_400)}

    # -- believable figures ------------------------------------------------------------------------

    def _uptime(self, base: int) -> int:
        return base + int(time.time() - self._started)

    def _wave(self, centre: float, swing: float, period_s: float = 600.0) -> float:
        """A slow daily-looking drift plus noise, so refreshes show live-looking numbers."""
        phase = 2 * math.pi * (time.time() % period_s) / period_s
        return round(max(0.0, centre + swing * math.sin(phase) + self._random.uniform(-swing, swing) / 4), 1)

    def _widget(self, widget: str) -> dict[str, Any]:
        now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        build = {
            "system-health": self._system_health,
            "docker-status": self._docker_status,
            "storage": self._storage,
            "network": self._network,
        }[widget]
        return build() | {"updatedAt": now}

    def _system_health(self) -> dict[str, Any]:
        hosts = [("atlas", "proxmox", 32, 64), ("hermes", "docker", 18, 48), ("vault", "truenas", 9, 71)]
        return {
            "hosts": [
                {
                    "name": name,
                    "role": role,
                    "cpuPercent": self._wave(cpu, 12),
                    "memoryPercent": self._wave(mem, 4),
                    "load": [self._wave(cpu / 25, 0.4), self._wave(cpu / 28, 0.3), self._wave(cpu / 30, 0.2)],
                    "temperatureC": self._wave(44 + cpu / 4, 3),
                    "uptimeSeconds": self._uptime(12 * 86_400 + index * 3_600),
                }
                for index, (name, role, cpu, mem) in enumerate(hosts)
            ]
        }

    def _docker_status(self) -> dict[str, Any]:
        containers = [
            ("traefik", "traefik:v3.1", "running"),
            ("gitea", "gitea/gitea:1.22", "running"),
            ("grafana", "grafana/grafana:11.2.0", "running"),
            ("prometheus", "prom/prometheus:v2.54.1", "running"),
            ("jellyfin", "jellyfin/jellyfin:10.9.11", "running"),
            ("backup-runner", "restic/restic:0.17.1", "exited"),
        ]
        listed = [
            {
                "name": name,
                "image": image,
                "state": state,
                "health": "healthy" if state == "running" else None,
                "cpuPercent": self._wave(3, 2) if state == "running" else 0.0,
                "memoryMb": self._wave(180 + 40 * index, 15) if state == "running" else 0.0,
                "uptimeSeconds": self._uptime(86_400 * (index + 1)) if state == "running" else 0,
            }
            for index, (name, image, state) in enumerate(containers)
        ]
        return {
            "containers": listed,
            "running": sum(c["state"] == "running" for c in listed),
            "stopped": sum(c["state"] != "running" for c in listed),
        }

    def _storage(self) -> dict[str, Any]:
        tib = 1024**4
        pools = [
            ("tank", "zfs", 24 * tib, 0.62),
            ("fast", "zfs", 2 * tib, 0.41),
            ("backup", "ext4", 8 * tib, 0.77),
        ]
        return {
            "pools": [
                {
                    "name": name,
                    "type": kind,
                    "health": "ONLINE",
                    "totalBytes": total,
                    "usedBytes": int(total * (used + self._random.uniform(0, 0.002))),
                }
                for name, kind, total, used in pools
            ]
        }

    def _network(self) -> dict[str, Any]:
        return {
            "interfaces": [
                {"name": "wan0", "rxMbps": self._wave(85, 40), "txMbps": self._wave(22, 10), "up": True},
                {"name": "lan0", "rxMbps": self._wave(310, 120), "txMbps": self._wave(290, 110), "up": True},
                {"name": "wg0", "rxMbps": self._wave(4, 3), "txMbps": self._wave(2, 1.5), "up": True},
            ],
            "wanLatencyMs": self._wave(14, 4),
            "packetLossPercent": self._wave(0.1, 0.1),
        }


class DemoServer(ThreadingHTTPServer):
    """The HTTP server; ``upstream`` holds its state (faults, call counts)."""

    daemon_threads = True
    block_on_close = False
    # The default backlog of 5 drops connections when every source is asked at once (a warmup run).
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], upstream: DemoUpstream) -> None:
        self.upstream = upstream
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients dropping pooled keep-alive connections are routine, not errors worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def shutdown(self) -> None:
        """Stop serving, and close kept-alive connections so no client keeps talking to a stopped server."""
        self.upstream.stopping.set()
        super().shutdown()
        self.server_close()
        with self._open_lock:
            for connection in self._open:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    server: DemoServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, the body waits for the client's delayed ACK
    # (about 40 ms on loopback) and every demo answer would look slow.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        upstream = self.server.upstream
        path = self.path.split("?", 1)[0]
        kind, _, name = path.strip("/").partition("/")
        if path == "/__demo/faults":
            self._send(200, {s: {"mode": f.mode, "delayMs": f.delay_ms} for s, f in upstream.faults.items()})
        elif path == "/__demo/calls":
            self._send(200, {"calls": dict(upstream.calls)})
        elif (kind == "health" and name in dict(SERVICES)) or (kind == "widgets" and name in WIDGETS):
            self._send(*upstream.answer(name))
        else:
            self._send(404, {"error": f"no demo source at {path}"})

    def do_POST(self) -> None:
        upstream = self.server.upstream
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path == "/__demo/reset":
            upstream.reset()
            self._send(200, {"reset": True})
            return
        if self.path != "/__demo/faults":
            self._send(404, {"error": f"nothing to post at {self.path}"})
            return
        try:
            body = json.loads(raw or b"{}")
            delay = body.get("delayMs")
            upstream.set_fault(
                str(body.get("source")), str(body.get("mode")), None if delay is None else int(delay)
            )
        except KeyError:
            self._send(404, {"error": f"unknown source; known: {', '.join(sorted(upstream.sources()))}"})
            return
        except (ValueError, TypeError, AttributeError) as error:
            self._send(400, {"error": str(error)})
            return
        self._send(200, {s: {"mode": f.mode, "delayMs": f.delay_ms} for s, f in upstream.faults.items()})

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def start_demo_upstream(port: int = 0, host: str = "127.0.0.1") -> tuple[DemoServer, str]:
    """Serve the demo upstream on a daemon thread; the server (``shutdown()`` stops it) and its URL."""
    server = DemoServer((host, port), DemoUpstream())
    threading.Thread(target=server.serve_forever, args=(0.05,), name="demo-upstream", daemon=True).start()
    return server, f"http://{host}:{server.server_address[1]}"


def main(argv: list[str]) -> None:
    server, base_url = start_demo_upstream(int(argv[0]) if argv else 0)
    print(f"demo upstream on {base_url}")
    print(f"SOURCES_CONFIG='{json.dumps(demo_sources_config(base_url))}'")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()


if __name__ == "__main__":
    main(sys.argv[1:])

"""Authenticated requests: DynamoDB requests and capacity per request, on a cold and a warm container.

Each function is loaded fresh (a cold start: its init runs and the roles memory tier is empty), called
once (cold), then again (warm). The roles document holds the three seeded users, then 300 more, to
show how the price of one read grows with the document while a warm container still reads it zero
times. Set-up (seeding, looking up the ETag a PUT sends) uses another client and is not counted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from arcturus.kv import KVNamespace
from arcturus.roles import ROLES_KEY, RolesStore, check_stored, roles_store
from bench.aws import TABLE, handler_output_discarded, kv_table
from bench.meter import DynamoMeter, function_clients
from tests.unit.support import ADMIN, MEMBER, claims_for, http_event, invoke, load_function, roles_document

PROFILE = {"dashboardProfiles": [{"id": "ops", "name": "Ops", "widgets": ["docker-status", "network"]}]}
EventBuilder = Callable[[], dict[str, Any]]


def _requests(setup: KVNamespace) -> list[tuple[str, str, EventBuilder]]:
    """(request, function directory, event builder) for every route of the auth functions."""

    def put_roles() -> dict[str, Any]:
        document, revision = RolesStore(setup).read_with_version()
        return http_event(
            "PUT",
            "/api/auth/roles",
            body=document,
            headers={"If-Match": f'"{revision}"'},
            claims=claims_for(ADMIN),
        )

    return [
        ("GET /api/auth/me", "auth_me", lambda: http_event("GET", "/api/auth/me", claims=claims_for(MEMBER))),
        (
            "GET /api/auth/me, unprovisioned (403)",
            "auth_me",
            lambda: http_event("GET", "/api/auth/me", claims=claims_for("stranger@example.com")),
        ),
        (
            "POST /api/auth/profile",
            "auth_profile",
            lambda: http_event("POST", "/api/auth/profile", body=PROFILE, claims=claims_for(MEMBER)),
        ),
        (
            "GET /api/auth/roles",
            "auth_roles",
            lambda: http_event("GET", "/api/auth/roles", claims=claims_for(ADMIN)),
        ),
        ("PUT /api/auth/roles", "auth_roles", put_roles),
    ]


def run() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with kv_table() as setup_client, handler_output_discarded():
        setup = KVNamespace(TABLE, client=setup_client)
        meter = DynamoMeter(*function_clients())  # the client the functions use
        for extra_users in (0, 300):
            document = roles_document(*(f"user{i:03}@example.com" for i in range(extra_users)))
            stored = check_stored(json.dumps(document))  # as the store writes it: sealed
            label = f"{len(document['users'])} users, {len(stored.text) / 1024:.1f} KiB"
            for request, directory, event in _requests(setup):
                setup.put(ROLES_KEY, stored.text, metadata=stored.metadata)
                roles_store.cache_clear()
                module = load_function(directory)
                for container in ("cold", "warm"):
                    sent = event()
                    meter.reset()
                    status = invoke(module, sent)["statusCode"]
                    rows.append(
                        {
                            "request": request,
                            "container": container,
                            "roles document": label,
                            "status": status,
                            "reads": meter.total - meter.writes,
                            "writes": meter.writes,
                            "operations": " ".join(f"{op}x{n}" for op, n in sorted(meter.requests.items())),
                            "RCU": round(meter.rcu, 1),
                            "WCU": round(meter.wcu, 1),
                        }
                    )
    return rows

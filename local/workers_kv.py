"""``kv bulk get --from-workers NAMESPACE_ID``: a live Workers KV namespace as a bulk file.

Through Cloudflare's REST API, as wrangler reaches it: the keys listed 1,000 at a time (with their
expiration and metadata), then each value, a few requests at once. The token and account come from
``CLOUDFLARE_API_TOKEN`` and ``CLOUDFLARE_ACCOUNT_ID`` (``--account-id`` wins), the names wrangler
reads; ``CLOUDFLARE_API_BASE_URL`` points it elsewhere. A 429 is waited out (``Retry-After``), since
the API allows a user about 1,200 requests per five minutes.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from local import LocalError

API = "https://api.cloudflare.com/client/v4"
WORKERS = 4
ATTEMPTS = 8
TIMEOUT_S = 60.0

Listed = dict[str, Any]
"""A key as the API lists it: ``name``, ``expiration``?, ``metadata``?."""


class WorkersApi:
    """One namespace of one account, read with a bearer token."""

    def __init__(
        self,
        account: str,
        namespace: str,
        token: str,
        *,
        base: str = API,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        quoted = urllib.parse.quote
        self._root = (
            f"{base.rstrip('/')}/accounts/{quoted(account)}/storage/kv/namespaces/{quoted(namespace)}"
        )
        self._token = token
        self._sleep = sleep

    @classmethod
    def from_env(cls, namespace: str, account: str | None) -> WorkersApi:
        token = os.environ.get("CLOUDFLARE_API_TOKEN")
        account = account or os.environ.get("CLOUDFLARE_ACCOUNT_ID")
        if not token or not account:
            raise LocalError("--from-workers needs CLOUDFLARE_API_TOKEN and an account (--account-id)")
        return cls(account, namespace, token, base=os.environ.get("CLOUDFLARE_API_BASE_URL") or API)

    def keys(self, prefix: str = "") -> list[Listed]:
        listed: list[Listed] = []
        cursor = ""
        while True:
            query = (
                {"limit": "1000"}
                | ({"prefix": prefix} if prefix else {})
                | ({"cursor": cursor} if cursor else {})
            )
            page = json.loads(self._get(f"/keys?{urllib.parse.urlencode(query)}") or b"{}")
            if not page.get("success"):
                raise LocalError(f"listing the namespace failed: {page.get('errors')}")
            listed += page["result"]
            cursor = (page.get("result_info") or {}).get("cursor") or ""
            if not cursor:
                return listed

    def value(self, name: str) -> bytes | None:
        """The value's bytes; None when the key was deleted since it was listed."""
        return self._get(f"/values/{urllib.parse.quote(name, safe='')}")

    def values(self, names: list[str]) -> list[bytes | None]:
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            return list(pool.map(self.value, names))

    def _get(self, path: str) -> bytes | None:
        request = urllib.request.Request(  # noqa: S310 - the API's https URL (or the one configured)
            self._root + path, headers={"Authorization": f"Bearer {self._token}"}
        )
        for attempt in range(ATTEMPTS):
            try:
                with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310
                    return bytes(response.read())
            except urllib.error.HTTPError as error:
                if error.code == 404:
                    return None
                if error.code != 429 and error.code < 500:
                    raise LocalError(
                        f"Cloudflare's API answered {error.code} for {path}: {error.read()[:300]!r}"
                    ) from error
                wait = error.headers.get("Retry-After")
                self._sleep(float(wait) if wait and wait.isdigit() else min(30.0, 2.0**attempt))
            except urllib.error.URLError as error:
                raise LocalError(f"Cloudflare's API is unreachable: {error.reason}") from error
        raise LocalError(f"Cloudflare's API kept refusing {path} (rate limited or failing)")

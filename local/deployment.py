"""template.yaml deployed on this machine: its resources in the embedded AWS, its functions in pools.

``serve`` runs one for as long as it runs; ``invoke``, ``kv`` and ``warmup`` run a short-lived one on the
persisted data when no serve is running.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from local import ROOT
from local.aws import EmbeddedAWS
from local.console import Console
from local.datadir import DataDir
from local.intrinsics import NotEmulated
from local.kvbulk import as_stored
from local.provision import Resources, provision
from local.snapshot import TableSnapshots
from local.template import Template
from local.workers import FunctionPool, lambda_environment

if TYPE_CHECKING:
    from arcturus.kv import KVNamespace

SEED_DIR = ROOT / "local" / "seed"
SEEDS = {"data:user-roles": "user-roles.json"}
"""KV keys written on a data directory's first start, from files in local/seed/."""


def seed(kv: KVNamespace, log: Callable[[str], None]) -> None:
    """Write the ``SEEDS`` as a data directory's first start does (the roles document as its store writes
    it, sealed); a broken seed file fails here, not in every function later."""
    for key, file_name in SEEDS.items():
        value, metadata = as_stored(key, (SEED_DIR / file_name).read_bytes(), None)
        kv.put(key, value, metadata=metadata)
        log(f"local: seeded {key} from {(SEED_DIR / file_name).relative_to(ROOT)}")


class Deployment:
    def __init__(
        self,
        template: Template,
        data: DataDir,
        log: Console,
        *,
        max_workers: int = 4,
        aws_host: str = "127.0.0.1",
        aws_port: int = 0,
        env_vars: dict[str, dict[str, str]] | None = None,
        python: str = sys.executable,
    ) -> None:
        self.template = template
        self.python = python
        self.env_vars = env_vars or {}
        self.data = data
        self.log = log
        self.max_workers = max_workers
        self.aws = EmbeddedAWS(aws_host, aws_port)
        self.resources = Resources()
        self.pools: dict[str, FunctionPool] = {}
        self._snapshots: TableSnapshots | None = None

    def start(self, *, tables_only: bool = False) -> None:
        """Start the embedded AWS, create the resources, load (or seed) the data, prepare the pools.

        ``tables_only`` is for the KV commands: the other resources (SSM alone takes a second to come
        up in moto) and the functions are left out.
        """
        self.aws.start()
        self.resources = provision(self.template, self.aws, self.data.secrets, tables_only=tables_only)
        self._snapshots = TableSnapshots(self.aws, list(self.resources.tables.values()), self.data.tables)
        first_start = not any(
            self._snapshots.path(table).exists() for table in self.resources.tables.values()
        )
        for table, count in self._snapshots.restore().items():
            self.log(f"local: {table}: {count} items loaded from {self.data.tables}")
        self._relayout()
        if first_start and self.resources.tables:
            self._seed()
            self._snapshots.save()
        self._snapshots.start()
        if tables_only:
            return
        self.pools = {
            logical_id: FunctionPool(
                spec,
                lambda_environment(spec, self.variables(logical_id), self.aws.endpoint),
                self.max_workers,
                self.log,
                self.python,
            )
            for logical_id, spec in self.template.functions().items()
        }

    def _relayout(self) -> None:
        """Bring data saved by an older version into the KV table's current partition layout."""
        try:
            table, namespace = self.kv_location()
        except LookupError:
            return
        from arcturus.relayout import relayout  # noqa: PLC0415 - the layer is on the path once main set it

        moved = relayout(self.aws.client("dynamodb"), table, namespace)
        if moved:
            self.log(f"local: {table}: {moved} items moved to the key-class layout")

    def variables(self, logical_id: str) -> dict[str, Any]:
        """The function's Environment.Variables (Globals included) resolved to the local resources.

        ``env_vars`` (``sam local``'s --env-vars format) then overrides them as SAM does: its
        ``Parameters`` for every function, its ``<LogicalId>`` entry for one, declared variables only.
        """
        resolver = self.template.resolver(self.resources.refs, self.resources.attrs)
        resolved = {}
        for name, value in self.template.functions()[logical_id].environment.items():
            try:
                resolved[name] = resolver.resolve(value)
            except NotEmulated as missing:
                self.log(
                    f"local: {logical_id}: {name} refers to {missing}, which runs only in AWS; left empty"
                )
                resolved[name] = ""
        overrides = self.env_vars.get("Parameters", {}) | self.env_vars.get(logical_id, {})
        return resolved | {name: value for name, value in overrides.items() if name in resolved}

    def kv_location(self) -> tuple[str, str]:
        """(table, namespace) of the KV namespace the functions are configured with."""
        resolver = self.template.resolver(self.resources.refs, self.resources.attrs)
        for spec in self.template.functions().values():
            if "KV_TABLE_NAME" in spec.environment:
                table = resolver.resolve(spec.environment["KV_TABLE_NAME"])
                return str(table), str(
                    resolver.resolve(spec.environment.get("KV_NAMESPACE")) or "ARGOBOX_CACHE"
                )
        raise LookupError("no function of the template has KV_TABLE_NAME in its environment")

    def _seed(self) -> None:
        from arcturus.kv import KVNamespace  # noqa: PLC0415 - the layer is importable once __main__ set it up

        try:
            table, namespace = self.kv_location()
        except LookupError:
            return
        seed(KVNamespace(table, namespace, client=self.aws.client("dynamodb")), self.log)

    def stop(self) -> None:
        """Stop the workers, save the data one last time, stop the embedded AWS."""
        for pool in self.pools.values():
            pool.stop()
        if self._snapshots is not None:
            self._snapshots.stop()
        self.aws.stop()

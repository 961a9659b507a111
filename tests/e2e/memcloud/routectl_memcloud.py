"""memcloud: a routectl provider adapter from outside routectl, as small as one can be.

Its own distribution (pyproject.toml beside this file) registers `SPEC` under the entry-point group
`routectl.providers`; once it is installed, `routectl run|plan --provider memcloud` work with no change to
routectl. The "cloud" is one route table kept in a JSON file (`--memcloud-state`):
`{"routes": [{"destination": CIDR, "instance": ID, "cluster": NAME, "node": NAME}]}`; a route is owned
when its `cluster` is this cluster's name.
"""

from __future__ import annotations

import ipaddress
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from providers.errors import InvalidProviderID
from providers.model import (
    CallObserver,
    Limits,
    Outcome,
    Route,
    RouteResult,
    Target,
    WriteGuard,
    no_guard,
    nothing_adoptable,
)
from providers.registry import CommonConfig, ProviderSpec
from providers.settings import Setting

PREFIX = "memcloud://"


@dataclass(frozen=True, slots=True)
class MemcloudConfig:
    common: CommonConfig
    state: str
    table: str = "mem-main"


class MemcloudProvider:
    """The RouteProvider port over one JSON file; every write rewrites the file under a lock."""

    name = "memcloud"

    def __init__(self, config: MemcloudConfig) -> None:
        self._config = config
        self._path = Path(config.state)
        self._lock = threading.Lock()
        self._observers: list[CallObserver] = []
        self._guard: WriteGuard = no_guard

    @property
    def limits(self) -> Limits:
        return self._config.common.limits(SPEC.limits)

    def tables(self) -> Sequence[str]:
        return [self._config.table]

    def list_routes(self, table: str) -> list[Route]:
        started = time.monotonic()
        routes = [self._route(entry) for entry in self._entries()]
        self._report("ListRoutes", started)
        return routes

    def create_routes(self, table: str, routes: Sequence[Route]) -> list[RouteResult]:
        return [self._write("PutRoute", route, keep=True) for route in routes]

    def replace_routes(self, table: str, routes: Sequence[Route]) -> list[RouteResult]:
        return [self._write("PutRoute", route, keep=True) for route in routes]

    def delete_routes(self, table: str, routes: Sequence[Route]) -> list[RouteResult]:
        return [self._write("DeleteRoute", route, keep=False) for route in routes]

    def adopt_routes(self, table: str, routes: Sequence[Route]) -> list[RouteResult]:
        return nothing_adoptable(self.name, routes)

    def target_for(self, provider_id: str) -> Target:
        instance = provider_id.removeprefix(PREFIX)
        if not provider_id.startswith(PREFIX) or not instance or "/" in instance:
            raise InvalidProviderID(f"providerID {provider_id!r}: not memcloud://<instance>")
        return Target(instance)

    def prepare_target(self, target: Target) -> None:
        """A memcloud instance forwards whatever it is sent: nothing to set up."""

    def observe(self, observer: CallObserver) -> None:
        self._observers.append(observer)

    def guard_writes(self, guard: WriteGuard) -> None:
        self._guard = guard

    def close(self) -> None:
        """Holds no connection."""

    def _entries(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = json.loads(self._path.read_text())["routes"]
        return entries

    def _route(self, entry: dict[str, Any]) -> Route:
        owned = entry.get("cluster") == self._config.common.cluster_name
        return Route(
            destination=ipaddress.ip_network(entry["destination"]),
            target=Target(entry["instance"]),
            owned=owned,
            node=entry.get("node", "") if owned else "",
            next_hop=entry["instance"],
        )

    def _write(self, api: str, route: Route, *, keep: bool) -> RouteResult:
        self._guard()
        started = time.monotonic()
        with self._lock:
            entries = [e for e in self._entries() if e["destination"] != str(route.destination)]
            if keep and route.target is not None:
                entries.append(
                    {
                        "destination": str(route.destination),
                        "instance": route.target.instance,
                        "cluster": self._config.common.cluster_name,
                        "node": route.node,
                    }
                )
            self._path.write_text(json.dumps({"routes": entries}))
        self._report(api, started)
        return RouteResult(route, Outcome.OK)

    def _report(self, api: str, started: float) -> None:
        for observer in self._observers:
            observer(api, "200", time.monotonic() - started)


SPEC = ProviderSpec(
    name="memcloud",
    summary="memcloud: one route table in a JSON file",
    config=MemcloudConfig,
    build=MemcloudProvider,
    limits=Limits(write_rate=50.0, write_burst=50, read_rate=50.0, read_burst=50),
    settings=(
        Setting("memcloud-state", "JSON file holding the route table", required=True, field="state"),
        Setting("memcloud-table", "name of the route table", default="mem-main", field="table"),
    ),
)

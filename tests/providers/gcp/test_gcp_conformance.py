"""The GCP adapter passes the RouteProvider conformance kit through google-cloud-compute against the
GCE emulator."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from gcp_helpers import CLUSTER, NETWORK, PROJECT, ZONE

from providers.conformance import CLUSTER_CIDRS, Probe, RouteProviderContract, Supports
from providers.emulators.gce import BASE, GceEmulator
from providers.gcp import GcpProvider, cluster_prefix, route_name
from providers.model import Network, Route, RouteProvider, Target

OTHER_ZONE = "us-central1-b"
WRITES = ("routes.insert", "routes.delete")
MISSING = Target("ghost", ZONE, PROJECT)

SUPPORTS = Supports(
    retry_after=False,
    why_not={"retry_after": "GCE answers 403 rateLimitExceeded without a retry-after"},
)


@dataclass(slots=True)
class GcpWorld:
    emulator: GceEmulator
    provider: RouteProvider
    table: str = NETWORK
    cluster_cidrs: Sequence[Network] = CLUSTER_CIDRS
    invalid_provider_ids: Sequence[str] = (
        "aws:///us-east-1a/i-0abc",
        "gce://proj/zone",
        "gce://proj/zone/name/extra",
        "gce:///zone/name",
    )
    missing_target: Target = MISSING
    supports: Supports = SUPPORTS

    @property
    def provider_ids(self) -> dict[str, Target]:
        return {
            f"gce://{PROJECT}/{ZONE}/node-0": Target("node-0", ZONE, PROJECT),
            f"gce://{PROJECT}/{OTHER_ZONE}/node-1": Target("node-1", OTHER_ZONE, PROJECT),
        }

    def add_foreign_route(self, destination: Network, *, blocking: Route | None = None) -> Probe:
        """Another cluster's route, or for `blocking` a legacy route holding the name ours would take."""
        if blocking is None:
            name = "other-" + "".join(c if c.isalnum() else "-" for c in str(destination))
            description = "routectl: cluster=other node=theirs"
        else:
            name = route_name(cluster_prefix(CLUSTER), blocking.node_uid, destination)
            description = "k8s-node-route"
        self.emulator.add_route(
            PROJECT,
            {
                "name": name,
                "description": description,
                "network": f"{BASE}projects/{PROJECT}/global/networks/{NETWORK}",
                "destRange": str(destination),
                "nextHopInstance": f"{BASE}projects/{PROJECT}/zones/{ZONE}/instances/node-0",
            },
        )
        return lambda: next((r for r in self.emulator.routes(PROJECT) if r["name"] == name), None)

    def add_adoptable_route(self, destination: Network, target: Target) -> Probe:
        """A route as the Kubernetes GCE provider makes it for this cluster (gce_routes.go)."""
        name = f"{CLUSTER[:26]}-legacy-" + "".join(c if c.isalnum() else "-" for c in str(destination))
        hop = f"projects/{target.project}/zones/{target.zone}/instances/{target.instance}"
        self.emulator.add_route(
            PROJECT,
            {
                "name": name,
                "description": "k8s-node-route",
                "network": f"{BASE}projects/{PROJECT}/global/networks/{NETWORK}",
                "destRange": str(destination),
                "priority": 1000,
                "nextHopInstance": BASE + hop,
            },
        )
        return lambda: next((r for r in self.emulator.routes(PROJECT) if r["name"] == name), None)

    def limit_routes(self, room: int) -> None:
        """GCE's ROUTES quota counts every route of the project."""
        self.emulator.routes_quota = len(self.emulator.routes(PROJECT)) + room

    def throttle_writes(self, count: int, retry_after: float) -> None:
        self.emulator.fail_next(
            WRITES, status=403, reason="rateLimitExceeded", message="Rate Limit Exceeded", count=count
        )

    def terminate(self, target: Target) -> None:
        self.emulator.delete_instance(target.project, target.zone, target.instance)

    def mutating_requests(self) -> int:
        calls = self.emulator.calls()
        return sum(calls[api] for api in WRITES)


@pytest.fixture
def conformance_world(emulator: GceEmulator, provider: GcpProvider) -> GcpWorld:
    world = GcpWorld(emulator, provider)
    for target in world.provider_ids.values():
        emulator.add_instance(target.project, target.zone, target.instance)
    return world


class TestGcpConformance(RouteProviderContract):
    pass

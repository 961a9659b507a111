"""Adoption on GCP: `k8s-node-route` routes the Kubernetes GCE provider made for this cluster become
routectl's with the block routed after every cloud call; everything else stays untouched."""

from __future__ import annotations

import dataclasses
import functools
import ipaddress

from gcp_helpers import CLUSTER, NETWORK, PROJECT, ZONE, a_provider

from providers import CheckStatus, DiagnosisScope
from providers.emulators.gce import BASE, GceEmulator
from providers.model import Outcome, Route
from routectl.demo.harness import embedded_config
from routectl.demo.memcluster import MemoryCluster
from routectl.engine.planner import ADOPT_FLAG
from routectl.ops import doctor
from routectl.ops.planreport import compute
from tests.providers.switch import Routed, SwitchWatch, reconciler

CIDR = "10.64.0.0/16"


def legacy(emulator: GceEmulator, name: str, block: str, instance: str) -> None:
    """As gce_routes.go CreateRoute writes it: `<cluster[:26]>-<node uid>`, description k8s-node-route."""
    emulator.add_route(
        PROJECT,
        {
            "name": name,
            "description": "k8s-node-route",
            "network": f"{BASE}projects/{PROJECT}/global/networks/{NETWORK}",
            "destRange": block,
            "priority": 1000,
            "nextHopInstance": f"{BASE}projects/{PROJECT}/zones/{ZONE}/instances/{instance}",
        },
    )


def a_world(emulator: GceEmulator) -> tuple[MemoryCluster, dict[str, str]]:
    """node-0: legacy route under the very name routectl would use; node-1: legacy route of an earlier
    Node object (another uid); node-2: no route; node-3's block: a legacy route to node-0's instance
    (not adoptable: a conflict); and a legacy route outside the cluster CIDR."""
    emulator.operation_delay = 0.05
    cluster = MemoryCluster()
    for i in range(4):
        emulator.add_instance(PROJECT, ZONE, f"node-{i}")
        cluster.add_node(
            f"node-{i}", provider_id=f"gce://{PROJECT}/{ZONE}/node-{i}", pod_cidrs=[f"10.64.{i}.0/24"]
        )
    legacy(emulator, f"{CLUSTER}-{cluster.nodes()['node-0'].uid}", "10.64.0.0/24", "node-0")
    legacy(emulator, f"{CLUSTER}-00000000-dead-4bee-8f00-000000000001", "10.64.1.0/24", "node-1")
    legacy(emulator, f"{CLUSTER}-00000000-dead-4bee-8f00-000000000003", "10.64.3.0/24", "node-0")
    legacy(emulator, f"{CLUSTER}-00000000-dead-4bee-8f00-000000000009", "10.99.0.0/24", "node-2")
    return cluster, {f"10.64.{i}.0/24": f"node-{i}" for i in range(2)}


def routed(emulator: GceEmulator) -> Routed:
    def check(block: str, instance: str) -> bool:
        return any(
            r["destRange"] == block and r.get("nextHopInstance", "").endswith(f"/instances/{instance}")
            for r in emulator.routes(PROJECT)
        )

    return check


def legacy_routes(emulator: GceEmulator) -> list[dict[str, object]]:
    return [r for r in emulator.routes(PROJECT) if r.get("description") == "k8s-node-route"]


def by_block(emulator: GceEmulator) -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    for r in emulator.routes(PROJECT):
        found.setdefault(r["destRange"], []).append(
            (r.get("description", ""), r.get("nextHopInstance", "").rsplit("/", 1)[-1])
        )
    return found


def test_without_the_flag_nothing_is_written_and_the_nodes_name_the_flag(emulator: GceEmulator) -> None:
    cluster, _ = a_world(emulator)
    before = legacy_routes(emulator)
    provider = a_provider(emulator)
    rec = reconciler(cluster, provider, CIDR, adopt=False)
    try:
        assert rec.resync() is False
    finally:
        rec.close()
        provider.close()

    assert legacy_routes(emulator) == before
    for name in ("node-0", "node-1"):
        condition = cluster.nodes()[name].network_unavailable
        assert condition is not None
        assert condition.status == "True"
        assert ADOPT_FLAG in condition.message


def test_adoption_converges_with_every_block_routed_after_every_cloud_call(emulator: GceEmulator) -> None:
    cluster, watched = a_world(emulator)
    provider = a_provider(emulator)
    watch = SwitchWatch(provider, routed(emulator), watched)
    rec = reconciler(cluster, provider, CIDR, adopt=True)
    try:
        rec.resync()
        converged = rec.resync()
    finally:
        rec.close()
        provider.close()

    assert watch.gaps == []
    assert {"routes.insert", "routes.delete"} <= set(watch.calls)
    routes = by_block(emulator)
    ours = f"routectl: cluster={CLUSTER} node="
    names = {
        r["destRange"]: r["name"]
        for r in emulator.routes(PROJECT)
        if r.get("description", "").startswith(ours)
    }
    assert names["10.64.0.0/24"] == f"{CLUSTER}-{cluster.nodes()['node-0'].uid}-a"  # legacy had our name
    assert names["10.64.1.0/24"] == f"{CLUSTER}-{cluster.nodes()['node-1'].uid}"
    for i in range(3):
        [(description, instance)] = routes[f"10.64.{i}.0/24"]
        assert description == ours + f"node-{i}"
        assert instance == f"node-{i}"
    assert routes["10.64.3.0/24"] == [("k8s-node-route", "node-0")]  # a conflict: untouched
    assert routes["10.99.0.0/24"] == [("k8s-node-route", "node-2")]  # outside the cluster CIDR
    assert converged is False  # node-3 stays blocked by the conflict
    states = {n: c.network_unavailable.status for n, c in cluster.nodes().items() if c.network_unavailable}
    assert states == {"node-0": "False", "node-1": "False", "node-2": "False", "node-3": "True"}


def test_a_legacy_route_holding_routectls_own_name_is_adopted_under_the_adopted_name(
    emulator: GceEmulator,
) -> None:
    """GCE and routectl both name a route `<cluster>-<node uid>`: routectl's takes `…-a` while the
    legacy one stands, and a later replace moves it back to the plain name."""
    for name in ("node-0", "node-1"):
        emulator.add_instance(PROJECT, ZONE, name)
    uid = "0a0a0a0a-1111-4222-8333-444455556666"
    legacy(emulator, f"{CLUSTER}-{uid}", "10.64.0.0/24", "node-0")
    provider = a_provider(emulator)
    try:
        [listed] = [r for r in provider.list_routes(NETWORK) if r.adoptable]
        target = provider.target_for(f"gce://{PROJECT}/{ZONE}/node-0")
        desired = Route(listed.destination, target, owned=True, node="node-0", node_uid=uid)

        [adopted] = provider.adopt_routes(NETWORK, [dataclasses.replace(desired, cloud_id=listed.cloud_id)])
        names_after_adoption = [r.cloud_id for r in provider.list_routes(NETWORK) if r.owned]
        moved = dataclasses.replace(desired, target=provider.target_for(f"gce://{PROJECT}/{ZONE}/node-1"))
        [replaced] = provider.replace_routes(
            NETWORK, [dataclasses.replace(moved, cloud_id=adopted.route.cloud_id)]
        )
        [after] = [r for r in provider.list_routes(NETWORK) if r.owned]
    finally:
        provider.close()

    assert adopted.outcome is Outcome.OK
    assert names_after_adoption == [f"{CLUSTER}-{uid}-a"]
    assert replaced.outcome is Outcome.OK
    assert (after.cloud_id, after.node_uid, after.target.instance if after.target else "") == (
        f"{CLUSTER}-{uid}",
        uid,
        "node-1",
    )


def test_doctor_names_the_legacy_routes_as_adoptable_and_the_misdirected_one_as_foreign(
    emulator: GceEmulator,
) -> None:
    """`routectl doctor`'s route checks on the same world, through the real GCP client: without the
    flag the adoptable routes fail naming it; with it they pass; the legacy route on node-3's block to
    node-0's instance is foreign either way; nothing is written."""
    cluster, _ = a_world(emulator)
    provider = a_provider(emulator)
    scope = DiagnosisScope((ipaddress.ip_network(CIDR),), ())
    try:
        for adopting in (False, True):
            flags = [f"--project={PROJECT}", f"--network={NETWORK}", f"--cloud-endpoint={emulator.endpoint}"]
            cfg = embedded_config(
                "gcp", [CIDR], cluster_name=CLUSTER, extra=[*flags, f"--adopt-routes={adopting}"]
            )
            checks = doctor.cloud_checks(
                provider, scope, functools.partial(compute, cfg, cluster, provider), adopting
            )
            found = {c.name: c for c in checks}
            adoptable, foreign = found["adoptable-routes"], found["foreign-routes"]
            assert adoptable.status is (CheckStatus.PASS if adopting else CheckStatus.FAIL)
            assert "2 route(s) of another route controller" in adoptable.found
            assert foreign.status is CheckStatus.FAIL
            assert "10.64.3.0/24" in foreign.found
            assert "10.64.3.0/24" not in adoptable.found
    finally:
        provider.close()
    assert not {"routes.insert", "routes.delete"} & set(emulator.calls())

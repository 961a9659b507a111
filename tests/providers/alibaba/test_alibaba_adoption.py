"""Adoption on Alibaba: entries inside the cluster CIDR to a node's instance without routectl's marks
(as Alibaba's cloud-controller-manager leaves them) get the marks in place (ModifyRouteEntry), the block
routed after every cloud call; everything else stays untouched."""

from __future__ import annotations

from providers.emulators.alibaba import AlibabaVpcEmulator, EmulatedRoute
from routectl.demo.memcluster import MemoryCluster
from routectl.engine.planner import ADOPT_FLAG
from tests.providers.switch import Routed, SwitchWatch, reconciler

from .conftest import REGION, VPC, Build

CIDR = "10.64.0.0/16"


def a_world(emulator: AlibabaVpcEmulator, table: str) -> tuple[MemoryCluster, dict[str, str]]:
    """node-0, node-1: unmarked entries to their instances; node-2: none; node-3's block: an unmarked
    entry to node-0's instance (a conflict); an unmarked entry outside the cluster CIDR; another
    cluster's marked entry."""
    cluster = MemoryCluster()
    instances = [f"i-{i:06d}" for i in range(4)]
    emulator.add_instances(VPC, *instances)
    for i, instance in enumerate(instances):
        cluster.add_node(f"node-{i}", provider_id=f"{REGION}.{instance}", pod_cidrs=[f"10.64.{i}.0/24"])
    emulator.add_route(table, "10.64.0.0/24", instances[0], name="ccm-node-0")
    emulator.add_route(table, "10.64.1.0/24", instances[1])
    emulator.add_route(table, "10.64.3.0/24", instances[0])
    emulator.add_route(table, "10.99.0.0/24", instances[2])
    emulator.add_route(table, "10.64.9.0/24", instances[2], description="routectl cluster=other node=x")
    return cluster, {"10.64.0.0/24": instances[0], "10.64.1.0/24": instances[1]}


def routed(emulator: AlibabaVpcEmulator, table: str) -> Routed:
    def check(block: str, instance: str) -> bool:
        return any(e.destination == block and e.next_hop == instance for e in emulator.routes(table))

    return check


def entries(emulator: AlibabaVpcEmulator, table: str) -> dict[str, EmulatedRoute]:
    return {e.destination: e for e in emulator.routes(table, type_="Custom")}


def test_without_the_flag_nothing_is_written_and_the_nodes_name_the_flag(
    emulator: AlibabaVpcEmulator, table: str, make_provider: Build
) -> None:
    cluster, _ = a_world(emulator, table)
    before = {d: e for d, e in entries(emulator, table).items() if d != "10.64.2.0/24"}
    provider = make_provider()
    rec = reconciler(cluster, provider, CIDR, adopt=False)
    try:
        assert rec.resync() is False
    finally:
        rec.close()

    assert {d: e for d, e in entries(emulator, table).items() if d != "10.64.2.0/24"} == before
    assert emulator.calls.get("ModifyRouteEntry", 0) == 0
    for name in ("node-0", "node-1"):
        condition = cluster.nodes()[name].network_unavailable
        assert condition is not None
        assert condition.status == "True"
        assert ADOPT_FLAG in condition.message


def test_adoption_marks_entries_in_place_with_every_block_routed_after_every_call(
    emulator: AlibabaVpcEmulator, table: str, make_provider: Build
) -> None:
    cluster, watched = a_world(emulator, table)
    before = entries(emulator, table)
    provider = make_provider()
    watch = SwitchWatch(provider, routed(emulator, table), watched)
    rec = reconciler(cluster, provider, CIDR, adopt=True)
    try:
        rec.resync()
        converged = rec.resync()
    finally:
        rec.close()

    assert watch.gaps == []
    assert emulator.calls["ModifyRouteEntry"] == 2
    assert emulator.calls.get("DeleteRouteEntries", 0) == 0
    after = entries(emulator, table)
    for i in range(2):
        entry = after[f"10.64.{i}.0/24"]
        assert entry.id == before[f"10.64.{i}.0/24"].id  # the same entry, never re-created
        assert entry.description == f"routectl cluster=prod node=node-{i}"
        assert entry.name == f"routectl-prod-node-{i}"
    assert after["10.64.2.0/24"].description == "routectl cluster=prod node=node-2"
    for untouched in ("10.64.3.0/24", "10.99.0.0/24", "10.64.9.0/24"):
        assert after[untouched] == before[untouched]
    assert converged is False  # node-3 stays blocked by the conflict
    states = {n: c.network_unavailable.status for n, c in cluster.nodes().items() if c.network_unavailable}
    assert states == {"node-0": "False", "node-1": "False", "node-2": "False", "node-3": "True"}

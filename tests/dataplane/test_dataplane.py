"""Pods on different nodes reach each other through the routes routectl writes, on real flannel, with no
encapsulation — for AWS (moto), GCP and Alibaba (the project's emulators).

Each provider gets its own cluster (conftest `world`): a router namespace that follows the cloud's own
route table, nodes n1-n3 running flanneld (`alloc`) with two pods each, and routectl as a process with
the chart's RBAC. Every scenario asserts on echo replies between pod addresses, not on tables alone;
the tests of one provider run in file order (the last one kills the leader).
"""

from __future__ import annotations

import ipaddress
import json
import signal
import time

import pytest

from tests.dataplane import netns
from tests.dataplane.figures import Figures
from tests.dataplane.packets import ICMP, VXLAN_PORT, RouterCapture, echo_requests, encapsulated, matrix
from tests.dataplane.world import BASELINE, RESYNC, World
from tests.support.cluster import ROUTE_CREATED, leading
from tests.support.routectl_proc import eventually

EXCLUDE = ("routectl.io/exclude", "true")
"""routectl's default --exclude-label: such a node gets no podCIDR and no route."""
CONVERGE_TIMEOUT_S = 60.0


def all_reach(reached: dict[tuple[str, ipaddress.IPv4Address], bool]) -> bool:
    return bool(reached) and all(reached.values())


def unreached(reached: dict[tuple[str, ipaddress.IPv4Address], bool]) -> list[str]:
    return sorted(f"{source} -> {target}" for (source, target), ok in reached.items() if not ok)


def test_every_pod_reaches_every_pod_on_every_other_node(world: World, measured: Figures) -> None:
    world.wait_routed(BASELINE, CONVERGE_TIMEOUT_S)
    pods = world.pods(BASELINE)

    reached = world.reach(pods, pods)

    grid = matrix(pods, reached)
    measured.record(
        world.provider,
        "matrix",
        {"pods": [p.label for p in pods], "addresses": [str(p.ip) for p in pods], "reached": grid},
    )
    assert unreached(reached) == []
    assert {p.node for p in pods} == set(BASELINE)
    assert len(pods) == 2 * len(BASELINE)
    for name in BASELINE:
        cidr = world.pod_cidr(name)
        assert cidr is not None
        assert all(p.ip in cidr for p in world.nodes[name].pods)  # flanneld took routectl's podCIDR
        assert world.network_condition(name) == ROUTE_CREATED  # routectl's condition, not flannel's


def test_the_router_carries_plain_ip_between_pod_addresses(world: World, measured: Figures) -> None:
    world.wait_routed(BASELINE, CONVERGE_TIMEOUT_S)
    pods = world.pods(BASELINE)
    crossing = [(a, b) for a in pods for b in pods if a.node != b.node]

    with RouterCapture(world.fabric.router) as capture:
        reached = world.prober.reach([(a, b.ip) for a, b in crossing])
        seen = capture.drain()

    assert unreached(reached) == []
    icmp = echo_requests(seen)
    missing = [(a.label, b.label) for a, b in crossing if {(a.ip, b.ip), (b.ip, a.ip)} - icmp]
    assert missing == []  # request and reply crossed the router with the pods' own addresses
    assert encapsulated(seen) == []
    assert [s for s in seen if s.destination_port == VXLAN_PORT] == []
    node_addresses = {h.address.ip for h in world.fabric.hosts.values()}
    natted = [s for s in seen if s.protocol == ICMP and {s.source, s.destination} & node_addresses]
    assert natted == []  # the pods' addresses, not their nodes': nothing masqueraded
    measured.record(
        world.provider,
        "capture",
        {
            "ipv4_packets": len(seen),
            "icmp_pairs": len(icmp),
            "udp_or_tunnel_packets": len(encapsulated(seen)),
        },
    )


def test_nothing_connects_the_namespaces_to_the_root_namespace(world: World) -> None:
    ours = netns.run_prefix()
    assert [link for link in netns.links() if link.startswith(ours)] == []
    root_routes = json.loads(netns.ip("-j", "route", "show", "table", "all"))
    assert [r for r in root_routes if str(r.get("dev", "")).startswith(ours)] == []
    router = world.fabric.router
    assert set(netns.links(router)) == {"lo", *(h.port for h in world.fabric.hosts.values())}
    router_routes = json.loads(netns.ip("-j", "route", "show", netns=router))
    assert [r for r in router_routes if r["dst"] == "default"] == []


def test_a_route_deleted_out_of_band_is_repaired_and_traffic_returns(world: World, measured: Figures) -> None:
    world.wait_routed(BASELINE, CONVERGE_TIMEOUT_S)
    victim, others = world.nodes["n2"], world.pods(["n1", "n3"])
    cidr = world.pod_cidr("n2")
    assert cidr is not None
    assert all_reach(world.reach(others, victim.pods))

    for _ in range(3):  # routectl might re-create it before the router reads the cloud; then again
        world.cloud.delete_route(cidr)
        deleted_at = time.monotonic()
        if cidr not in world.sync.sync_now().routes:
            break
    else:
        pytest.fail(f"{cidr} was back in the cloud every time before the router could see it gone")
    # The router mirrors the cloud (no route) for at least one sync period from here.
    assert not any(world.reach(others, victim.pods, timeout_s=0.15).values())

    eventually(
        lambda: world.sync.routes.get(cidr) == victim.host.address.ip,
        CONVERGE_TIMEOUT_S,
        f"routectl re-creates {cidr} in the cloud (resync {RESYNC}) and the router follows",
    )
    repaired_s = time.monotonic() - deleted_at
    assert all_reach(world.reach(others, victim.pods))
    assert all_reach(world.reach(victim.pods, others))
    measured.record(
        world.provider, "repair", {"deleted_to_routed_again_s": round(repaired_s, 2), "resync": RESYNC}
    )


def test_a_new_node_pods_become_reachable(world: World, measured: Figures) -> None:
    world.wait_routed(BASELINE, CONVERGE_TIMEOUT_S)

    node = world.register("n4")
    eventually(lambda: world.pod_cidr("n4") is not None, CONVERGE_TIMEOUT_S, "n4 gets a podCIDR", poll_s=0.02)
    cidr_at = time.monotonic()
    env = world.flannel_ready(node)
    flannel_at = time.monotonic()
    world.attach_pods(node)
    attached_at = time.monotonic()
    first = world.first_reply(world.pods(BASELINE), node.pods[0], CONVERGE_TIMEOUT_S)

    cidr = world.pod_cidr("n4")
    assert cidr is not None
    assert env.subnet.network == cidr
    world.wait_routed([*BASELINE, "n4"], CONVERGE_TIMEOUT_S)
    assert unreached(world.reach(world.pods(BASELINE), node.pods)) == []
    assert unreached(world.reach(node.pods, world.pods(BASELINE))) == []
    routed_at = world.sync.routed_at(cidr, node.host.address.ip)
    assert routed_at is not None
    measured.record(
        world.provider,
        "join",
        {
            "node": "n4",
            "pod_cidr_s": round(cidr_at - node.created_at, 2),
            "flannel_ready_s": round(flannel_at - node.created_at, 2),
            "pods_attached_s": round(attached_at - node.created_at, 2),
            "route_at_router_s": round(routed_at - node.created_at, 2),
            "first_ping_s": round(first - node.created_at, 2),
            "flanneld_restarts": len(node.kubelet.exits),
        },
    )


def test_a_deleted_node_pods_become_unreachable_and_nobody_else_is_affected(world: World) -> None:
    node = world.join("n5")
    world.wait_routed([*BASELINE, "n5"], CONVERGE_TIMEOUT_S)
    rest = world.pods([n for n in world.nodes if n != "n5"])
    assert all_reach(world.reach(rest, node.pods))
    cidr = world.pod_cidr("n5")
    assert cidr is not None

    world.remove_node("n5")  # the machine and its pods stay up: only the route can take them away
    eventually(
        lambda: cidr not in world.sync.routes,
        CONVERGE_TIMEOUT_S,
        f"routectl deletes {cidr} from the cloud and the router follows",
    )

    assert not any(world.reach(rest, node.pods).values())
    assert not any(world.reach(node.pods, rest).values())
    assert unreached(world.reach(rest, rest)) == []


def test_flanneld_started_before_its_node_has_a_pod_cidr_exits_then_comes_up_once_it_has_one(
    world: World,
) -> None:
    node = world.register("n6", labels=dict([EXCLUDE]))  # routectl leaves it alone while labelled

    eventually(lambda: len(node.kubelet.exits) >= 1, CONVERGE_TIMEOUT_S, "flanneld on n6 exits")
    assert "pod cidr not assigned" in node.kubelet.log()
    assert node.kubelet.subnet() is None
    assert world.pod_cidr("n6") is None

    world.kube.core.patch_node("n6", {"metadata": {"labels": {EXCLUDE[0]: None}}})
    world.attach_pods(node)  # the kubelet restarts flanneld until it comes up
    world.wait_routed(["n6"], CONVERGE_TIMEOUT_S)
    assert unreached(world.reach(world.pods(BASELINE), node.pods)) == []


def test_the_leader_killed_in_the_middle_of_a_join_traffic_still_comes_up_after_failover(
    world: World, measured: Figures
) -> None:
    world.wait_routed(BASELINE, CONVERGE_TIMEOUT_S)
    (leader,) = world.controllers
    standby = world.runner.start("standby", world.setup)
    eventually(standby.ready, CONVERGE_TIMEOUT_S, "the standby is ready")
    assert leading(world.kube, leader)
    assert not leading(world.kube, standby)

    node = world.register("n7")
    leader.send(signal.SIGKILL)
    killed_at = time.monotonic()
    leader.wait(10)
    world.controllers[:] = [standby]
    cidr_before_kill = world.pod_cidr("n7")

    world.attach_pods(node)
    first = world.first_reply(world.pods(BASELINE), node.pods[0], CONVERGE_TIMEOUT_S)
    # The killed leader may have routed n7 already: the first reply can precede the takeover.
    eventually(lambda: leading(world.kube, standby), CONVERGE_TIMEOUT_S, "the standby leads")
    world.wait_routed([*BASELINE, "n7"], CONVERGE_TIMEOUT_S)
    assert unreached(world.reach(world.pods(BASELINE), node.pods)) == []
    assert unreached(world.reach(node.pods, world.pods(BASELINE))) == []
    measured.record(
        world.provider,
        "failover",
        {
            "lease_s": world.setup.timings.lease_s,
            "kill_to_first_ping_s": round(first - killed_at, 2),
            "pod_cidr_set_before_kill": cidr_before_kill is not None,
            "flanneld_restarts": len(node.kubelet.exits),
        },
    )

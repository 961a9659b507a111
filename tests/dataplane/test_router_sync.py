"""The router model itself: what a cloud state turns into, and that its drops really drop packets.

AWS's source/destination check and GCP's `canIpForward` act at both ends of an instance: packets for
another address are not delivered to it, and packets it sends with another source are discarded. The
router sync models both; here two stand-in hosts (a pod address on their loopback, no flannel, no cloud)
show each half with packets.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.dataplane import netns
from tests.dataplane.flannel import Pod
from tests.dataplane.packets import Prober, RouterCapture
from tests.dataplane.router import CloudState, Instance, RouterSync, kernel_routes, not_forwarding
from tests.dataplane.topology import Fabric
from tests.support.binaries import DataplaneBinaries

IPv4, Net = ipaddress.IPv4Address, ipaddress.IPv4Network
A, B = IPv4("10.0.0.10"), IPv4("10.0.0.11")
POD_A, POD_B = Net("10.244.8.0/24"), Net("10.244.9.0/24")


def a_state(*, a_forwards: bool = True, b_forwards: bool = True) -> CloudState:
    return CloudState(
        routes={POD_A: "i-a", POD_B: "i-b"},
        instances={"i-a": Instance(A, a_forwards), "i-b": Instance(B, b_forwards)},
    )


def test_a_route_is_a_blackhole_when_its_instance_may_not_forward_is_gone_or_has_no_address() -> None:
    state = CloudState(
        routes={POD_A: "i-a", POD_B: "i-b", Net("10.244.10.0/24"): "i-gone", Net("10.244.11.0/24"): "i-bare"},
        instances={"i-a": Instance(A, True), "i-b": Instance(B, False), "i-bare": Instance(None, True)},
    )

    assert kernel_routes(state) == {
        POD_A: A,
        POD_B: None,
        Net("10.244.10.0/24"): None,
        Net("10.244.11.0/24"): None,
    }
    assert not_forwarding(state) == {B}


@dataclass(slots=True)
class StateView:
    state: CloudState

    def read(self) -> CloudState:
        return self.state


@pytest.fixture
def two_hosts(dataplane_binaries: DataplaneBinaries) -> Iterator[tuple[Fabric, Pod, Pod]]:
    """Hosts a and b on a router; each has its pod block's first address on its loopback."""
    with Fabric(netns.run_prefix(), "sync", Net("10.0.0.0/24")) as fabric:
        pods = []
        for name, address, block in (("a", A, POD_A), ("b", B, POD_B)):
            host = fabric.add_host(name, address)
            pod_ip = next(block.hosts())
            netns.ip("addr", "add", f"{pod_ip}/32", "dev", "lo", netns=host.netns)
            pods.append(Pod("p", name, host.netns, pod_ip))
        yield fabric, pods[0], pods[1]


def test_the_router_drops_packets_to_and_from_an_instance_that_may_not_forward(
    two_hosts: tuple[Fabric, Pod, Pod],
) -> None:
    fabric, pod_a, pod_b = two_hosts
    view = StateView(a_state())
    sync = RouterSync(fabric, view)
    with contextlib.closing(Prober()) as prober:
        sync.sync_now()
        assert prober.reach([(pod_a, pod_b.ip)]) == {(pod_a.label, pod_b.ip): True}

        view.state = a_state(a_forwards=False)
        sync.sync_now()
        assert sync.routes == {POD_A: None, POD_B: B}
        with RouterCapture(fabric.router) as capture:
            assert prober.reach([(pod_a, pod_b.ip)], timeout_s=0.5) == {(pod_a.label, pod_b.ip): False}
            requests = [s for s in capture.drain() if (s.source, s.destination) == (pod_a.ip, pod_b.ip)]
        port_a = fabric.hosts["a"].port
        assert [s for s in requests if s.port == port_a and not s.outgoing]  # reached the router ...
        assert [s for s in requests if s.outgoing] == []  # ... and was dropped there, not forwarded to b

        view.state = a_state()
        sync.sync_now()
        assert sync.routes == {POD_A: A, POD_B: B}
        assert prober.reach([(pod_a, pod_b.ip)]) == {(pod_a.label, pod_b.ip): True}

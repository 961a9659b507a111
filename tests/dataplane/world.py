"""One provider's whole cluster for the dataplane scenarios, and what a scenario does to it.

A `World` holds the emulated cloud, the namespaces (router, nodes, pods), the router sync, flannel on
every node, the routectl processes and the test's admin view of the API server. `join` does what a new
VM does: the cloud launches an instance, the machine comes up with the address the cloud reports, its
kubelet registers the Node, flannel's DaemonSet pod starts, and once flanneld has written its subnet
file the kubelet attaches the node's pods. Each step's time is kept for the join→first-ping figure.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.dataplane.clouds import DataplaneCloud, Launched
from tests.dataplane.flannel import Flannel, Kubelet, Pod, SubnetEnv
from tests.dataplane.packets import Prober
from tests.dataplane.router import RouterSync
from tests.dataplane.topology import Fabric, Host
from tests.support.cluster import ROUTE_CREATED, Kube
from tests.support.routectl_proc import LeaseTimings, Routectl, RoutectlRunner, Setup, eventually

IPv4 = ipaddress.IPv4Address
PROVIDERS = ("aws", "gcp", "alibaba")
BASELINE = ("n1", "n2", "n3")
"""The nodes every provider's cluster starts with."""
PODS_PER_NODE = 2
CLUSTER_CIDR = "10.244.0.0/16"
NODE_MASK = 24
LEASE = LeaseTimings(lease_s=4, renew_s=3, retry_s=0.5)
RESYNC = "3s"
"""routectl's full resync: how soon a route deleted out of band comes back."""
FLANNEL_READY_TIMEOUT_S = 60.0
KUBELET_ANNOTATIONS = {"volumes.kubernetes.io/controller-managed-attach-detach": "true"}
"""What a kubelet annotates its Node with on registration (flanneld v0.28 panics on a Node without any
annotation: it writes into a nil map)."""


@dataclass(slots=True)
class Node:
    name: str
    launched: Launched
    host: Host
    kubelet: Kubelet
    created_at: float
    """monotonic time the Node object was created (the join starts)."""

    @property
    def pods(self) -> list[Pod]:
        return list(self.kubelet.pods.values())


@dataclass(slots=True)
class World:
    provider: str
    cloud: DataplaneCloud
    fabric: Fabric
    sync: RouterSync
    flannel: Flannel
    kube: Kube
    runner: RoutectlRunner
    setup: Setup
    workdir: Path
    prober: Prober = field(default_factory=Prober)
    nodes: dict[str, Node] = field(default_factory=dict)
    controllers: list[Routectl] = field(default_factory=list)

    # --- nodes ------------------------------------------------------------------------------------

    def register(self, name: str, labels: Mapping[str, str] | None = None) -> Node:
        """Launch the instance, bring its machine up and register its Node; flannel starts right after."""
        launched = self.cloud.launch(name)
        host = self.fabric.add_host(name, launched.address)
        kubelet = Kubelet(host, self.fabric, self.flannel, self.workdir / name)
        created_at = time.monotonic()
        self.kube.create_node(
            name,
            launched.provider_id,
            labels={"kubernetes.io/hostname": name, **(labels or {})},
            annotations=KUBELET_ANNOTATIONS,
        )
        node = Node(name, launched, host, kubelet, created_at)
        self.nodes[name] = node
        kubelet.start()
        return node

    def flannel_ready(self, node: Node) -> SubnetEnv:
        """flanneld's subnet file, once written (what the CNI plugin needs before any pod can start)."""
        eventually(
            lambda: node.kubelet.subnet() is not None,
            FLANNEL_READY_TIMEOUT_S,
            f"flanneld on {node.name} writes its subnet file",
            poll_s=0.05,
        )
        env = node.kubelet.subnet()
        assert env is not None
        return env

    def attach_pods(self, node: Node) -> SubnetEnv:
        """Once flanneld is ready, attach the node's pods (CNI ADD)."""
        env = self.flannel_ready(node)
        for index in range(1, PODS_PER_NODE + 1):
            node.kubelet.add_pod(f"p{index}")
        return env

    def join(self, name: str) -> Node:
        node = self.register(name)
        self.attach_pods(node)
        return node

    def remove_node(self, name: str) -> Node:
        """Delete the Node object and stop its flannel; the machine and its pods stay up (and addressed)."""
        node = self.nodes.pop(name)
        self.kube.delete_node(name)
        node.kubelet.stop()
        return node

    def pod_cidr(self, name: str) -> ipaddress.IPv4Network | None:
        cidr = self.kube.pod_cidr(name)
        return ipaddress.IPv4Network(cidr) if cidr else None

    # --- convergence ------------------------------------------------------------------------------

    def routed(self, names: Iterable[str]) -> bool:
        """routectl reports every named node's routes created, and the router has mirrored each of them."""
        views = self.kube.nodes()
        for name in names:
            view = views.get(name)
            if view is None or not view.pod_cidr or view.network != ROUTE_CREATED:
                return False
            hop = self.sync.routes.get(ipaddress.IPv4Network(view.pod_cidr))
            if hop != self.nodes[name].host.address.ip:
                return False
        return True

    def wait_routed(self, names: Sequence[str], timeout_s: float = 60.0) -> float:
        return eventually(
            lambda: self.routed(names),
            timeout_s,
            f"{', '.join(names)}: RouteCreated and the router routes each podCIDR to its node",
        )

    # --- packets ----------------------------------------------------------------------------------

    def pods(self, names: Iterable[str] | None = None) -> list[Pod]:
        chosen = self.nodes if names is None else {n: self.nodes[n] for n in names}
        return [pod for node in chosen.values() for pod in node.pods]

    def reach(
        self, sources: Sequence[Pod], targets: Sequence[Pod], timeout_s: float = 1.5
    ) -> dict[tuple[str, IPv4], bool]:
        pairs = [(a, b.ip) for a in sources for b in targets if a is not b]
        return self.prober.reach(pairs, timeout_s)

    def first_reply(self, sources: Sequence[Pod], target: Pod, timeout_s: float = 60.0) -> float:
        """Probe `target` from `sources` until one echo comes back; the monotonic time it did."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(self.prober.reach([(a, target.ip) for a in sources], 0.2).values()):
                return time.monotonic()
        raise AssertionError(f"no echo reply from {target.label} within {timeout_s:.0f}s")

    def network_condition(self, name: str) -> tuple[str, str] | None:
        """NetworkUnavailable (status, reason) of the Node, as the API server has it."""
        return self.kube.node(name).network

    def close(self) -> None:
        for node in self.nodes.values():
            node.kubelet.stop()
        self.prober.close()

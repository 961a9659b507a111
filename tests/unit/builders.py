"""Small builders for engine tests: one fact per call, everything else defaulted."""

from __future__ import annotations

import ipaddress
import threading

import ipam
from providers import Network, Route, RouteState, Target
from providers.emulators.simcloud import SimCloud
from routectl.cluster import Node
from routectl.controller import route_reconciler
from routectl.demo.memcluster import MemoryCluster
from routectl.engine.ownership import CIDRProblem, Rule, owners
from routectl.engine.planner import DesiredNode
from routectl.engine.reconciler import Reconciler
from routectl.fence import Fence, Unfenced
from routectl.metrics import Metrics

TABLE = "rtb-main"
CLUSTER = (ipaddress.ip_network("10.244.0.0/16"),)


def net(text: str) -> Network:
    return ipaddress.ip_network(text)


def a_node(
    name: str,
    *cidrs: str,
    instance: str | None = None,
    excluded: bool = False,
    reason: str = "",
    rejected: tuple[tuple[str, Rule, str], ...] = (),
) -> DesiredNode:
    """A node routed to `i-<name>` unless `instance` says otherwise ("" = no target), owning `cidrs`;
    `rejected` lists (podCIDR, rule, other node) it claims but does not own."""
    target_name = f"i-{name}" if instance is None else instance
    return DesiredNode(
        name=name,
        uid=f"uid-{name}",
        pod_cidrs=tuple(net(c) for c in cidrs),
        target=Target(target_name) if target_name else None,
        no_target_reason=reason,
        excluded=excluded,
        rejected=tuple(CIDRProblem(name, cidr, rule, "test", other) for cidr, rule, other in rejected),
    )


def a_route(
    destination: str,
    instance: str | None = None,
    *,
    owned: bool = True,
    state: RouteState = RouteState.ACTIVE,
    node: str = "",
) -> Route:
    return Route(
        destination=net(destination),
        target=Target(instance) if instance else None,
        owned=owned,
        state=state,
        node=node,
        next_hop=instance or "igw-1",
    )


class FakeClock:
    """A monotonic clock that only moves when someone sleeps (thread-safe enough for tests)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += max(0.0, seconds)


class World:
    """A MemoryCluster of nodes on a SimCloud, and reconcilers over both, all on one fake clock."""

    def __init__(
        self, sim: SimCloud | None = None, clock: FakeClock | None = None, **sim_options: object
    ) -> None:
        self.clock = clock or FakeClock()
        self.sim = sim or SimCloud(
            "c1",
            clock=self.clock,
            sleep=self.clock.sleep,
            **sim_options,  # type: ignore[arg-type]
        )
        self.cluster = MemoryCluster()
        self.metrics = Metrics()
        self._reconcilers: list[Reconciler] = []

    def add_nodes(self, count: int, start: int = 0) -> list[Node]:
        """Nodes n000, n001 … on instances i-000 …, podCIDR 10.244.<i>.0/24."""
        return [self.add_node(i) for i in range(start, start + count)]

    def add_node(self, i: int, **overrides: object) -> Node:
        provider_id = self.sim.add_instance(f"i-{i:03}")
        options: dict[str, object] = {"provider_id": provider_id, "pod_cidrs": [f"10.244.{i}.0/24"]}
        options.update(overrides)
        return self.cluster.add_node(f"n{i:03}", **options)  # type: ignore[arg-type]

    def node(self, name: str) -> Node:
        return self.cluster.get_node(name)

    def reconciler(self, fence: Fence | None = None, **options: object) -> Reconciler:
        """Wired as the controller wires it (the sim's observer and write guard set here)."""
        settings: dict[str, object] = {
            "cluster_cidrs": ["10.244.0.0/16"],
            "nodes": lambda: list(self.cluster.nodes().values()),
            "exclude_label": ("routectl.io/exclude", "true"),
            "concurrency": 4,
            "clock": self.clock,
            "sleep": self.clock.sleep,
            "base_delay_s": 0.05,
        }
        settings.update(options)
        rec = route_reconciler(self.cluster, self.sim, fence or Unfenced(), self.metrics, **settings)  # type: ignore[arg-type]
        self._reconcilers.append(rec)
        return rec

    def close(self) -> None:
        for rec in self._reconcilers:
            rec.close()

    def owned_routes(self, table: str = TABLE) -> dict[str, str]:
        """destination → instance of every owned route in the sim (listed or not yet visible)."""
        return {
            str(d): r.instance for d, r in self.sim.routes(table).items() if r.owner == self.sim.cluster_name
        }

    def desired_routes(self) -> dict[str, str]:
        """destination → instance for every block a non-excluded node owns (`ownership.owners`)."""
        nodes = self.cluster.nodes()
        ownership = owners(nodes.values(), ipam.validate(CLUSTER))
        return {
            str(block): self.sim.target_for(nodes[name].provider_id).instance
            for block, name in ownership.owners.items()
            if nodes[name].labels.get("routectl.io/exclude") != "true"
        }

    def condition(self, name: str) -> str:
        cond = self.node(name).network_unavailable
        return "unset" if cond is None else f"{cond.status}/{cond.reason}"

    def converge(self, rec: Reconciler, passes: int = 20) -> int:
        """Resync until converged; returns the number of passes (fails the test past `passes`)."""
        for attempt in range(1, passes + 1):
            if rec.resync():
                return attempt
            self.clock.sleep(1.0)
        raise AssertionError(f"not converged after {passes} passes")

"""A property test of the whole loop against hostile cluster state: the real Controller (informer cache,
work queue, tombstones, allocator, reconciler) over MemoryCluster and SimCloud, driven step by step.

Nodes join with random podCIDRs (none, duplicates, overlapping, outside, wrong size, reserved,
malformed) and random providerIDs (another network, malformed, missing instance, none); they are
deleted, re-created under the same name, given a podCIDR by hand, and the leader changes. After every
step, once the controller has worked off what is ready:

- no route points at a node that does not own its block;
- no route changes target twice while its block keeps the same owner;
- nothing outside the cluster CIDRs, and nothing foreign, is touched;
- every node marked `False/RouteCreated` owns all its podCIDRs and has its route in every table;
- under `--route-policy=upsert-only` nothing is ever deleted: every owned route once seen stays.

Deterministic and replayable: the seed is fixed (ROUTECTL_PROPERTY_SEED overrides it) and a failure
prints its `@reproduce_failure` blob.
"""

from __future__ import annotations

import os
import threading

from hypothesis import seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import ipam
from providers.emulators.simcloud import SimCloud
from routectl.cluster import list_all_nodes
from routectl.controller import Controller
from routectl.demo.harness import embedded_config
from routectl.demo.memcluster import MemoryCluster
from routectl.engine.ownership import owners
from routectl.metrics import Metrics

TABLES = ("rtb-a", "rtb-b")
CLUSTER_CIDR = "10.244.0.0/16"
RESERVED = "10.244.200.0/24"
NAMES = tuple(f"n{i}" for i in range(6))
POD_CIDRS = (
    (),
    ("10.244.1.0/24",),
    ("10.244.2.0/24",),
    ("10.244.3.0/24",),
    ("10.244.0.0/16",),  # wide: overlaps every block
    ("10.244.1.0/25",),  # wrong size
    ("192.168.7.0/24",),  # outside
    (RESERVED,),
    ("not-a-cidr",),
)
PROVIDER_IDS = ("home", "home", "other-network", "malformed", "missing-instance", "none")
FOREIGN = {"rtb-a": ("0.0.0.0/0", "10.244.250.0/24"), "rtb-b": ("10.244.251.0/24",)}
OWNED_OUTSIDE = "172.31.0.0/24"
"""A route carrying this cluster's mark outside the cluster CIDRs: never routectl's to touch."""


class HostileCluster(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.cluster = MemoryCluster()
        self.sim = SimCloud("c1", tables=TABLES)
        for table, destinations in FOREIGN.items():
            for destination in destinations:
                self.sim.add_route(table, destination, "i-foreign" if "/24" in destination else "")
        self.sim.add_route("rtb-a", OWNED_OUTSIDE, "i-elsewhere", owner="c1", node="long-gone")
        self.untouchable = {t: self._untouchable(t) for t in TABLES}
        self.controller: Controller | None = None
        self.allocate = True
        self.policy = "sync"
        self.seen_routes: set[tuple[str, ipam.Network]] = set()
        """(table, destination) of every owned route observed so far."""
        self.instances = 0
        self.history: dict[tuple[str, str], list[str]] = {}
        """(destination, owner uid) → the instances its route pointed at, each change appended."""

    # --- set-up and leader changes ------------------------------------------------------------------

    @initialize(allocate=st.booleans(), policy=st.sampled_from(["sync", "upsert-only"]))
    def start(self, allocate: bool, policy: str) -> None:
        self.allocate = allocate
        self.policy = policy
        self._lead()

    @rule()
    def leader_changes(self) -> None:
        """The old leader's process ends; a new one starts from nothing but the API and the cloud."""
        self._lead()

    def _lead(self) -> None:
        if self.controller is not None and self.controller.reconciler is not None:
            self.controller.reconciler.close()
        flags = (
            "--region=sim",
            "--leader-elect=false",
            f"--reserved-cidr={RESERVED}",
            f"--allocate-node-cidrs={str(self.allocate).lower()}",
            f"--route-policy={self.policy}",
        )
        cfg = embedded_config("aws", [CLUSTER_CIDR], cluster_name="c1", extra=flags)
        self.controller = Controller(cfg, self.cluster, self.sim, Metrics())
        # As a new leader starts: a synced cache and a rebuilt allocator first, then one full pass.
        self.controller.informer._relist(threading.Event())
        if self.controller.allocator is not None:
            self.controller.allocator.rebuild(list_all_nodes(self.cluster))
        self.controller.resync()
        self._settle()

    # --- hostile changes ------------------------------------------------------------------------------

    @rule(name=st.sampled_from(NAMES), cidrs=st.sampled_from(POD_CIDRS), pid=st.sampled_from(PROVIDER_IDS))
    def join(self, name: str, cidrs: tuple[str, ...], pid: str) -> None:
        if name in self.cluster.nodes():
            self.cluster.delete_node(name)  # re-created under the same name
        self.cluster.add_node(name, provider_id=self._provider_id(pid), pod_cidrs=cidrs)
        self._settle()

    @rule(name=st.sampled_from(NAMES), like=st.sampled_from(NAMES))
    def join_with_a_copy(self, name: str, like: str) -> None:
        """A node restored from a backup: another node's podCIDRs, its own instance."""
        source = self.cluster.nodes().get(like)
        if source is not None and name not in self.cluster.nodes():
            self.cluster.add_node(name, provider_id=self._provider_id("home"), pod_cidrs=source.pod_cidrs)
        self._settle()

    @rule(name=st.sampled_from(NAMES))
    def delete(self, name: str) -> None:
        if name in self.cluster.nodes():
            self.cluster.delete_node(name)
        self._settle()

    @rule(name=st.sampled_from(NAMES), cidrs=st.sampled_from(POD_CIDRS[1:]))
    def set_by_hand(self, name: str, cidrs: tuple[str, ...]) -> None:
        """Someone sets the podCIDR of a node that has none (only then does the API allow it)."""
        node = self.cluster.nodes().get(name)
        if node is not None and not node.pod_cidrs:
            self.cluster.update_node(name, pod_cidrs=cidrs)
        self._settle()

    @precondition(lambda self: self.controller is not None)
    @rule()
    def full_resync(self) -> None:
        assert self.controller is not None
        self.controller.resync()
        self._settle()

    # --- invariants ------------------------------------------------------------------------------------

    @invariant()
    def no_route_points_at_a_node_that_does_not_own_its_block(self) -> None:
        nodes = self.cluster.nodes()
        ownership = owners(nodes.values(), self._rules())
        on = {self._instance(n.provider_id): n.name for n in nodes.values() if self._instance(n.provider_id)}
        for table in TABLES:
            for destination, route in self._ours(table).items():
                node = on.get(route.instance)
                if node is not None:
                    assert ownership.owners.get(destination) == node, (
                        f"{table}: {destination} -> {route.instance} ({node}), "
                        f"owner {ownership.owners.get(destination)}"
                    )

    @invariant()
    def no_route_changes_target_twice_for_the_same_owner(self) -> None:
        for (destination, uid), seen in self.history.items():
            assert len(seen) <= 2, f"{destination} (owner uid {uid}) went {' -> '.join(seen)}"

    @invariant()
    def nothing_outside_or_foreign_is_touched(self) -> None:
        assert self.sim.foreign_writes == []
        for table in TABLES:
            assert self._untouchable(table) == self.untouchable[table]

    @invariant()
    def a_routed_node_owns_its_podcidrs_and_has_its_route_in_every_table(self) -> None:
        nodes = self.cluster.nodes()
        ownership = owners(nodes.values(), self._rules())
        for node in nodes.values():
            cond = node.network_unavailable
            if cond is None or (cond.status, cond.reason) != ("False", "RouteCreated"):
                continue
            assert ownership.rejected(node.name) == (), (
                f"{node.name} is routed with {ownership.rejected(node.name)}"
            )
            assert ownership.of(node.name), f"{node.name} is routed without a block"
            for table in TABLES:
                for block in ownership.of(node.name):
                    route = self._ours(table).get(block)
                    assert route is not None, f"{node.name} is routed but {block} is missing in {table}"
                    assert route.instance == self._instance(node.provider_id), (
                        f"{table}: {block} -> {route.instance}"
                    )

    @invariant()
    def upsert_only_never_deletes(self) -> None:
        if self.policy != "upsert-only":
            return
        assert self.sim.calls["delete_routes"] == 0
        present = {(t, d) for t in TABLES for d in self._ours(t)}
        assert self.seen_routes <= present, f"gone under upsert-only: {sorted(self.seen_routes - present)}"

    def teardown(self) -> None:
        if self.controller is not None and self.controller.reconciler is not None:
            self.controller.reconciler.close()

    # --- helpers ---------------------------------------------------------------------------------------

    def _settle(self) -> None:
        """End of every step: the controller catches up, then the routes are recorded for the checks."""
        self._catch_up()
        self._observe()

    def _catch_up(self) -> None:
        """What the controller's informer and workers would do: fold in every change, then sync each
        queued node that is ready (a failed one is retried with backoff, at a later step)."""
        assert self.controller is not None
        controller = self.controller
        controller.informer._relist(threading.Event())  # a fresh list: emits every change since the last
        for _ in range(10 * len(NAMES)):
            key = controller.queue.get(timeout_s=0)
            if key is None:
                return
            controller.process(key)

    def _observe(self) -> None:
        """Record, per block and owner, each new target its route shows."""
        nodes = self.cluster.nodes()
        ownership = owners(nodes.values(), self._rules())
        for table in TABLES:
            for destination, route in self._ours(table).items():
                self.seen_routes.add((table, destination))
                owner = ownership.owners.get(destination)
                if owner is None:
                    continue
                seen = self.history.setdefault((f"{table} {destination}", nodes[owner].uid), [])
                if not seen or seen[-1] != route.instance:
                    seen.append(route.instance)

    def _provider_id(self, kind: str) -> str:
        self.instances += 1
        instance = f"i-{self.instances:03}"
        if kind == "home":
            return self.sim.add_instance(instance)
        if kind == "other-network":
            return self.sim.add_instance(instance, network="other-vpc")
        if kind == "missing-instance":
            return f"sim://zone-a/{instance}"
        return "bogus" if kind == "malformed" else ""

    def _instance(self, provider_id: str) -> str:
        try:
            return self.sim.target_for(provider_id).instance
        except Exception:
            return ""

    def _ours(self, table: str) -> dict[ipam.Network, object]:
        cluster = ipam.parse_cidr(CLUSTER_CIDR)
        return {
            d: r for d, r in self.sim.routes(table).items() if r.owner == "c1" and ipam.inside(d, [cluster])
        }

    def _untouchable(self, table: str) -> dict[str, tuple[str, str, str]]:
        cluster = ipam.parse_cidr(CLUSTER_CIDR)
        return {
            str(d): (r.instance, r.owner, r.next_hop)
            for d, r in self.sim.routes(table).items()
            if r.owner != "c1" or not ipam.inside(d, [cluster])
        }

    @staticmethod
    def _rules() -> ipam.PoolConfig:
        return ipam.validate([CLUSTER_CIDR], reserved=[RESERVED])


TestHostileCluster = seed(int(os.environ.get("ROUTECTL_PROPERTY_SEED", "14")))(HostileCluster.TestCase)
TestHostileCluster.settings = settings(
    max_examples=60, stateful_step_count=30, deadline=None, print_blob=True
)

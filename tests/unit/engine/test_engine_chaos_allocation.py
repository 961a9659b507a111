"""Chaos property test: several controller instances (LeaderElector + Allocator + a polling loop)
over one MemoryCluster, with leader pauses, hung, slow and unanswered lease updates, kills, graceful
stops, restarts, ambiguous podCIDR patches (applied, lost, or applied late), and nodes joining, being
deleted and re-created under reused names.

Time is simulated: one deterministic loop advances a shared clock, and each instance reads it through
its own offset monotonic clock and its own skewed wall clock (so no instance can compare timestamps
with another). Invariants after every step: no two Nodes share an address, every podCIDR is a node
block of the pool, and at most one instance may write. At the end, with chaos stopped, every node that
is not excluded has one block per family. Every podCIDR patch reaching the server must come from the
lease holder of that moment, which catches a stale leader whose writes the fence failed to stop.

Replay a failure with ROUTECTL_CHAOS_SEED=<seed> (the seed is printed and in every message).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pytest

from ipam import CIDRPool, Network
from routectl.cluster import AmbiguousError, ClusterError, Lease, Node
from routectl.config import LeaderElection
from routectl.demo.memcluster import MemoryCluster
from routectl.engine.allocator import AllocationFailed, Allocator
from routectl.fence import LostLeadership
from routectl.kube.leader import JITTER_FACTOR, LeaderElector
from routectl.metrics import Metrics

CLUSTER_CIDRS = ("10.0.0.0/24", "fd00::/120")
MASK_V4, MASK_V6 = 28, 124  # 16 blocks per family: the pool wraps and reuses blocks
EXCLUDE = ("routectl.io/exclude", "true")
LEASE_S, RENEW_S, RETRY_S = 15.0, 10.0, 2.0
SLOTS = 3  # instances running at any time (a dead one is replaced after a delay)
CHAOS_STEPS, SETTLE_STEPS = 500, 150
NAMES = tuple(f"node-{i:02}" for i in range(20))
MAX_LIVE_NODES = 12
SEEDS = (
    [int(os.environ["ROUTECTL_CHAOS_SEED"])] if os.environ.get("ROUTECTL_CHAOS_SEED") else list(range(1, 21))
)


class SimTime:
    now = 0.0

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FlakyCluster(MemoryCluster):
    """MemoryCluster with the faults a real API server connection has, and a stale-writer check.

    podCIDR patches may time out after being applied, before being seen, or be applied only after the
    client gave up ("late"). Lease updates may hang, be slow, or lose their response. Every podCIDR
    patch that reaches the server must come from the instance holding the lease there.
    """

    def __init__(self, time: SimTime) -> None:
        super().__init__()
        self.time = time
        self.patch_faults: deque[str] = deque()
        self.lease_faults: deque[tuple[str, float]] = deque()
        self.late: list[tuple[str, Sequence[str]]] = []
        self.writer = ""
        """Identity of the instance whose step is running (the sim is single-threaded)."""

    def set_pod_cidrs(self, name: str, cidrs: Sequence[str]) -> Node:
        fault = self.patch_faults.popleft() if self.patch_faults else ""
        if fault == "lost":
            raise AmbiguousError(f"set_pod_cidrs {name}: timed out before the server saw it")
        if fault == "late":
            self.late.append((name, cidrs))
            raise AmbiguousError(f"set_pod_cidrs {name}: timed out; the server applies it later")
        node = self.apply(name, cidrs)
        if fault == "applied":
            raise AmbiguousError(f"set_pod_cidrs {name}: timed out after the server applied it")
        return node

    def apply(self, name: str, cidrs: Sequence[str]) -> Node:
        holder = (self.lease("kube-system", "routectl") or Lease("", "")).holder
        assert holder == self.writer, f"{self.writer} patched {name} while {holder!r} holds the lease"
        return super().set_pod_cidrs(name, cidrs)

    def land_late_patches(self) -> None:
        """Late patches reach the server (right after their sender's step; refused if moot)."""
        for name, cidrs in self.late:
            # Node gone or podCIDRs already set: the server's precondition refuses it.
            with contextlib.suppress(ClusterError):
                self.apply(name, cidrs)
        self.late.clear()

    def update_lease(self, lease: Lease, timeout_s: float) -> Lease:
        fault, seconds = self.lease_faults.popleft() if self.lease_faults else ("", 0.0)
        if fault == "hang":
            self.time.advance(timeout_s)
            raise AmbiguousError("update_lease: request timed out")
        if fault == "slow request":
            self.time.advance(seconds)
        written = super().update_lease(lease, timeout_s)
        if fault == "lost response":
            self.time.advance(timeout_s)
            raise AmbiguousError("update_lease: timed out waiting for the response")
        return written


@dataclass
class Instance:
    """One controller process: elects, and while leading rebuilds once then polls and syncs."""

    elector: LeaderElector
    clock: Callable[[], float]
    next_attempt: float = 0.0
    paused_until: float = 0.0
    allocator: Allocator | None = None
    known: dict[str, Node] = field(default_factory=dict)


class Simulation:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.time = SimTime()
        self.cluster = FlakyCluster(self.time)
        self.instances: list[Instance] = []
        self.restarts: list[float] = []
        self.serial = 0
        self.stats: Counter[str] = Counter()
        for _ in range(SLOTS):
            self.start_instance()

    # --- instances -----------------------------------------------------------------------------

    def start_instance(self) -> None:
        self.serial += 1
        offset = self.rng.uniform(-1e6, 1e6)
        skew = self.rng.uniform(-3600, 3600)
        clock: Callable[[], float] = lambda: self.time.now + offset  # noqa: E731
        settings = LeaderElection(
            enabled=True,
            lease_duration_s=LEASE_S,
            renew_deadline_s=RENEW_S,
            retry_period_s=RETRY_S,
            namespace="kube-system",
            name="routectl",
            identity=f"instance-{self.serial}",
        )
        elector = LeaderElector(
            self.cluster,
            settings,
            Metrics(),
            clock=clock,
            wall=lambda: self.time.now + skew + 1.7e9,
            rng=random.Random(self.rng.random()),
        )
        self.instances.append(Instance(elector, clock, next_attempt=clock()))
        self.stats["instances"] += 1

    def end(self, instance: Instance, why: str) -> None:
        """The process exits (any way); the supervisor starts a fresh one a little later."""
        self.instances.remove(instance)
        self.restarts.append(self.time.now + self.rng.uniform(1, 20))
        self.stats[why] += 1

    def step_instance(self, inst: Instance) -> None:
        if inst.paused_until > self.time.now:
            return
        elector = inst.elector
        if inst.allocator is None:
            if inst.clock() < inst.next_attempt:
                return
            if not elector.try_acquire_or_renew():
                inst.next_attempt = inst.clock() + RETRY_S * (1 + self.rng.random() * JITTER_FACTOR)
                return
            self.stats["elections won"] += 1
            pool = CIDRPool(CLUSTER_CIDRS, node_mask_v4=MASK_V4, node_mask_v6=MASK_V6)
            inst.allocator = Allocator(
                self.cluster, pool, elector, Metrics(), exclude_label=EXCLUDE, clock=inst.clock
            )
            listed = self.cluster.list_nodes(limit=0).items
            inst.allocator.rebuild(listed)
            inst.known = {n.name: n for n in listed}
            inst.next_attempt = inst.clock() + RETRY_S
        # The elector's renew loop and the workers are separate threads in a real process: after a
        # pause either may run first, so the fence (not this loop) must stop a stale leader's writes.
        for action in self.rng.sample((self.renew, self.poll), 2):
            if not action(inst, inst.allocator):
                return

    def renew(self, inst: Instance, allocator: Allocator) -> bool:
        if inst.clock() >= inst.next_attempt:
            inst.elector.try_acquire_or_renew()
            inst.next_attempt = inst.clock() + RETRY_S
        if inst.elector.is_leader():
            return True
        self.end(inst, "leaders lost")
        return False

    def poll(self, inst: Instance, allocator: Allocator) -> bool:
        """The controller loop in miniature: tombstones released, every node synced.

        Like an informer cache the view may lag: some polls reuse the previous listing.
        """
        if self.rng.random() < 0.3:
            current = inst.known
        else:
            current = {n.name: n for n in self.cluster.list_nodes(limit=0).items}
        for name, old in list(inst.known.items()):
            if name not in current or current[name].uid != old.uid:
                allocator.release(old)
        inst.known = current
        for node in current.values():
            try:
                allocator.sync(node)
            except AllocationFailed:
                self.stats["allocations failed (retried)"] += 1
            except LostLeadership:
                self.end(inst, "writes refused by the fence")
                return False
        return True

    # --- chaos ---------------------------------------------------------------------------------

    def chaos(self) -> None:
        rng, now = self.rng, self.time.now
        live = self.cluster.nodes()
        roll = rng.random()
        if roll < 0.20 and len(live) < MAX_LIVE_NODES:
            name = rng.choice([n for n in NAMES if n not in live])
            labels = dict([EXCLUDE]) if rng.random() < 0.1 else {}
            self.cluster.add_node(name, labels=labels)
            self.stats["nodes joined"] += 1
        elif roll < 0.28 and live:
            name = rng.choice(sorted(live))
            if live[name].deleting or rng.random() < 0.5:
                self.cluster.delete_node(name)
                self.stats["nodes deleted"] += 1
            else:
                self.cluster.mark_deleting(name)
        elif roll < 0.33 and self.instances:
            # Mostly the leader, often past the lease duration: it wakes up to a new leader.
            leading = [i for i in self.instances if i.elector.is_leader()]
            inst = rng.choice(leading if leading and rng.random() < 0.7 else self.instances)
            inst.paused_until = now + rng.uniform(3, 40)
            self.stats["pauses"] += 1
        elif roll < 0.37:
            fault = rng.choice(("hang", "slow request", "lost response"))
            self.cluster.lease_faults.append((fault, rng.uniform(0.5, 4)))
            self.stats["faulty lease updates"] += 1
        elif roll < 0.41:
            self.cluster.patch_faults.append(rng.choice(("applied", "lost", "late")))
            self.stats["ambiguous podCIDR patches"] += 1
        elif roll < 0.44 and self.instances:
            self.end(rng.choice(self.instances), "kills")
        elif roll < 0.46:
            leading = [i for i in self.instances if i.elector.is_leader()]
            if leading:
                leading[0].elector.release()  # SIGTERM: workers stopped, lease handed back
                self.end(leading[0], "graceful stops")

    # --- the loop ------------------------------------------------------------------------------

    def step(self, *, chaotic: bool) -> None:
        self.time.advance(self.rng.uniform(0.2, 1.5))
        if chaotic:
            self.chaos()
        due = [t for t in self.restarts if t <= self.time.now]
        for t in due:
            self.restarts.remove(t)
            self.start_instance()
        for inst in self.rng.sample(self.instances, len(self.instances)):
            if inst in self.instances:
                self.cluster.writer = inst.elector.identity
                self.step_instance(inst)
                self.cluster.land_late_patches()
        self.check_invariants()

    def check_invariants(self) -> None:
        where = f"seed={self.seed} t={self.time.now:.1f}"
        writers = [i.elector.identity for i in self.instances if i.elector.is_leader()]
        assert len(writers) <= 1, f"{where}: two instances may write: {writers}"
        blocks: list[tuple[Network, str]] = []
        for node in self.cluster.nodes().values():
            for text in node.pod_cidrs:
                net = ipaddress.ip_network(text)
                assert in_pool(net), f"{where}: {node.name} has {net}, not a block of the pool"
                blocks.append((net, node.name))
        for i, (a, owner_a) in enumerate(blocks):
            for b, owner_b in blocks[i + 1 :]:
                assert not a.overlaps(b), f"{where}: {owner_a} {a} and {owner_b} {b} overlap"

    def settle(self) -> None:
        for name, node in self.cluster.nodes().items():
            if node.deleting:
                self.cluster.delete_node(name)
        self.cluster.patch_faults.clear()
        self.cluster.lease_faults.clear()
        for inst in self.instances:
            inst.paused_until = 0.0
        for _ in range(SETTLE_STEPS):
            self.step(chaotic=False)
            if not self.waiting():
                return

    def waiting(self) -> list[str]:
        return [
            n.name
            for n in self.cluster.nodes().values()
            if n.labels.get(EXCLUDE[0]) != EXCLUDE[1] and len(n.pod_cidrs) != len(CLUSTER_CIDRS)
        ]


def in_pool(net: Network) -> bool:
    mask = MASK_V4 if net.version == 4 else MASK_V6
    return net.prefixlen == mask and any(
        net.version == c.version and net.subnet_of(c)  # type: ignore[arg-type]
        for c in map(ipaddress.ip_network, CLUSTER_CIDRS)
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_chaos_never_shares_a_block_and_every_node_ends_up_with_one(seed: int) -> None:
    print(f"chaos seed={seed} (replay: ROUTECTL_CHAOS_SEED={seed})")
    sim = Simulation(seed)
    for _ in range(CHAOS_STEPS):
        sim.step(chaotic=True)
    sim.settle()
    print(f"chaos seed={seed}: {dict(sorted(sim.stats.items()))}, {len(sim.cluster.nodes())} nodes")

    assert sim.waiting() == [], f"seed={seed}: nodes without podCIDRs after settling"
    assert sim.stats["elections won"] >= 2, f"seed={seed}: leadership never changed hands"

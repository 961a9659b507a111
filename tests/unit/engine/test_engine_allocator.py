"""Allocator: rebuild from existing podCIDRs, assignment, release and every failure path, on MemoryCluster."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import pytest

from ipam import CIDRPool
from routectl.cluster import AmbiguousError, ForbiddenError, Node
from routectl.demo.memcluster import MemoryCluster
from routectl.engine.allocator import AllocationFailed, Allocator
from routectl.fence import LostLeadership
from routectl.metrics import Metrics
from routectl.reasons import Reason

EXCLUDE = ("routectl.io/exclude", "true")
BLOCKS = ("10.0.0.0/26", "10.0.0.64/26", "10.0.0.128/26", "10.0.0.192/26")


class Fence:
    def __init__(self) -> None:
        self.closed = False

    def check(self) -> None:
        if self.closed:
            raise LostLeadership("test fence closed")


class Setup:
    """One cluster, one allocator over a small pool (four IPv4 /26 blocks unless told otherwise)."""

    def __init__(
        self, cidrs: Sequence[str] = ("10.0.0.0/24",), mask_v4: int = 26, mask_v6: int | None = None
    ) -> None:
        self.cluster = MemoryCluster()
        self.fence = Fence()
        self.metrics = Metrics()
        self.pool = CIDRPool(cidrs, node_mask_v4=mask_v4, node_mask_v6=mask_v6)
        self.allocator = Allocator(self.cluster, self.pool, self.fence, self.metrics, exclude_label=EXCLUDE)

    def node(self, name: str, pod_cidrs: Sequence[str] = (), **labels: str) -> Node:
        return self.cluster.add_node(name, pod_cidrs=pod_cidrs, labels=labels)

    def assign(self, name: str) -> tuple[str, ...]:
        """Add a node and sync it; its podCIDRs."""
        return self.allocator.sync(self.node(name)).pod_cidrs

    def gone(self, name: str) -> None:
        """The node object is deleted and the controller reports its tombstone."""
        tombstone = self.cluster.nodes()[name]
        self.cluster.delete_node(name)
        self.allocator.release(tombstone)

    def events(self, reason: Reason) -> list[tuple[str, str]]:
        return [(e.node, e.message) for e in self.cluster.events if e.reason == reason.value]

    def sample(self, metric: str, **labels: str) -> float | None:
        return self.metrics.registry.get_sample_value(metric, labels)


def raise_after(apply: Callable[[], object]) -> Callable[[], None]:
    """A fault: `apply` happens on the server, then the client sees a timeout."""

    def fault() -> None:
        apply()
        raise AmbiguousError("set_pod_cidrs: request timed out")

    return fault


def times_out() -> None:
    raise AmbiguousError("set_pod_cidrs: request timed out")


# --- assignment --------------------------------------------------------------------------------


def test_a_new_node_gets_one_block_and_a_cidr_assigned_event() -> None:
    s = Setup()
    assert s.assign("n1") == (BLOCKS[0],)
    assert s.cluster.nodes()["n1"].pod_cidrs == (BLOCKS[0],)
    assert s.events(Reason.CIDR_ASSIGNED) == [("n1", f"assigned podCIDRs {BLOCKS[0]}")]


def test_a_dual_stack_node_gets_one_block_per_family() -> None:
    s = Setup(["10.0.0.0/24", "fd00::/48"])
    assert s.assign("n1") == ("10.0.0.0/26", "fd00::/64")
    assert s.assign("n2") == ("10.0.0.64/26", "fd00:0:0:1::/64")


def test_an_excluded_node_is_left_untouched() -> None:
    s = Setup()
    node = s.node("n1", **{EXCLUDE[0]: EXCLUDE[1]})
    assert s.allocator.sync(node) == node
    assert "set_pod_cidrs" not in s.cluster.calls
    assert s.cluster.events == []


def test_a_node_being_deleted_gets_no_podcidr() -> None:
    s = Setup()
    s.node("n1")
    assert s.allocator.sync(s.cluster.mark_deleting("n1")).pod_cidrs == ()
    assert "set_pod_cidrs" not in s.cluster.calls


def test_a_stale_copy_of_a_node_we_assigned_is_re_read_not_assigned_again() -> None:
    s = Setup()
    stale = s.node("n1")
    s.allocator.sync(stale)
    assert s.allocator.sync(stale).pod_cidrs == (BLOCKS[0],)
    assert s.cluster.calls["set_pod_cidrs"] == 1
    assert s.sample("routectl_ipam_cidrs_used", cidr="10.0.0.0/24") == 1


def test_concurrent_syncs_never_hand_one_block_to_two_nodes() -> None:
    s = Setup(["10.0.0.0/16"], mask_v4=24)
    nodes = [s.node(f"n{i:02}") for i in range(60)]
    workers = [
        threading.Thread(target=lambda part=nodes[k::6]: [s.allocator.sync(n) for n in part])
        for k in range(6)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assigned = [n.pod_cidrs for n in s.cluster.nodes().values()]
    assert all(len(cidrs) == 1 for cidrs in assigned)
    assert len(set(assigned)) == 60


# --- existing podCIDRs (restart) ---------------------------------------------------------------


def test_restart_occupies_existing_podcidrs_before_handing_out_new_ones() -> None:
    s = Setup()
    s.node("n1", [BLOCKS[0]])
    s.node("n2", [BLOCKS[2]])
    s.allocator.rebuild(s.cluster.nodes().values())
    assert s.assign("n3") == (BLOCKS[1],)
    assert s.assign("n4") == (BLOCKS[3],)
    assert s.events(Reason.CIDR_NOT_AVAILABLE) == []


def test_a_foreign_podcidr_is_reported_and_left_alone() -> None:
    s = Setup()
    foreign = s.node("n1", ["192.168.7.0/24"])
    s.allocator.rebuild([foreign])
    s.allocator.sync(foreign)  # seen again: not reported twice

    assert s.cluster.nodes()["n1"].pod_cidrs == ("192.168.7.0/24",)
    [(node, message)] = s.events(Reason.CIDR_NOT_AVAILABLE)
    assert node == "n1"
    assert "192.168.7.0/24" in message
    assert s.sample("routectl_ipam_cidr_conflicts_total") == 1
    assert s.assign("n2") == (BLOCKS[0],)


def test_one_bad_family_does_not_free_the_other() -> None:
    s = Setup(["10.0.0.0/24", "fd00::/48"])
    s.allocator.rebuild([s.node("n1", [BLOCKS[0], "2001:db8::/64"])])
    assert s.sample("routectl_ipam_cidr_conflicts_total") == 1
    assert s.assign("n2") == (BLOCKS[1], "fd00::/64")


def test_overlapping_podcidrs_stay_with_the_first_node_and_are_never_handed_out() -> None:
    s = Setup()
    s.node("n1", [BLOCKS[0]])
    s.node("n2", [BLOCKS[0]])
    s.allocator.rebuild(s.cluster.nodes().values())

    [(node, message)] = s.events(Reason.CIDR_NOT_AVAILABLE)
    assert node == "n2"
    assert "belongs to node n1" in message
    assert s.sample("routectl_ipam_cidr_conflicts_total") == 1
    assert [s.assign(f"n{i}") for i in (3, 4, 5)] == [(b,) for b in BLOCKS[1:]]
    # n1 goes away: its block is still n2's, so it must not become free.
    s.gone("n1")
    with pytest.raises(AllocationFailed):
        s.assign("n6")
    s.gone("n2")
    assert s.allocator.sync(s.cluster.nodes()["n6"]).pod_cidrs == (BLOCKS[0],)


# --- release and reuse -------------------------------------------------------------------------


def test_a_deleted_nodes_block_is_reused_only_after_the_cursor_wraps() -> None:
    s = Setup()
    s.assign("n1")
    s.assign("n2")
    s.gone("n1")
    assert [s.assign(n) for n in ("n3", "n4", "n5")] == [(BLOCKS[2],), (BLOCKS[3],), (BLOCKS[0],)]


def test_a_node_being_deleted_keeps_its_block_until_the_object_is_gone() -> None:
    s = Setup()
    s.assign("n1")
    deleting = s.cluster.mark_deleting("n1")
    assert s.allocator.sync(deleting).pod_cidrs == (BLOCKS[0],)
    assert [s.assign(n) for n in ("n2", "n3", "n4")] == [(b,) for b in BLOCKS[1:]]
    with pytest.raises(AllocationFailed):
        s.assign("n5")
    s.gone("n1")
    assert s.allocator.sync(s.cluster.nodes()["n5"]).pod_cidrs == (BLOCKS[0],)


def test_a_recreated_node_gets_a_block_and_the_old_tombstone_frees_nothing_more() -> None:
    s = Setup()
    s.assign("n1")
    tombstone = s.cluster.nodes()["n1"]
    s.cluster.delete_node("n1")
    assert s.assign("n1") == (BLOCKS[1],)
    s.allocator.release(tombstone)  # late tombstone of the old object
    assert s.sample("routectl_ipam_cidrs_used", cidr="10.0.0.0/24") == 1


# --- failures ----------------------------------------------------------------------------------


def test_exhaustion_reports_cidr_not_available_and_succeeds_after_a_release() -> None:
    s = Setup()
    for name in ("n1", "n2", "n3", "n4"):
        s.assign(name)
    with pytest.raises(AllocationFailed):
        s.assign("n5")
    [(node, message)] = s.events(Reason.CIDR_NOT_AVAILABLE)
    assert node == "n5"
    assert "no podCIDR available" in message
    s.gone("n2")
    assert s.allocator.sync(s.cluster.nodes()["n5"]).pod_cidrs == (BLOCKS[1],)


def test_exhausting_one_family_takes_nothing_from_the_other() -> None:
    s = Setup(["10.0.0.0/24", "fd00::/63"], mask_v6=64)
    s.assign("n1")
    s.assign("n2")
    with pytest.raises(AllocationFailed):
        s.assign("n3")
    assert s.sample("routectl_ipam_cidrs_used", cidr="10.0.0.0/24") == 2


def test_ambiguous_patch_that_applied_keeps_the_block() -> None:
    s = Setup()
    s.cluster.inject(
        "set_pod_cidrs", raise_after(lambda: s.cluster.update_node("n1", pod_cidrs=(BLOCKS[0],)))
    )
    assert s.assign("n1") == (BLOCKS[0],)
    assert s.events(Reason.CIDR_ASSIGNED) == [("n1", f"assigned podCIDRs {BLOCKS[0]}")]
    assert s.assign("n2") == (BLOCKS[1],)


def test_ambiguous_patch_that_did_not_apply_keeps_the_block_for_that_node_only() -> None:
    s = Setup()
    s.cluster.inject("set_pod_cidrs", times_out)
    with pytest.raises(AllocationFailed, match="stay reserved"):
        s.assign("n1")
    assert s.assign("n2") == (BLOCKS[1],)
    # The retry re-sends the same block: a late first write and the retry agree.
    assert s.allocator.sync(s.cluster.nodes()["n1"]).pod_cidrs == (BLOCKS[0],)
    assert s.sample("routectl_ipam_cidrs_used", cidr="10.0.0.0/24") == 2


def test_ambiguous_patch_whose_node_got_other_cidrs_frees_ours_and_occupies_theirs() -> None:
    s = Setup()
    s.cluster.inject("set_pod_cidrs", times_out)
    with pytest.raises(AllocationFailed):
        s.assign("n1")
    other = s.cluster.update_node("n1", pod_cidrs=(BLOCKS[3],))  # another writer

    assert s.allocator.sync(other).pod_cidrs == (BLOCKS[3],)

    assert s.sample("routectl_ipam_cidrs_used", cidr="10.0.0.0/24") == 1
    assert [s.assign(n) for n in ("n2", "n3", "n4")] == [(BLOCKS[1],), (BLOCKS[2],), (BLOCKS[0],)]


def test_a_conflict_frees_our_block_and_occupies_what_the_node_has() -> None:
    s = Setup()

    def someone_else_sets_it_first() -> None:
        s.cluster.update_node("n1", pod_cidrs=(BLOCKS[2],))

    s.cluster.inject("set_pod_cidrs", someone_else_sets_it_first)

    assert s.assign("n1") == (BLOCKS[2],)

    assert s.sample("routectl_ipam_cidrs_used", cidr="10.0.0.0/24") == 1
    assert [s.assign(n) for n in ("n2", "n3", "n4")] == [(BLOCKS[1],), (BLOCKS[3],), (BLOCKS[0],)]


def test_a_closed_fence_sends_no_patch_and_frees_the_block() -> None:
    s = Setup()
    s.fence.closed = True
    with pytest.raises(LostLeadership):
        s.assign("n1")
    assert "set_pod_cidrs" not in s.cluster.calls
    assert s.cluster.nodes()["n1"].pod_cidrs == ()
    assert s.sample("routectl_ipam_cidrs_used", cidr="10.0.0.0/24") == 0


def test_other_patch_failures_are_reported_and_free_the_block() -> None:
    s = Setup()

    def forbidden() -> None:
        raise ForbiddenError("nodes n1 is forbidden: cannot patch resource nodes")

    s.cluster.inject("set_pod_cidrs", forbidden)
    with pytest.raises(AllocationFailed):
        s.assign("n1")
    [(node, message)] = s.events(Reason.CIDR_ASSIGNMENT_FAILED)
    assert node == "n1"
    assert "forbidden" in message
    assert s.sample("routectl_ipam_cidrs_used", cidr="10.0.0.0/24") == 0


def test_capacity_and_use_gauges_follow_the_pool() -> None:
    s = Setup(["10.0.0.0/24", "fd00::/48"])
    assert s.sample("routectl_ipam_cidrs_capacity", cidr="10.0.0.0/24") == 4
    assert s.sample("routectl_ipam_cidrs_capacity", cidr="fd00::/48") == 2**16
    s.assign("n1")
    assert s.sample("routectl_ipam_cidrs_used", cidr="fd00::/48") == 1
    s.gone("n1")
    assert s.sample("routectl_ipam_cidrs_used", cidr="10.0.0.0/24") == 0


def test_a_recreated_namesake_never_gets_the_block_of_the_object_whose_routes_are_still_pending() -> None:
    setup = Setup()
    (first,) = setup.assign("a")
    old = setup.cluster.nodes()["a"]
    setup.cluster.delete_node("a")  # the tombstone's routes are not removed yet: no release
    for name in ("b", "c", "d"):
        setup.assign(name)

    setup.node("a")
    with pytest.raises(AllocationFailed):  # the only free block would be the old object's
        setup.allocator.sync(setup.cluster.get_node("a"))
    setup.allocator.release(old)

    assert setup.allocator.sync(setup.cluster.get_node("a")).pod_cidrs == (first,)

"""The reconciler (planner + executor + status) on the simulated cloud."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

import pytest

from providers import Limits, Outcome
from providers.emulators.simcloud import Bucket, Fault, SimCloud
from routectl.cluster import Condition
from routectl.fence import LostLeadership
from routectl.reasons import Reason
from tests.unit.builders import TABLE, FakeClock, World


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    yield w
    w.close()


def sample(world: World, name: str, labels: dict[str, str] | None = None) -> float:
    value = world.metrics.registry.get_sample_value(name, labels or {})
    return 0.0 if value is None else value


# --- convergence ----------------------------------------------------------------------------------


def test_resync_creates_one_route_per_node_and_marks_them_ready(world: World) -> None:
    world.add_nodes(5)
    assert world.reconciler().resync() is True
    assert world.owned_routes() == world.desired_routes()
    assert {world.condition(n) for n in world.cluster.nodes()} == {"False/RouteCreated"}
    assert world.sim.calls["list_routes"] == 1
    assert sample(world, "routectl_routes_programmed", {"table": TABLE}) == 5
    assert sample(world, "routectl_routes_desired") == 5
    assert sample(world, "routectl_node_route_latency_seconds_count") == 5
    calls = {"provider": "sim", "api": "create_routes", "code": "200"}
    assert sample(world, "routectl_cloud_api_requests_total", calls) == 5


def test_sync_node_lists_once_then_works_from_the_view(world: World) -> None:
    nodes = world.add_nodes(3)
    rec = world.reconciler()
    assert all(rec.sync_node(n) for n in nodes)
    assert world.sim.calls["list_routes"] == 1
    assert world.owned_routes() == world.desired_routes()
    assert world.condition("n002") == "False/RouteCreated"


def test_second_resync_of_a_converged_cluster_writes_nothing(world: World) -> None:
    world.add_nodes(4)
    rec = world.reconciler()
    rec.resync()
    writes = world.sim.calls["create_routes"]
    conditions_written = world.cluster.calls["set_network_unavailable"]
    assert rec.resync() is True
    assert world.sim.calls["create_routes"] == writes
    assert world.cluster.calls["set_network_unavailable"] == conditions_written


def test_node_route_latency_is_observed_from_podcidr_seen_to_verified(world: World) -> None:
    node = world.add_node(1)
    world.sim.inject("create_routes", *[Fault.SERVER_ERROR] * 4)
    rec = world.reconciler()
    assert rec.sync_node(node) is False
    world.clock.sleep(10)
    assert rec.sync_node(world.node("n001")) is True
    assert sample(world, "routectl_node_route_latency_seconds_count") == 1
    assert sample(world, "routectl_node_route_latency_seconds_sum") >= 10


# --- causes, conditions and events -----------------------------------------------------------------


def test_node_without_podcidr_or_providerid_is_not_ready_with_the_cause(world: World) -> None:
    world.add_node(1, pod_cidrs=[])
    world.add_node(2, provider_id="")
    world.add_node(3, provider_id="aws:///zone/i-3")
    assert world.reconciler().resync() is False
    causes = {n: world.node(n).network_unavailable for n in ("n001", "n002", "n003")}
    assert {n: c.message if c else "" for n, c in causes.items()} == {
        "n001": "node has no podCIDR",
        "n002": "node has no providerID",
        "n003": "providerID 'aws:///zone/i-3': want sim://<zone>/<instance>",
    }
    assert world.owned_routes() == {}


def test_foreign_route_on_a_node_cidr_is_reported_once_and_never_touched(world: World) -> None:
    world.add_nodes(2)
    world.sim.add_route(TABLE, "10.244.1.0/24", "i-other")
    before = world.sim.routes(TABLE)
    rec = world.reconciler()
    assert rec.resync() is False
    assert rec.resync() is False
    assert world.sim.foreign_writes == []
    assert world.sim.routes(TABLE)[next(iter(before))] == next(iter(before.values()))
    assert world.condition("n001") == "True/NoRouteCreated"
    conflicts = [e for e in world.cluster.events if e.reason == Reason.ROUTE_CONFLICT]
    assert [(e.node, e.count) for e in conflicts] == [("n001", 1)]
    assert world.condition("n000") == "False/RouteCreated"


def test_quota_exhaustion_blocks_the_last_nodes_without_attempting_them() -> None:
    w = World(quota=5)
    try:
        w.add_nodes(8)
        assert w.reconciler().resync() is False
        assert w.sim.calls["create_routes"] == 5
        ready = sorted(n for n in w.cluster.nodes() if w.condition(n) == "False/RouteCreated")
        assert ready == ["n000", "n001", "n002", "n003", "n004"]
        quota_events = {e.node for e in w.cluster.events if e.reason == Reason.ROUTE_QUOTA_EXCEEDED}
        assert quota_events == {"n005", "n006", "n007"}
        assert "quota" in (w.node("n007").network_unavailable or Condition("", "", "")).message
        assert sample(w, "routectl_route_table_quota", {"table": TABLE}) == 5
    finally:
        w.close()


def test_table_gauges_count_every_route_conflicts_and_unrouted_nodes() -> None:
    """Capacity left is the quota minus every route in the table, foreign ones included, and follows
    our own writes; conflicts and unrouted nodes are counted by the full pass."""
    w = World(quota=10)
    try:
        nodes = w.add_nodes(3)
        w.sim.add_route(TABLE, "0.0.0.0/0", next_hop="igw-1")
        w.sim.add_route(TABLE, "10.244.1.0/24", "i-other")  # in n001's way
        rec = w.reconciler()
        assert rec.resync() is False
        left = {"table": TABLE, "family": "all"}
        assert sample(w, "routectl_route_table_capacity_remaining", left) == 10 - 4
        assert sample(w, "routectl_route_conflicts", {"table": TABLE}) == 1
        assert sample(w, "routectl_nodes_network_unavailable") == 1
        assert sample(w, "routectl_routes_programmed", {"table": TABLE}) == 2

        w.cluster.delete_node("n002")
        assert rec.remove_node(nodes[2]) is True
        assert sample(w, "routectl_route_table_capacity_remaining", left) == 10 - 3
    finally:
        w.close()


def test_capacity_left_is_per_ip_family_where_the_cloud_counts_them_apart() -> None:
    clock = FakeClock()
    limits = Limits(1000, 1000, 1000, 1000, routes_per_table=5, quota_per_family=True)
    w = World(sim=SimCloud("c1", limits=limits, clock=clock, sleep=clock.sleep), clock=clock)
    try:
        for i in range(2):
            w.add_node(i, pod_cidrs=[f"10.244.{i}.0/24", f"fd00:0:0:{i}::/64"])
        w.sim.add_route(TABLE, "::/0", next_hop="igw-1")
        assert w.reconciler(cluster_cidrs=["10.244.0.0/16", "fd00::/48"]).resync() is True
        left = {
            family: sample(w, "routectl_route_table_capacity_remaining", {"table": TABLE, "family": family})
            for family in ("ipv4", "ipv6")
        }
        assert left == {"ipv4": 5 - 2, "ipv6": 5 - 3}
        both = {"table": TABLE, "family": "all"}
        assert w.metrics.registry.get_sample_value("routectl_route_table_capacity_remaining", both) is None
    finally:
        w.close()


def test_quota_the_cloud_did_not_advertise_is_reported_from_the_write_outcome() -> None:
    clock = FakeClock()
    limits = Limits(write_rate=1000, write_burst=1000, read_rate=1000, read_burst=1000)
    sim = SimCloud("c1", quota=2, limits=limits, clock=clock, sleep=clock.sleep)
    w = World(sim=sim, clock=clock)
    try:
        w.add_nodes(3)
        assert w.reconciler().resync() is False
        assert w.sim.calls["create_routes"] == 3
        assert [e.reason for e in w.cluster.events] == [Reason.ROUTE_QUOTA_EXCEEDED]
    finally:
        w.close()


def test_terminated_instance_blackhole_is_replaced_when_the_node_moves(world: World) -> None:
    world.add_nodes(2)
    rec = world.reconciler()
    rec.resync()
    world.sim.terminate("i-001")
    new_id = world.sim.add_instance("i-101")
    world.cluster.update_node("n001", provider_id=new_id)
    assert rec.resync() is True
    assert world.owned_routes()["10.244.1.0/24"] == "i-101"
    assert world.sim.calls["replace_routes"] == 1


def test_terminated_instance_of_a_remaining_node_makes_it_not_ready(world: World) -> None:
    world.add_nodes(2)
    rec = world.reconciler()
    rec.resync()
    world.sim.terminate("i-001")
    assert rec.resync() is False
    cond = world.node("n001").network_unavailable
    assert cond is not None
    assert (cond.status, "terminated" in cond.message) == ("True", True)
    assert [e.reason for e in world.cluster.events] == [Reason.FAILED_TO_CREATE_ROUTE]


def test_excluded_node_gets_no_route_and_loses_an_owned_one(world: World) -> None:
    world.add_nodes(2)
    rec = world.reconciler()
    rec.resync()
    world.cluster.update_node("n001", labels={"routectl.io/exclude": "true"})
    assert rec.sync_node(world.node("n001")) is True
    assert "10.244.1.0/24" not in world.owned_routes()


def test_remove_node_deletes_its_routes_and_reports_when_gone(world: World) -> None:
    nodes = world.add_nodes(2)
    rec = world.reconciler()
    rec.resync()
    world.sim.inject("delete_routes", *[Fault.SERVER_ERROR] * 4)
    assert rec.remove_node(nodes[1]) is False
    assert [e.reason for e in world.cluster.events] == [Reason.FAILED_TO_DELETE_ROUTE]
    assert rec.remove_node(nodes[1]) is True
    assert world.owned_routes() == {"10.244.0.0/24": "i-000"}


def test_dry_run_plans_and_logs_but_changes_nothing(world: World, caplog: pytest.LogCaptureFixture) -> None:
    world.add_nodes(3)
    caplog.set_level(logging.INFO, "routectl")
    rec = world.reconciler(dry_run=True)
    assert rec.resync() is False
    assert world.sim.routes(TABLE) == {}
    assert world.cluster.calls.get("set_network_unavailable", 0) == 0
    assert sum("would create" in r.getMessage() for r in caplog.records) == 3


def test_write_logs_carry_the_structured_keys(world: World, caplog: pytest.LogCaptureFixture) -> None:
    world.add_nodes(1)
    caplog.set_level(logging.INFO, "routectl.engine.executor")
    world.reconciler().resync()
    [record] = [r for r in caplog.records if getattr(r, "op", "") == "create"]
    assert (record.node, record.table, record.destination, record.target, record.outcome, record.attempt) == (  # type: ignore[attr-defined]
        "n000",
        TABLE,
        "10.244.0.0/24",
        "zone-a/i-000",
        "ok",
        1,
    )
    assert (
        sample(world, "routectl_route_operations_total", {"provider": "sim", "op": "create", "outcome": "ok"})
        == 1
    )


# --- fencing --------------------------------------------------------------------------------------


class FenceAfter:
    """Grants `writes` checks, then reports lost leadership forever."""

    def __init__(self, writes: int) -> None:
        self.left = writes

    def check(self) -> None:
        if self.left <= 0:
            raise LostLeadership("lease lost")
        self.left -= 1


def test_lost_leadership_stops_every_write(world: World) -> None:
    world.add_nodes(20)
    rec = world.reconciler(fence=FenceAfter(3))
    with pytest.raises(LostLeadership):
        rec.resync()
    assert len(world.owned_routes()) == 3
    assert world.sim.calls["create_routes"] == 3


# --- cloud trouble --------------------------------------------------------------------------------


def test_5xx_burst_is_retried_within_the_pass(world: World) -> None:
    world.add_nodes(3)
    world.sim.inject("create_routes", Fault.SERVER_ERROR, Fault.SERVER_ERROR)
    assert world.reconciler().resync() is True
    assert world.owned_routes() == world.desired_routes()


def test_persistent_5xx_gives_up_after_the_attempt_cap_and_says_why(world: World) -> None:
    node = world.add_node(1)
    world.sim.inject("create_routes", *[Fault.SERVER_ERROR] * 10)
    assert world.reconciler(max_attempts=3).sync_node(node) is False
    assert world.sim.calls["create_routes"] == 3
    cond = world.node("n001").network_unavailable
    assert cond is not None
    assert "server_error" in cond.message


def test_timeout_after_write_converges_without_duplicates(world: World) -> None:
    world.add_nodes(4)
    world.sim.inject("create_routes", *[Fault.TIMEOUT_AFTER_WRITE] * 3)
    assert world.reconciler().resync() is True
    assert world.owned_routes() == world.desired_routes()
    ops = {"provider": "sim", "op": "create"}
    assert sample(world, "routectl_route_operations_total", {**ops, "outcome": "retry"}) == 3
    assert sample(world, "routectl_route_operations_total", {**ops, "outcome": "already_done"}) >= 1
    assert world.sim.calls["create_routes"] == 4 + 3


def test_busy_table_is_retried_and_writers_per_table_is_honoured() -> None:
    w = World(writers_per_table=1, latency_s=0.01)
    try:
        w.add_nodes(12)
        w.sim.inject("create_routes", Fault.BUSY, Fault.BUSY)
        assert w.reconciler(concurrency=6).resync() is True
        assert w.sim.busy["create_routes"] == 0
        assert w.owned_routes() == w.desired_routes()
    finally:
        w.close()


def test_eventual_consistency_never_unreadies_a_confirmed_node() -> None:
    w = World(visibility_delay_s=30.0)
    try:
        w.add_nodes(3)
        rec = w.reconciler()
        assert rec.resync() is True
        assert rec.resync() is True
        assert w.sim.calls["create_routes"] == 6
        assert (
            sample(
                w,
                "routectl_route_operations_total",
                {"provider": "sim", "op": "create", "outcome": "already_done"},
            )
            == 3
        )
        assert w.cluster.calls["set_network_unavailable"] == 3
    finally:
        w.close()


def test_throttling_storm_settles_with_few_refusals() -> None:
    """The client believes 10x the cloud's real write rate; the adaptive bucket finds the real one."""
    clock = FakeClock()
    told = Limits(write_rate=50.0, write_burst=50, read_rate=100.0, read_burst=100)
    sim = SimCloud("c1", write=Bucket(10, 5.0), limits=told, clock=clock, sleep=clock.sleep)
    w = World(sim=sim, clock=clock)
    try:
        w.add_nodes(250)
        w.converge(w.reconciler(concurrency=4), passes=5)
        calls = w.sim.calls["create_routes"]
        assert w.owned_routes() == w.desired_routes()
        assert w.sim.throttled["create_routes"] / calls < 0.05
    finally:
        w.close()


def test_throttled_list_is_retried_through_the_read_bucket() -> None:
    w = World(read=Bucket(1, 0.5))
    try:
        w.add_nodes(2)
        rec = w.reconciler()
        w.sim.list_routes(TABLE)
        assert rec.resync() is True
        assert w.sim.throttled["list_routes"] <= 1
    finally:
        w.close()


def test_no_condition_false_without_the_route_in_the_cloud() -> None:
    """Spy on every condition write under chaos: False only when the cloud holds the node's route."""
    w = World()
    w.sim.chaos(0.3, seed=11)
    violations: list[str] = []
    real = w.cluster.set_network_unavailable

    def spy(name: str, condition: Condition, before_write: Callable[[], None]) -> None:
        if condition.status == "False":
            node = w.cluster.get_node(name)
            want = w.sim.target_for(node.provider_id).instance
            owned = w.owned_routes()
            violations.extend(c for c in node.pod_cidrs if owned.get(c) != want)
        real(name, condition, before_write)

    w.cluster.set_network_unavailable = spy  # type: ignore[method-assign]
    try:
        w.add_nodes(40)
        w.sim.add_route(TABLE, "10.244.200.0/24", "i-foreign")
        rec = w.reconciler()
        w.converge(rec)
        assert violations == []
        assert w.sim.foreign_writes == []
        assert w.owned_routes() == w.desired_routes()
    finally:
        w.close()


def test_failed_prepare_is_not_remembered_and_a_retry_prepares_again(world: World) -> None:
    node = world.add_node(1)
    world.sim.inject("prepare_target", *[Fault.SERVER_ERROR] * 4)
    rec = world.reconciler()
    assert rec.sync_node(node) is False
    assert world.sim.calls["create_routes"] == 0
    assert rec.sync_node(node) is True
    assert world.sim.prepared == {"i-001"}


def test_outcome_enum_covers_success_equivalents() -> None:
    assert Outcome.ALREADY_DONE.succeeded
    assert not Outcome.RETRY.succeeded


def test_recreated_node_with_the_same_name_gets_its_condition_written(world: World) -> None:
    world.add_nodes(1)
    rec = world.reconciler()
    rec.resync()
    world.cluster.delete_node("n000")
    node = world.add_node(0)
    assert rec.sync_node(node) is True
    assert world.condition("n000") == "False/RouteCreated"


def test_unlistable_table_makes_the_node_not_ready_with_a_cloud_error(world: World) -> None:
    node = world.add_node(1)
    world.sim.inject("list_routes", *[Fault.SERVER_ERROR] * 4)
    assert world.reconciler().sync_node(node) is False
    cond = world.node("n001").network_unavailable
    assert cond is not None
    assert cond.message.startswith("cloud error: list_routes")
    assert sample(world, "routectl_reconcile_errors_total", {"kind": "node"}) == 1


def test_removing_a_gone_node_never_deletes_the_route_of_the_node_that_now_holds_its_block(
    world: World,
) -> None:
    [old] = world.add_nodes(1)
    rec = world.reconciler()
    rec.resync()
    world.cluster.delete_node(old.name)
    # Another leader already reused the block for a new node and routed it.
    world.add_node(7, pod_cidrs=["10.244.0.0/24"])
    rec.resync()
    assert world.owned_routes() == {"10.244.0.0/24": "i-007"}

    assert rec.remove_node(old) is True
    assert world.owned_routes() == {"10.244.0.0/24": "i-007"}


def test_removal_is_judged_from_a_fresh_list_not_from_writes_of_unknown_outcome(world: World) -> None:
    [node] = world.add_nodes(1)
    rec = world.reconciler(max_attempts=2)
    # Every create times out after the cloud acted: the route exists, but routectl never heard so.
    world.sim.inject("create_routes", Fault.TIMEOUT_AFTER_WRITE, Fault.TIMEOUT_AFTER_WRITE)
    rec.resync()
    assert world.owned_routes() == {"10.244.0.0/24": "i-000"}
    world.cluster.delete_node(node.name)

    assert rec.remove_node(node) is False  # the fresh list shows the route the view never learnt of
    assert rec.remove_node(node) is True
    assert world.owned_routes() == {}


# --- preparing instances --------------------------------------------------------------------------

DUAL_STACK = ["10.244.0.0/16", "fd00::/48"]


def a_dual_stack_world(nodes: int) -> World:
    """`nodes` dual-stack nodes, two managed tables: 4 routes per instance written at once. The sim's
    latency is real time, so the chunks that write them overlap for real in the executor's pool."""
    clock = FakeClock()
    sim = SimCloud("c1", tables=("rtb-a", "rtb-b"), latency_s=0.02, clock=clock, sleep=time.sleep)
    w = World(sim=sim, clock=clock)
    for i in range(nodes):
        w.add_node(i, pod_cidrs=[f"10.244.{i}.0/24", f"fd00:0:0:{i:x}::/64"])
    return w


def test_routes_to_one_instance_prepare_it_once_with_two_tables_and_two_families() -> None:
    w = a_dual_stack_world(2)
    try:
        rec = w.reconciler(cluster_cidrs=DUAL_STACK, concurrency=8)
        assert rec.resync() is True
        assert w.sim.calls["create_routes"] == 2 * 2 * 2
        assert w.sim.calls["prepare_target"] == 2
        assert w.sim.prepared == {"i-000", "i-001"}
    finally:
        w.close()


def test_concurrent_routes_share_a_failed_prepare_and_the_next_pass_prepares_again() -> None:
    w = a_dual_stack_world(1)
    try:
        rec = w.reconciler(cluster_cidrs=DUAL_STACK, concurrency=4, max_attempts=2)
        w.sim.inject("prepare_target", Fault.SERVER_ERROR, Fault.SERVER_ERROR)
        assert rec.resync() is False
        assert w.sim.calls["prepare_target"] == 2  # one flight's attempts, not one per route
        assert w.sim.calls["create_routes"] == 0
        assert w.condition("n000") == "True/NoRouteCreated"

        assert rec.resync() is True
        assert w.sim.calls["prepare_target"] == 3
        assert w.sim.calls["create_routes"] == 4
    finally:
        w.close()

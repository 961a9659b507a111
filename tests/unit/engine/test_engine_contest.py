"""Contested routes: a route something else keeps repointing is held back for a backoff, not fought over
forever (engine/contest.py), on the simulated cloud and an injected clock — no sleeps."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest

from routectl.engine.contest import ContestRules, Contests
from routectl.engine.planner import RoutePolicy, WriteRules
from routectl.reasons import Reason
from tests.unit.builders import TABLE, World

BLOCK = "10.244.0.0/24"
RULES = ContestRules(threshold=3, window_s=600.0, backoff_s=600.0)


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    yield w
    w.close()


def repoint(world: World) -> None:
    """Another controller (a cloud-controller-manager on AWS, say) points the route elsewhere."""
    world.sim.add_route(TABLE, BLOCK, "i-rogue", owner=world.sim.cluster_name, node="n000")


def contested(world: World) -> float:
    return world.metrics.registry.get_sample_value("routectl_routes_contested") or 0.0


def test_a_route_repointed_three_times_in_ten_minutes_is_held_for_the_backoff(world: World) -> None:
    world.add_node(0)
    rec = world.reconciler(contests=Contests(RULES, clock=world.clock))
    assert rec.resync() is True
    replaces = world.sim.calls["replace_routes"]

    for _ in range(3):  # three rounds of the war within the window: routectl still answers each
        world.clock.sleep(120.0)
        repoint(world)
        assert rec.resync() is True
        assert world.owned_routes() == {BLOCK: "i-000"}
    assert world.sim.calls["replace_routes"] == replaces + 3
    assert contested(world) == 1

    world.clock.sleep(60.0)
    repoint(world)
    assert rec.resync() is False  # held: not rewritten, the node is not routed, and says why

    assert world.owned_routes() == {BLOCK: "i-rogue"}
    assert world.sim.calls["replace_routes"] == replaces + 3
    assert world.condition("n000") == "True/NoRouteCreated"
    message = world.node("n000").network_unavailable.message  # type: ignore[union-attr]
    assert "contested" in message
    assert BLOCK in message
    assert [e.reason for e in world.cluster.events if e.node == "n000"][-1] == Reason.ROUTE_CONTESTED

    world.clock.sleep(RULES.backoff_s - 60.0 - 1.0)  # just before the backoff ends: still held
    assert rec.resync() is False
    assert world.owned_routes() == {BLOCK: "i-rogue"}

    world.clock.sleep(1.0)  # backoff over: routectl repairs the route, with a fresh count
    assert rec.resync() is True
    assert world.owned_routes() == {BLOCK: "i-000"}
    assert contested(world) == 0


def test_repoints_spread_wider_than_the_window_never_contest(world: World) -> None:
    world.add_node(0)
    rec = world.reconciler(contests=Contests(RULES, clock=world.clock))
    rec.resync()

    for _ in range(6):
        world.clock.sleep(RULES.window_s / 2 + 1.0)
        repoint(world)
        assert rec.resync() is True
        assert world.owned_routes() == {BLOCK: "i-000"}
    assert contested(world) == 0


def test_repairing_a_blackhole_or_an_instance_change_is_no_contest(world: World) -> None:
    """Only replaces that undo another instance as target count; a blackhole (instance gone) does not."""
    contests = Contests(RULES, clock=lambda: 0.0)
    world.add_node(0)
    rec = world.reconciler(contests=contests)
    rec.resync()
    for _ in range(4):
        world.sim.add_route(TABLE, BLOCK, "", owner=world.sim.cluster_name, node="n000")  # a blackhole
        rec.resync()
    assert contests.held() == frozenset()


def test_upsert_only_reconciler_never_deletes(world: World) -> None:
    nodes = world.add_nodes(3)
    rec = world.reconciler(write_rules=WriteRules(policy=RoutePolicy.UPSERT_ONLY))
    assert rec.resync() is True
    world.sim.add_route(TABLE, "10.244.9.0/24", "i-001", owner=world.sim.cluster_name, node="gone")
    world.cluster.delete_node(nodes[2].name)

    rec.resync()
    rec.remove_node(nodes[2])

    assert world.sim.calls["delete_routes"] == 0
    assert set(world.owned_routes()) >= {"10.244.9.0/24", "10.244.2.0/24"}
    assert ipaddress.ip_network("10.244.2.0/24") in world.sim.routes(TABLE)

"""Block ownership: one owner per block, decided by (creationTimestamp, name), shared by IPAM and routes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ipam
from routectl.cluster import Node
from routectl.engine.ownership import Claims, Rule, owners
from routectl.reasons import Reason
from tests.unit.builders import TABLE, World, net

RULES = ipam.validate(["10.244.0.0/16", "fd00::/48"], reserved=["10.244.255.0/24"])


def a_node(name: str, *cidrs: str, created: float = 0.0, uid: str = "") -> Node:
    return Node(name=name, uid=uid or f"uid-{name}", resource_version="1", pod_cidrs=cidrs, created=created)


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    yield w
    w.close()


# --- the pure function ------------------------------------------------------------------------------


def test_the_earlier_created_node_owns_a_duplicated_block_whatever_the_names() -> None:
    result = owners([a_node("a", "10.244.1.0/24", created=2), a_node("z", "10.244.1.0/24", created=1)], RULES)
    assert result.owners == {net("10.244.1.0/24"): "z"}
    [problem] = result.rejected("a")
    assert (problem.rule, problem.other) == (Rule.DUPLICATE, "z")
    assert "node z" in problem.message


def test_a_tie_on_creation_time_goes_to_the_first_name() -> None:
    result = owners([a_node("b", "10.244.1.0/24", created=5), a_node("a", "10.244.1.0/24", created=5)], RULES)
    assert result.owners[net("10.244.1.0/24")] == "a"


@pytest.mark.parametrize(
    ("cidr", "rule"),
    [
        ("10.244.1.0/16", Rule.MALFORMED),
        ("not-a-cidr", Rule.MALFORMED),
        ("192.168.1.0/24", Rule.OUTSIDE),
        ("10.244.0.0/16", Rule.WRONG_SIZE),
        ("10.244.1.0/25", Rule.WRONG_SIZE),
        ("10.244.255.0/24", Rule.RESERVED),
        ("fd00:0:0:1::/64", None),
        ("2001:db8::/64", Rule.OUTSIDE),
    ],
)
def test_each_rule_rejects_alone(cidr: str, rule: Rule | None) -> None:
    result = owners([a_node("a", cidr)], RULES)
    assert [p.rule for p in result.rejected("a")] == ([] if rule is None else [rule])
    assert result.of("a") == (() if rule is not None else (net(cidr),))


def test_a_wide_podcidr_names_the_node_whose_block_it_overlaps() -> None:
    result = owners([a_node("a", "10.244.1.0/24", created=1), a_node("b", "10.244.0.0/16", created=2)], RULES)
    [problem] = result.rejected("b")
    assert (problem.rule, problem.other) == (Rule.WRONG_SIZE, "a")
    assert "node a" in problem.message
    assert result.of("a") == (net("10.244.1.0/24"),)


def test_one_bad_family_leaves_the_other_owned() -> None:
    result = owners([a_node("a", "10.244.1.0/24", "2001:db8::/64")], RULES)
    assert result.of("a") == (net("10.244.1.0/24"),)
    assert [p.rule for p in result.rejected("a")] == [Rule.OUTSIDE]
    assert result.counts()[Rule.OUTSIDE] == 1


def test_a_later_node_never_takes_a_block_and_the_next_claimant_inherits_it() -> None:
    claims = Claims(RULES)
    assert claims.put(a_node("a", "10.244.1.0/24", created=1)) == {"a"}
    assert claims.put(a_node("b", "10.244.1.0/24", created=2)) == set()
    assert claims.snapshot().owners[net("10.244.1.0/24")] == "a"
    assert claims.remove("a") == {"a", "b"}
    assert claims.snapshot().owners[net("10.244.1.0/24")] == "b"


_NAMES = st.sampled_from(["a", "b", "c", "d", "e"])
_CIDRS = st.sampled_from(
    [
        "10.244.1.0/24",
        "10.244.2.0/24",
        "10.244.0.0/16",
        "10.244.1.0/25",
        "192.168.0.0/24",
        "10.244.255.0/24",
        "x",
    ]
)
_NODES = st.lists(
    st.tuples(_NAMES, st.lists(_CIDRS, max_size=2), st.integers(0, 3)), max_size=8, unique_by=lambda t: t[0]
)


@given(_NODES, st.randoms(use_true_random=False), st.lists(_NAMES, max_size=3))
@settings(max_examples=150, deadline=None)
def test_the_incremental_form_equals_the_pure_function_in_any_order(
    specs: list[tuple[str, list[str], int]], rng: object, removed: list[str]
) -> None:
    nodes = [a_node(name, *cidrs, created=created) for name, cidrs, created in specs]
    shuffled = list(nodes)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    claims = Claims(RULES)
    for node in shuffled:
        claims.put(node)
    for name in removed:
        claims.remove(name)
    kept = [n for n in nodes if n.name not in removed]
    assert claims.snapshot() == owners(kept, RULES)
    assert owners(reversed(kept), RULES) == owners(kept, RULES)
    owned = [b for blocks in owners(kept, RULES).owned.values() for b in blocks]
    assert len(owned) == len(set(owned))  # never one block to two nodes


# --- routes follow ownership ------------------------------------------------------------------------


def test_two_nodes_with_one_podcidr_route_it_to_the_owner_and_never_flip(world: World) -> None:
    world.add_node(1)
    world.add_node(2, pod_cidrs=["10.244.1.0/24"])
    first = world.reconciler()
    assert first.resync() is False
    assert world.owned_routes() == {"10.244.1.0/24": "i-001"}
    assert world.condition("n001") == "False/RouteCreated"
    cond = world.node("n002").network_unavailable
    assert cond is not None
    assert cond.status == "True"
    assert "duplicate" in cond.message
    assert "n001" in cond.message
    assert [e.reason for e in world.cluster.events if e.node == "n002"] == [Reason.CIDR_NOT_AVAILABLE.value]
    sample = world.metrics.registry.get_sample_value
    assert sample("routectl_node_cidr_conflicts", {"rule": "duplicate"}) == 1
    writes = sum(world.sim.calls[api] for api in ("create_routes", "replace_routes", "delete_routes"))
    # Per-node syncs of both, further passes, and a new leader: nothing moves.
    second = world.reconciler()
    for rec in (first, second, first):
        rec.sync_node(world.node("n002"))
        rec.sync_node(world.node("n001"))
        rec.resync()
    assert world.owned_routes() == {"10.244.1.0/24": "i-001"}
    assert sum(world.sim.calls[api] for api in ("create_routes", "replace_routes", "delete_routes")) == writes


def test_a_wide_podcidr_gets_no_route_and_no_create_delete_loop(world: World) -> None:
    world.add_node(1)
    world.add_node(2, pod_cidrs=["10.244.0.0/16"])
    rec = world.reconciler()
    for _ in range(3):
        rec.resync()
        rec.sync_node(world.node("n002"))
    assert world.owned_routes() == {"10.244.1.0/24": "i-001"}
    assert world.sim.calls["create_routes"] == 1
    assert world.sim.calls["delete_routes"] == 0
    cond = world.node("n002").network_unavailable
    assert cond is not None
    assert "wrong-size" in cond.message
    assert "n001" in cond.message


def test_a_route_left_at_the_non_owner_is_replaced_by_the_owners(world: World) -> None:
    world.add_node(1)
    world.add_node(2, pod_cidrs=["10.244.1.0/24"])
    world.sim.add_route(TABLE, "10.244.1.0/24", "i-002", owner="c1", node="n002")
    rec = world.reconciler()
    rec.sync_node(world.node("n002"))  # the non-owner's own sync leaves the block to its owner
    assert world.owned_routes() == {"10.244.1.0/24": "i-002"}
    assert world.sim.calls["delete_routes"] == 0
    rec.sync_node(world.node("n001"))
    assert world.owned_routes() == {"10.244.1.0/24": "i-001"}


def test_when_the_owner_goes_the_claimant_is_queued_and_takes_the_block(world: World) -> None:
    world.add_node(1)
    world.add_node(2, pod_cidrs=["10.244.1.0/24"])
    queued: list[str] = []
    rec = world.reconciler(on_owner_change=queued.append)
    rec.resync()
    tombstone = world.node("n001")
    world.cluster.delete_node("n001")
    assert rec.remove_node(tombstone) is True
    assert queued == ["n002"]
    # The removal left the block for its new owner: never deleted, replaced in place.
    assert world.sim.calls["delete_routes"] == 0
    assert rec.sync_node(world.node("n002")) is True
    assert world.owned_routes() == {"10.244.1.0/24": "i-002"}
    assert world.condition("n002") == "False/RouteCreated"


def test_an_owner_without_target_does_not_keep_a_route_to_another_node(world: World) -> None:
    world.add_node(1, provider_id="")
    world.add_node(2, pod_cidrs=["10.244.1.0/24"])
    world.sim.add_route(TABLE, "10.244.1.0/24", "i-002", owner="c1", node="n002")
    world.reconciler().resync()
    assert world.owned_routes() == {}


def test_a_node_outside_the_managed_network_gets_no_route_and_a_condition_naming_both(world: World) -> None:
    node = world.cluster.add_node(
        "stray",
        provider_id=world.sim.add_instance("i-stray", network="other-net"),
        pod_cidrs=["10.244.9.0/24"],
    )
    rec = world.reconciler()
    assert rec.sync_node(node) is False
    assert rec.resync() is False
    assert world.owned_routes() == {}
    assert world.sim.calls["create_routes"] == 0
    assert "i-stray" not in world.sim.prepared
    cond = world.node("stray").network_unavailable
    assert cond is not None
    assert "other-net" in cond.message
    assert "outside the managed network sim-net" in cond.message
    [event] = [e for e in world.cluster.events if e.node == "stray"]
    assert event.reason == Reason.FAILED_TO_CREATE_ROUTE.value

"""The planner's write rules: adoption (owned / adoptable / foreign), `upsert-only`, contested routes."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from providers import Route, RouteState
from routectl.engine.planner import (
    ADOPT_FLAG,
    BlockReason,
    DesiredNode,
    Plan,
    RoutePolicy,
    WriteRules,
    adoptable_routes,
    plan,
    plan_node,
)
from tests.unit.builders import CLUSTER, TABLE, a_node, a_route, net

ADOPT = WriteRules(adopt=True)
UPSERT = WriteRules(policy=RoutePolicy.UPSERT_ONLY)


def legacy(destination: str, instance: str | None, **changes: object) -> Route:
    """A route another controller made, as the adapter lists it: not owned, adoptable."""
    route = dataclasses.replace(
        a_route(destination, instance, owned=False), adoptable=True, cloud_id="legacy-1"
    )
    return dataclasses.replace(route, **changes)  # type: ignore[arg-type]


def test_adoptable_route_of_the_nodes_block_and_instance_is_adopted_with_the_flag() -> None:
    the_plan = plan(
        [a_node("a", "10.244.1.0/24")], {TABLE: [legacy("10.244.1.0/24", "i-a")]}, CLUSTER, rules=ADOPT
    )

    [change] = the_plan.adopt
    assert (change.destination, change.node, change.route.owned, change.route.node) == (
        net("10.244.1.0/24"),
        "a",
        True,
        "a",
    )
    assert (change.route.cloud_id, change.current) == ("legacy-1", legacy("10.244.1.0/24", "i-a"))
    assert (the_plan.create, the_plan.replace, the_plan.delete, the_plan.conflicts, the_plan.blocked) == (
        (),
        (),
        (),
        (),
        (),
    )
    assert the_plan.writes == 1
    assert adoptable_routes(the_plan) == the_plan.adopt


def test_without_the_flag_an_adoptable_route_is_listed_and_blocks_its_node_naming_the_flag() -> None:
    the_plan = plan([a_node("a", "10.244.1.0/24")], {TABLE: [legacy("10.244.1.0/24", "i-a")]}, CLUSTER)

    assert [c.destination for c in the_plan.adoptable] == [net("10.244.1.0/24")]
    assert adoptable_routes(the_plan) == the_plan.adoptable
    assert the_plan.writes == 0
    assert the_plan.conflicts == ()
    [blocked] = the_plan.blocked
    assert blocked.reason is BlockReason.ADOPTABLE
    assert ADOPT_FLAG in blocked.detail
    assert not the_plan.converged


def test_adoptable_hint_on_a_route_to_another_instance_is_a_foreign_conflict() -> None:
    nodes = [a_node("a", "10.244.1.0/24"), a_node("b", "10.244.2.0/24")]
    the_plan = plan(nodes, {TABLE: [legacy("10.244.1.0/24", "i-b")]}, CLUSTER, rules=ADOPT)

    assert the_plan.adopt == ()
    assert [(c.destination, c.node) for c in the_plan.conflicts] == [(net("10.244.1.0/24"), "a")]
    assert [b.reason for b in the_plan.blocked] == [BlockReason.CONFLICT]


def test_adoptable_hint_on_another_prefix_is_a_foreign_conflict() -> None:
    the_plan = plan(
        [a_node("a", "10.244.1.0/24")], {TABLE: [legacy("10.244.1.0/25", "i-a")]}, CLUSTER, rules=ADOPT
    )

    assert the_plan.adopt == ()
    assert len(the_plan.conflicts) == 1


def test_adoptable_hint_outside_the_cluster_cidrs_or_without_a_node_is_never_touched() -> None:
    routes = [legacy("10.99.1.0/24", "i-a"), legacy("10.244.7.0/24", "i-x")]
    the_plan = plan([a_node("a", "10.244.1.0/24")], {TABLE: routes}, CLUSTER, rules=ADOPT)

    assert (the_plan.adopt, the_plan.adoptable, the_plan.delete, the_plan.replace) == ((), (), (), ())
    assert [c.destination for c in the_plan.create] == [net("10.244.1.0/24")]


def test_a_blackholed_adoptable_route_is_not_adopted() -> None:
    route = legacy("10.244.1.0/24", None, state=RouteState.BLACKHOLE)
    the_plan = plan([a_node("a", "10.244.1.0/24")], {TABLE: [route]}, CLUSTER, rules=ADOPT)

    assert the_plan.adopt == ()
    assert len(the_plan.conflicts) == 1


def test_a_conflict_on_the_same_block_wins_over_adoption() -> None:
    routes = [legacy("10.244.1.0/24", "i-a"), a_route("10.244.1.128/25", "i-x", owned=False)]
    the_plan = plan([a_node("a", "10.244.1.0/24")], {TABLE: routes}, CLUSTER, rules=ADOPT)

    assert the_plan.adopt == ()
    assert [b.reason for b in the_plan.blocked] == [BlockReason.CONFLICT]


def test_a_node_slice_adopts_like_the_full_plan() -> None:
    node = a_node("a", "10.244.1.0/24")
    listed = {TABLE: [legacy("10.244.1.0/24", "i-a")]}

    assert (
        plan_node(node, listed, CLUSTER, rules=ADOPT).adopt
        == plan([node], listed, CLUSTER, rules=ADOPT).adopt
    )


def test_upsert_only_withholds_every_delete_sync_would_make() -> None:
    routes = [a_route("10.244.9.0/24", "i-gone", node="gone"), a_route("10.244.1.0/24", "i-old", node="a")]
    nodes = [a_node("a", "10.244.1.0/24"), a_node("b", "10.244.2.0/24")]
    synced = plan(nodes, {TABLE: routes}, CLUSTER)
    upserted = plan(nodes, {TABLE: routes}, CLUSTER, rules=UPSERT)

    assert [c.destination for c in synced.delete] == [net("10.244.9.0/24")]
    assert upserted.delete == ()
    assert upserted.withheld == synced.delete
    assert (upserted.create, upserted.replace) == (synced.create, synced.replace)


def test_a_contested_route_is_held_back_and_blocks_its_node() -> None:
    listed = {TABLE: [a_route("10.244.1.0/24", "i-other", node="a")]}
    rules = WriteRules(contested=frozenset({(TABLE, net("10.244.1.0/24"))}))

    the_plan = plan([a_node("a", "10.244.1.0/24")], listed, CLUSTER, rules=rules)

    assert the_plan.replace == ()
    assert [c.destination for c in the_plan.contested] == [net("10.244.1.0/24")]
    [blocked] = the_plan.blocked
    assert blocked.reason is BlockReason.CONTESTED
    assert "contested" in blocked.detail
    assert plan([a_node("a", "10.244.1.0/24")], listed, CLUSTER).replace != ()


def _routes() -> st.SearchStrategy[list[Route]]:
    blocks = st.integers(0, 7).map(lambda i: f"10.244.{i}.0/24")
    instances = st.sampled_from(["i-a", "i-b", "i-c", "i-x", None])
    owned = st.builds(
        lambda d, i, n: a_route(d, i, node=n), blocks, instances, st.sampled_from(["a", "b", "gone"])
    )
    foreign = st.builds(lambda d, i: a_route(d, i, owned=False), blocks, instances)
    adoptable = st.builds(legacy, blocks, instances)
    return st.lists(st.one_of(owned, foreign, adoptable), max_size=8, unique_by=lambda r: r.destination)


def _nodes() -> st.SearchStrategy[list[DesiredNode]]:
    return st.lists(st.integers(0, 7), max_size=3, unique=True).map(
        lambda blocks: [a_node(n, f"10.244.{b}.0/24") for n, b in zip("abc", blocks, strict=False)]
    )


@settings(max_examples=300, deadline=None)
@given(nodes=_nodes(), routes=_routes(), adopt=st.booleans())
def test_property_upsert_only_never_deletes_and_adoption_touches_only_its_nodes_routes(
    nodes: list,
    routes: list[Route],
    adopt: bool,  # type: ignore[type-arg]
) -> None:
    """Whatever the table holds: `upsert-only` deletes nothing and writes exactly what `sync` writes
    besides; an adoption is always a non-owned route on exactly its node's block and instance."""
    synced = plan(nodes, {TABLE: routes}, CLUSTER, rules=WriteRules(adopt=adopt))
    upserted: Plan = plan(nodes, {TABLE: routes}, CLUSTER, rules=WriteRules(adopt, RoutePolicy.UPSERT_ONLY))

    assert upserted.delete == ()
    assert upserted.withheld == synced.delete
    assert (upserted.create, upserted.replace, upserted.adopt) == (
        synced.create,
        synced.replace,
        synced.adopt,
    )
    by_name = {n.name: n for n in nodes}
    for change in synced.adopt:
        assert change.current is not None
        assert not change.current.owned
        assert change.current.destination in by_name[change.node].pod_cidrs
        assert change.current.target == by_name[change.node].target

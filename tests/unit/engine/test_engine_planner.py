"""The pure planner: every branch of create / replace / delete / conflict / blocked, ownership and quota."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipam import inside
from providers import Route, RouteState, Target
from routectl.engine.ownership import Rule
from routectl.engine.planner import BlockReason, DesiredNode, Plan, plan, plan_node
from tests.unit.builders import CLUSTER, TABLE, a_node, a_route, net


def summary(p: Plan) -> dict[str, list[str]]:
    """The plan as short strings: "<table> <destination> <node>" per write, "<node> <reason>" per block."""
    writes = {
        name: [f"{c.table} {c.destination} {c.node}".strip() for c in getattr(p, name)]
        for name in ("create", "replace", "delete", "in_place")
    }
    writes["conflicts"] = [f"{c.table} {c.destination} {c.node}" for c in p.conflicts]
    writes["blocked"] = [f"{b.node} {b.reason.value}" for b in p.blocked]
    writes["rejected"] = [f"{r.node} {r.pod_cidr} {r.rule.value}" for r in p.rejected]
    return {k: v for k, v in writes.items() if v}


CASES = [
    pytest.param(
        [a_node("a", "10.244.1.0/24")],
        [],
        {"create": ["rtb-main 10.244.1.0/24 a"]},
        id="fresh node gets a route",
    ),
    pytest.param(
        [a_node("a", "10.244.1.0/24")],
        [a_route("10.244.1.0/24", "i-a")],
        {"in_place": ["rtb-main 10.244.1.0/24 a"]},
        id="correct route is left in place",
    ),
    pytest.param(
        [a_node("a", "10.244.1.0/24")],
        [a_route("10.244.1.0/24", "i-old")],
        {"replace": ["rtb-main 10.244.1.0/24 a"]},
        id="owned route with the wrong target is replaced",
    ),
    pytest.param(
        [a_node("a", "10.244.1.0/24")],
        [a_route("10.244.1.0/24", None, state=RouteState.BLACKHOLE)],
        {"replace": ["rtb-main 10.244.1.0/24 a"]},
        id="owned blackhole is replaced",
    ),
    pytest.param(
        [],
        [a_route("10.244.9.0/24", "i-gone", node="gone")],
        {"delete": ["rtb-main 10.244.9.0/24 gone"]},
        id="owned route no node wants is deleted",
    ),
    pytest.param(
        [a_node("a", "10.244.1.0/24")],
        [a_route("10.244.1.0/24", "i-x", owned=False)],
        {"conflicts": ["rtb-main 10.244.1.0/24 a"], "blocked": ["a conflict"]},
        id="foreign route on a desired CIDR is a conflict",
    ),
    pytest.param(
        [a_node("a", "10.244.1.0/24")],
        [a_route("10.244.1.128/25", "i-x", owned=False)],
        {"conflicts": ["rtb-main 10.244.1.0/24 a"], "blocked": ["a conflict"]},
        id="foreign route inside a desired CIDR is a conflict",
    ),
    pytest.param(
        [a_node("a", "10.244.1.0/24")],
        [a_route("10.244.0.0/20", "i-x", owned=False)],
        {"conflicts": ["rtb-main 10.244.1.0/24 a"], "blocked": ["a conflict"]},
        id="foreign supernet within the cluster CIDR is a conflict",
    ),
    pytest.param(
        [a_node("a", "10.244.1.0/24")],
        [a_route("0.0.0.0/0", None, owned=False), a_route("10.0.0.0/8", "i-x", owned=False)],
        {"create": ["rtb-main 10.244.1.0/24 a"]},
        id="broader foreign routes containing the cluster CIDR are no conflict",
    ),
    pytest.param(
        [],
        [a_route("10.244.7.0/24", "i-x", owned=False)],
        {},
        id="foreign route inside the cluster CIDR that no node wants is left alone",
    ),
    pytest.param(
        [],
        [a_route("192.168.5.0/24", "i-x", owned=True)],
        {},
        id="owned route outside the cluster CIDRs is never touched",
    ),
    pytest.param(
        [a_node("a", "10.244.1.0/24", instance="", reason="node has no providerID")],
        [a_route("10.244.1.0/24", "i-a")],
        {"blocked": ["a no target"]},
        id="node without providerID is blocked and its existing route kept",
    ),
    pytest.param(
        [a_node("a", "10.244.1.0/24", excluded=True)],
        [a_route("10.244.1.0/24", "i-a")],
        {"delete": ["rtb-main 10.244.1.0/24"]},
        id="excluded node gets no route and loses the one it had",
    ),
    pytest.param(
        [a_node("a")],
        [],
        {"blocked": ["a no podCIDR"]},
        id="node without podCIDR is blocked",
    ),
    pytest.param(
        [a_node("a", "172.16.0.0/24")],
        [],
        {},
        id="podCIDR outside the cluster CIDRs is never routed, even when handed to the planner",
    ),
    pytest.param(
        [a_node("a", rejected=(("172.16.0.0/24", Rule.OUTSIDE, ""),))],
        [],
        {"rejected": ["a 172.16.0.0/24 outside"]},
        id="a rejected podCIDR is reported, not blocked as missing, and never routed",
    ),
    pytest.param(
        [a_node("a", "10.244.1.0/24"), a_node("b", rejected=(("10.244.1.0/24", Rule.DUPLICATE, "a"),))],
        [a_route("10.244.1.0/24", "i-b")],
        {"replace": ["rtb-main 10.244.1.0/24 a"], "rejected": ["b 10.244.1.0/24 duplicate"]},
        id="a block routed to a node that claims it but does not own it goes to its owner",
    ),
    pytest.param(
        [a_node("a", "10.244.1.0/24", instance="", reason="no providerID"), a_node("b", "10.244.2.0/24")],
        [a_route("10.244.1.0/24", "i-b"), a_route("10.244.2.0/24", "i-b")],
        {
            "delete": ["rtb-main 10.244.1.0/24"],
            "in_place": ["rtb-main 10.244.2.0/24 b"],
            "blocked": ["a no target"],
        },
        id="the kept route of a node without target is deleted when it points at another node",
    ),
    pytest.param(
        [a_node("a", "10.244.1.0/24")],
        [a_route("10.244.1.0/24", "i-a", state=RouteState.PENDING)],
        {},
        id="pending correct route needs nothing and is not yet in place",
    ),
    pytest.param(
        [a_node("a", "10.244.1.0/24")],
        [a_route("10.244.1.0/24", "i-a", state=RouteState.DELETING)],
        {"create": ["rtb-main 10.244.1.0/24 a"]},
        id="route being deleted is created again",
    ),
]


@pytest.mark.parametrize(("nodes", "routes", "expected"), CASES)
def test_plan_branches(nodes: list[DesiredNode], routes: list[Route], expected: dict[str, list[str]]) -> None:
    assert summary(plan(nodes, {TABLE: routes}, CLUSTER)) == expected


def test_every_table_gets_each_route_and_tables_are_planned_apart() -> None:
    result = plan(
        [a_node("a", "10.244.1.0/24")],
        {"rtb-a": [a_route("10.244.1.0/24", "i-a")], "rtb-b": []},
        CLUSTER,
    )
    assert summary(result) == {
        "create": ["rtb-b 10.244.1.0/24 a"],
        "in_place": ["rtb-a 10.244.1.0/24 a"],
    }


def test_dual_stack_node_gets_one_route_per_family() -> None:
    cluster = (net("10.244.0.0/16"), net("fd00:10::/56"))
    result = plan([a_node("a", "10.244.1.0/24", "fd00:10:0:1::/64")], {TABLE: []}, cluster)
    assert [str(c.destination) for c in result.create] == ["10.244.1.0/24", "fd00:10:0:1::/64"]


def test_quota_smaller_than_node_count_blocks_the_rest_in_name_order() -> None:
    nodes = [a_node(f"n{i}", f"10.244.{i}.0/24") for i in range(5)]
    result = plan(nodes, {TABLE: [a_route("0.0.0.0/0", None, owned=False)]}, CLUSTER, quotas={TABLE: 3})
    assert [c.node for c in result.create] == ["n0", "n1"]
    assert [(b.node, b.reason) for b in result.blocked] == [
        ("n2", BlockReason.QUOTA),
        ("n3", BlockReason.QUOTA),
        ("n4", BlockReason.QUOTA),
    ]


def test_deletes_free_quota_for_creates_in_the_same_table() -> None:
    result = plan(
        [a_node("a", "10.244.1.0/24")],
        {TABLE: [a_route("10.244.9.0/24", "i-gone")]},
        CLUSTER,
        quotas={TABLE: 1},
    )
    assert (len(result.create), len(result.delete), result.blocked) == (1, 1, ())


def test_plan_node_only_touches_the_nodes_own_slice() -> None:
    listed = {
        TABLE: [
            a_route("10.244.9.0/24", "i-other", node="other"),
            a_route("10.244.5.0/24", "i-a", node="a"),
        ]
    }
    result = plan_node(a_node("a", "10.244.1.0/24"), listed, CLUSTER)
    assert summary(result) == {
        "create": ["rtb-main 10.244.1.0/24 a"],
        "delete": ["rtb-main 10.244.5.0/24 a"],
    }


def test_plan_node_quota_counts_the_rest_of_the_table() -> None:
    listed = {TABLE: [a_route(f"10.244.{i}.0/24", f"i-{i}") for i in range(10, 13)]}
    result = plan_node(a_node("a", "10.244.1.0/24"), listed, CLUSTER, quotas={TABLE: 3})
    assert [b.reason for b in result.blocked] == [BlockReason.QUOTA]


# --- properties ------------------------------------------------------------------------------------

cidr_24 = st.builds(lambda a, b: f"10.{a}.{b}.0/24", st.sampled_from([243, 244, 245]), st.integers(0, 7))
routes_strategy = st.lists(
    st.builds(
        lambda d, inst, owned, state: a_route(d, inst, owned=owned, state=state),
        st.one_of(cidr_24, st.sampled_from(["10.244.0.0/20", "0.0.0.0/0", "10.244.1.128/25"])),
        st.sampled_from([None, "i-n0", "i-n1", "i-x"]),
        st.booleans(),
        st.sampled_from(list(RouteState)),
    ),
    max_size=12,
).map(lambda rs: list({r.destination: r for r in rs}.values()))
nodes_strategy = st.lists(
    st.builds(
        lambda i, c, excluded, no_target: a_node(
            f"n{i}", c, excluded=excluded, instance="" if no_target else None
        ),
        st.integers(0, 5),
        cidr_24,
        st.booleans(),
        st.booleans(),
    ),
    max_size=6,
    unique_by=lambda n: n.name,
)


@settings(max_examples=300, deadline=None)
@given(nodes=nodes_strategy, routes=routes_strategy, quota=st.one_of(st.none(), st.integers(0, 12)))
def test_nothing_foreign_or_outside_the_cluster_is_ever_written(
    nodes: list[DesiredNode], routes: list[Route], quota: int | None
) -> None:
    result = plan(nodes, {TABLE: routes}, CLUSTER, quotas={TABLE: quota})
    listed = {r.destination: r for r in routes}
    for change in (*result.replace, *result.delete):
        assert listed[change.destination].owned
        assert inside(change.destination, CLUSTER)
    for change in result.create:
        assert inside(change.destination, CLUSTER)
        assert change.destination not in listed or listed[change.destination].state is RouteState.DELETING
    if quota is not None:
        assert len(result.create) <= max(0, quota - (len(routes) - len(result.delete)))


@settings(max_examples=100, deadline=None)
@given(nodes=nodes_strategy, routes=routes_strategy)
def test_plan_is_deterministic_whatever_the_input_order(
    nodes: list[DesiredNode], routes: list[Route]
) -> None:
    forward = plan(nodes, {TABLE: routes, "rtb-b": routes}, CLUSTER)
    backward = plan(
        list(reversed(nodes)), {"rtb-b": list(reversed(routes)), TABLE: list(reversed(routes))}, CLUSTER
    )
    assert forward == backward


def test_target_comparison_includes_zone() -> None:
    node = a_node("a", "10.244.1.0/24")
    moved = Route(net("10.244.1.0/24"), Target("i-a", zone="other"), owned=True)
    assert len(plan([node], {TABLE: [moved]}, CLUSTER).replace) == 1


def test_a_replace_addresses_the_route_it_replaces_by_its_cloud_id() -> None:
    # GCP names routes by node uid: the old route of a reused CIDR has another name than the new one.
    old = Route(net("10.244.1.0/24"), Target("i-old"), owned=True, cloud_id="c1-uid-old")
    [change] = plan([a_node("b", "10.244.1.0/24")], {TABLE: [old]}, CLUSTER).replace
    assert (change.route.target, change.route.cloud_id, change.current) == (Target("i-b"), "c1-uid-old", old)


def test_a_route_naming_an_earlier_node_of_the_same_name_is_not_this_nodes() -> None:
    earlier = Route(net("10.244.9.0/24"), Target("i-a"), owned=True, node="a", node_uid="uid-earlier")
    assert plan_node(a_node("a", "10.244.1.0/24"), {TABLE: [earlier]}, CLUSTER).delete == ()
    same = Route(net("10.244.9.0/24"), Target("i-a"), owned=True, node="a", node_uid="uid-a")
    assert [
        c.destination for c in plan_node(a_node("a", "10.244.1.0/24"), {TABLE: [same]}, CLUSTER).delete
    ] == [net("10.244.9.0/24")]


@pytest.mark.parametrize(("per_family", "created"), [(True, ["fd00:10:0:3::/64"]), (False, [])])
def test_a_cloud_that_counts_families_apart_still_has_room_for_the_other_family(
    per_family: bool, created: list[str]
) -> None:
    cluster = (*CLUSTER, ipaddress.ip_network("fd00:10::/56"))
    full_of_v4 = [a_route(f"10.244.{i}.0/24", f"i-n{i}") for i in range(2)]
    nodes = [a_node(f"n{i}", f"10.244.{i}.0/24") for i in range(2)]
    newcomer = a_node("n3", "10.244.3.0/24", "fd00:10:0:3::/64")

    result = plan(
        [*nodes, newcomer], {TABLE: full_of_v4}, cluster, quotas={TABLE: 2}, quota_per_family=per_family
    )

    assert [str(c.destination) for c in result.create] == created
    assert {str(b.destination) for b in result.blocked if b.reason is BlockReason.QUOTA} == (
        {"10.244.3.0/24"} if per_family else {"10.244.3.0/24", "fd00:10:0:3::/64"}
    )

"""The behavioural contract of `RouteProvider` (providers/model.py) as pytest tests every adapter runs
against a world its author supplies (docs/providers.md, "Testing an adapter with the conformance kit").

Subclass `RouteProviderContract` in a test module named `Test…` and provide a `conformance_world`
fixture returning a fresh `ConformanceWorld`; every test below then runs against that adapter. An item
the cloud cannot model is skipped with the world's reason (`Supports`), never passed silently.

Routes are built the way the planner builds them: owned, naming their node and its uid, with targets
from `target_for`, and replaced with the `cloud_id` of the route they replace.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import re
from collections.abc import Callable, Iterator, Sequence

import pytest

from providers.errors import InvalidProviderID, NotFound
from providers.model import (
    Check,
    CheckStatus,
    Diagnosable,
    DiagnosisScope,
    Network,
    Outcome,
    Route,
    RouteProvider,
    RouteResult,
    RouteState,
    Target,
    no_guard,
)

from .world import ConformanceWorld, Supports

ANY_CLOUD_REFUSES = ("", "no-such-scheme://zone/instance")
"""providerIDs no adapter may accept, added to the world's own."""
RETRY_AFTER = 2.0
"""Seconds of retry-after the kit asks a throttling cloud to send."""


class Fenced(Exception):
    """What the kit's refusing write guard raises (a controller's leader fence)."""


def uid(index: int) -> str:
    """A Kubernetes-style node uid, stable per index (GCP names routes after it)."""
    return f"{index:08x}-c0de-4c0d-8c0d-0123456789ab"


def destination(world: ConformanceWorld, index: int, family: int = 4) -> Network:
    """The index-th node block (/24 IPv4, /64 IPv6) of the world's cluster CIDR of `family`."""
    cidr = next((c for c in world.cluster_cidrs if c.version == family), None)
    assert cidr is not None, f"the world offers no IPv{family} cluster CIDR"
    prefix = 24 if family == 4 else 64
    assert index < 2 ** (prefix - cidr.prefixlen), f"cluster CIDR {cidr} has no node block {index}"
    start = int(cidr.network_address) + index * 2 ** (cidr.max_prefixlen - prefix)
    return ipaddress.ip_network((start, prefix))


def a_route(world: ConformanceWorld, index: int, target: Target, family: int = 4) -> Route:
    """node-<index>'s desired route, as the planner builds it."""
    return Route(
        destination(world, index, family), target, owned=True, node=f"node-{index}", node_uid=uid(index)
    )


def targets(world: ConformanceWorld) -> list[Target]:
    """The distinct instances behind the world's providerIDs, parsed as the controller parses them."""
    found: list[Target] = []
    for provider_id in world.provider_ids:
        target = world.provider.target_for(provider_id)
        if target not in found:
            found.append(target)
    assert len(found) >= 2, "the world's provider_ids must name at least two instances"
    return found


def ours(world: ConformanceWorld) -> dict[Network, Route]:
    """The routes of this cluster in the world's table, by destination."""
    return {r.destination: r for r in world.provider.list_routes(world.table) if r.owned}


def foreign_at(world: ConformanceWorld, where: Network) -> list[Route]:
    return [r for r in world.provider.list_routes(world.table) if r.destination == where and not r.owned]


def replacing(world: ConformanceWorld, desired: Route) -> Route:
    """`desired` carrying the cloud handle of the route it replaces, as the planner hands it over."""
    current = ours(world).get(desired.destination)
    return dataclasses.replace(desired, cloud_id=current.cloud_id if current else "")


def outcomes(results: Sequence[RouteResult]) -> list[Outcome]:
    return [r.outcome for r in results]


def require(world: ConformanceWorld, item: str) -> None:
    """Skip, with the world's reason, a contract item the cloud cannot model."""
    supports: Supports = world.supports
    if not getattr(supports, item):
        pytest.skip(f"{world.provider.name} cannot model {item}: {supports.why_not[item]}")


@contextlib.contextmanager
def guarded(world: ConformanceWorld, guard: Callable[[], None]) -> Iterator[None]:
    world.provider.guard_writes(guard)
    try:
        yield
    finally:
        world.provider.guard_writes(no_guard)


def refusing_at(call: int) -> Callable[[], None]:
    """A guard that lets `call - 1` writes through, then refuses every one."""
    seen = [0]

    def guard() -> None:
        seen[0] += 1
        if seen[0] >= call:
            raise Fenced(f"guard call {seen[0]}")

    return guard


FAMILIES = pytest.mark.parametrize("family", [4, 6], ids=["ipv4", "ipv6"])


def in_family(world: ConformanceWorld, family: int) -> None:
    if family == 6:
        require(world, "ipv6")


class RouteProviderContract:
    """Every behaviour the engine relies on, one test each. Not collected itself (no `Test` prefix):
    subclass it as `Test<Cloud>Conformance` next to a `conformance_world` fixture."""

    # --- adoption ------------------------------------------------------------------------------

    def test_an_adoptable_route_is_listed_adoptable_and_not_owned(
        self, conformance_world: ConformanceWorld
    ) -> None:
        world = conformance_world
        require(world, "adoption")
        target = targets(world)[0]
        where = destination(world, 20)
        world.add_adoptable_route(where, target)

        [listed] = [r for r in world.provider.list_routes(world.table) if r.destination == where]

        assert (listed.adoptable, listed.owned, listed.target) == (True, False, target)
        assert listed.cloud_id

    def test_adoption_makes_the_route_ours_and_its_destination_stays_routed(
        self, conformance_world: ConformanceWorld
    ) -> None:
        """Listed through the adapter after every cloud call of the adoption: the destination always
        has an active route to the node's instance; at the end only ours is left."""
        world = conformance_world
        require(world, "adoption")
        target = targets(world)[0]
        route = a_route(world, 21, target)
        world.add_adoptable_route(route.destination, target)
        [legacy] = [r for r in world.provider.list_routes(world.table) if r.destination == route.destination]
        calls: list[str] = []
        unrouted: list[str] = []
        listing = [False]

        def after_each_call(api: str, code: str, seconds: float) -> None:
            if listing[0]:
                return  # the kit's own list below
            listing[0] = True
            try:
                calls.append(api)
                listed = world.provider.list_routes(world.table)
            finally:
                listing[0] = False
            if not any(
                r.destination == route.destination and r.target == target and r.state is RouteState.ACTIVE
                for r in listed
            ):
                unrouted.append(f"after call {len(calls)} ({api} {code})")

        world.provider.observe(after_each_call)
        adopting = dataclasses.replace(route, cloud_id=legacy.cloud_id)
        [result] = world.provider.adopt_routes(world.table, [adopting])
        listing[0] = True
        listed = [r for r in world.provider.list_routes(world.table) if r.destination == route.destination]

        assert result.outcome is Outcome.OK, result.message
        assert calls
        assert unrouted == []
        assert [(r.owned, r.node, r.target) for r in listed] == [(True, route.node, target)]

    def test_adopting_a_route_that_is_not_adoptable_is_a_conflict_and_leaves_it(
        self, conformance_world: ConformanceWorld
    ) -> None:
        world = conformance_world
        require(world, "adoption")
        first, second = targets(world)[:2]
        route = a_route(world, 22, first)
        foreign = world.add_foreign_route(destination(world, 23))
        wrong_target = world.add_adoptable_route(route.destination, second)
        before = (foreign(), wrong_target())
        listed = {r.destination: r for r in world.provider.list_routes(world.table)}
        asks = [
            dataclasses.replace(route, cloud_id=listed[route.destination].cloud_id),
            dataclasses.replace(a_route(world, 23, first), cloud_id=listed[destination(world, 23)].cloud_id),
        ]

        results = world.provider.adopt_routes(world.table, asks)

        assert outcomes(results) == [Outcome.CONFLICT, Outcome.CONFLICT]
        assert (foreign(), wrong_target()) == before
        assert not ours(world)

    def test_adoption_passes_the_write_guard(self, conformance_world: ConformanceWorld) -> None:
        world = conformance_world
        require(world, "adoption")
        target = targets(world)[0]
        route = a_route(world, 24, target)
        probe = world.add_adoptable_route(route.destination, target)
        legacy = probe()
        [listed] = [r for r in world.provider.list_routes(world.table) if r.destination == route.destination]
        start = world.mutating_requests()

        with guarded(world, refusing_at(1)), pytest.raises(Fenced):
            world.provider.adopt_routes(world.table, [dataclasses.replace(route, cloud_id=listed.cloud_id)])

        assert world.mutating_requests() == start
        assert probe() == legacy

    def test_an_adapter_without_adoption_answers_fatal_and_sends_nothing(
        self, conformance_world: ConformanceWorld
    ) -> None:
        world = conformance_world
        if world.supports.adoption:
            pytest.skip(f"{world.provider.name} adopts routes (the tests above)")
        route = a_route(world, 25, targets(world)[0])
        start = world.mutating_requests()

        results = world.provider.adopt_routes(world.table, [route, a_route(world, 26, targets(world)[1])])

        assert outcomes(results) == [Outcome.FATAL, Outcome.FATAL]
        assert world.mutating_requests() == start
        assert not any(r.adoptable for r in world.provider.list_routes(world.table))

    # --- tables, limits, targets --------------------------------------------------------------

    def test_the_adapter_implements_the_protocol(self, conformance_world: ConformanceWorld) -> None:
        provider = conformance_world.provider

        assert isinstance(provider, RouteProvider)
        assert provider.name

    def test_tables_include_the_worlds_table_and_are_stable(
        self, conformance_world: ConformanceWorld
    ) -> None:
        tables = list(conformance_world.provider.tables())

        assert conformance_world.table in tables
        assert len(set(tables)) == len(tables)
        assert list(conformance_world.provider.tables()) == tables

    def test_limits_are_usable_by_the_executor(self, conformance_world: ConformanceWorld) -> None:
        limits = conformance_world.provider.limits

        assert limits.write_rate > 0
        assert limits.read_rate > 0
        assert limits.write_burst >= 1
        assert limits.read_burst >= 1
        assert limits.max_batch >= 1
        assert limits.routes_per_table is None or limits.routes_per_table > 0
        assert limits.writers_per_table is None or limits.writers_per_table >= 1

    def test_a_fresh_table_lists_no_route_of_ours(self, conformance_world: ConformanceWorld) -> None:
        assert ours(conformance_world) == {}

    def test_provider_ids_parse_to_their_targets(self, conformance_world: ConformanceWorld) -> None:
        parsed = {p: conformance_world.provider.target_for(p) for p in conformance_world.provider_ids}

        assert parsed == dict(conformance_world.provider_ids)

    def test_invalid_provider_ids_are_refused_naming_the_value(
        self, conformance_world: ConformanceWorld
    ) -> None:
        for provider_id in (*conformance_world.invalid_provider_ids, *ANY_CLOUD_REFUSES):
            with pytest.raises(InvalidProviderID) as raised:
                conformance_world.provider.target_for(provider_id)
            assert repr(provider_id) in str(raised.value), provider_id

    def test_prepare_target_readies_every_instance_and_can_be_repeated(
        self, conformance_world: ConformanceWorld
    ) -> None:
        for target in targets(conformance_world):
            conformance_world.provider.prepare_target(target)
            conformance_world.provider.prepare_target(target)

    def test_prepare_target_of_a_missing_instance_is_not_found_naming_it(
        self, conformance_world: ConformanceWorld
    ) -> None:
        """NotFound is what tells the executor the node's instance is gone (not worth retrying)."""
        require(conformance_world, "verifies_targets")
        missing = conformance_world.missing_target

        with pytest.raises(NotFound, match=re.escape(missing.instance)):
            conformance_world.provider.prepare_target(missing)

    # --- idempotent writes --------------------------------------------------------------------

    @FAMILIES
    def test_created_route_is_listed_owned_and_active_with_the_parsed_target(
        self, conformance_world: ConformanceWorld, family: int
    ) -> None:
        in_family(conformance_world, family)
        target = targets(conformance_world)[0]
        route = a_route(conformance_world, 0, target, family)

        assert outcomes(conformance_world.provider.create_routes(conformance_world.table, [route])) == [
            Outcome.OK
        ]

        listed = ours(conformance_world)[route.destination]
        # Equal to what target_for parsed, or the planner would replace a converged route every sync.
        assert (listed.owned, listed.state, listed.target) == (True, RouteState.ACTIVE, target)

    @pytest.mark.parametrize(("item", "mark"), [("node_names", "node"), ("node_uids", "node_uid")])
    def test_listed_routes_of_ours_carry_their_node_marks(
        self, conformance_world: ConformanceWorld, item: str, mark: str
    ) -> None:
        require(conformance_world, item)
        routes = [a_route(conformance_world, i, t) for i, t in enumerate(targets(conformance_world))]
        conformance_world.provider.create_routes(conformance_world.table, routes)

        listed = ours(conformance_world)

        assert {r.destination: getattr(listed[r.destination], mark) for r in routes} == {
            r.destination: getattr(r, mark) for r in routes
        }

    @FAMILIES
    def test_creating_a_route_again_is_already_done_and_changes_nothing(
        self, conformance_world: ConformanceWorld, family: int
    ) -> None:
        """A later call holding the route again answers already_done for it; the very same call sent
        again (a retry, which a cloud with idempotency tokens may answer as the original) succeeds."""
        in_family(conformance_world, family)
        target = targets(conformance_world)[0]
        route, neighbour = (a_route(conformance_world, i, target, family) for i in (1, 2))
        first = conformance_world.provider.create_routes(conformance_world.table, [route])
        before = ours(conformance_world)[route.destination]

        requests = conformance_world.mutating_requests()
        again = conformance_world.provider.create_routes(conformance_world.table, [route, neighbour])
        retried = conformance_world.provider.create_routes(conformance_world.table, [route])
        sent = conformance_world.mutating_requests() - requests

        assert outcomes(first + again) == [Outcome.OK, Outcome.ALREADY_DONE, Outcome.OK]
        assert retried[0].outcome.succeeded
        assert sent <= 3, "no request beyond one create per route (nothing was replaced)"
        assert ours(conformance_world)[route.destination] == before
        assert set(ours(conformance_world)) == {route.destination, neighbour.destination}

    @FAMILIES
    def test_replace_points_the_route_at_the_new_target_and_can_be_repeated(
        self, conformance_world: ConformanceWorld, family: int
    ) -> None:
        in_family(conformance_world, family)
        old, new = targets(conformance_world)[:2]
        conformance_world.provider.create_routes(
            conformance_world.table, [a_route(conformance_world, 2, old, family)]
        )
        moved = a_route(conformance_world, 2, new, family)

        first = conformance_world.provider.replace_routes(
            conformance_world.table, [replacing(conformance_world, moved)]
        )
        after_first = ours(conformance_world)[moved.destination]
        second = conformance_world.provider.replace_routes(
            conformance_world.table, [replacing(conformance_world, moved)]
        )

        assert outcomes(first) == [Outcome.OK]
        assert second[0].outcome.succeeded
        assert (after_first.target, after_first.state) == (new, RouteState.ACTIVE)
        assert (ours(conformance_world)[moved.destination].target, len(ours(conformance_world))) == (new, 1)

    @FAMILIES
    def test_delete_removes_the_route_and_a_second_delete_is_already_done(
        self, conformance_world: ConformanceWorld, family: int
    ) -> None:
        in_family(conformance_world, family)
        target = targets(conformance_world)[0]
        route, bystander = (a_route(conformance_world, i, target, family) for i in (3, 4))
        conformance_world.provider.create_routes(conformance_world.table, [route, bystander])
        listed = ours(conformance_world)

        first = conformance_world.provider.delete_routes(conformance_world.table, [listed[route.destination]])
        second = conformance_world.provider.delete_routes(
            conformance_world.table, [listed[route.destination]]
        )

        assert outcomes(first + second) == [Outcome.OK, Outcome.ALREADY_DONE]
        assert ours(conformance_world) == {bystander.destination: listed[bystander.destination]}

    @FAMILIES
    def test_create_over_our_route_with_another_target_repoints_it(
        self, conformance_world: ConformanceWorld, family: int
    ) -> None:
        in_family(conformance_world, family)
        require(conformance_world, "settles_stale_writes")
        old, new = targets(conformance_world)[:2]
        conformance_world.provider.create_routes(
            conformance_world.table, [a_route(conformance_world, 4, old, family)]
        )

        [result] = conformance_world.provider.create_routes(
            conformance_world.table, [a_route(conformance_world, 4, new, family)]
        )

        assert result.outcome is Outcome.OK
        assert [(r.target, r.state) for r in ours(conformance_world).values()] == [(new, RouteState.ACTIVE)]

    def test_replace_of_a_route_that_vanished_creates_it(self, conformance_world: ConformanceWorld) -> None:
        require(conformance_world, "settles_stale_writes")
        route = a_route(conformance_world, 5, targets(conformance_world)[0])

        [result] = conformance_world.provider.replace_routes(conformance_world.table, [route])

        assert result.outcome.succeeded
        assert ours(conformance_world)[route.destination].target == route.target

    # --- one outcome per route ----------------------------------------------------------------

    def test_each_route_of_a_call_gets_its_own_outcome_in_order(
        self, conformance_world: ConformanceWorld
    ) -> None:
        """A conflict and a missing instance in the middle of a call fail only their own routes."""
        target = targets(conformance_world)[0]
        routes = [
            a_route(conformance_world, 6, target),
            a_route(conformance_world, 7, target),
            a_route(conformance_world, 8, conformance_world.missing_target),
            a_route(conformance_world, 9, target),
        ]
        probe = conformance_world.add_foreign_route(routes[1].destination, blocking=routes[1])
        foreign = probe()

        results = conformance_world.provider.create_routes(conformance_world.table, routes)

        assert [r.route.destination for r in results] == [r.destination for r in routes]
        assert outcomes(results) == [Outcome.OK, Outcome.CONFLICT, Outcome.FATAL, Outcome.OK]
        assert [r.target_gone for r in results] == [False, False, True, False]
        assert set(ours(conformance_world)) == {routes[0].destination, routes[3].destination}
        assert probe() == foreign

    def test_a_call_larger_than_max_batch_answers_every_route_in_order(
        self, conformance_world: ConformanceWorld
    ) -> None:
        both = targets(conformance_world)[:2]
        count = conformance_world.provider.limits.max_batch + 1
        routes = [a_route(conformance_world, 16 + i, both[i % 2]) for i in range(count)]

        created = conformance_world.provider.create_routes(conformance_world.table, routes)
        listed = ours(conformance_world)
        deleted = conformance_world.provider.delete_routes(
            conformance_world.table, [listed[r.destination] for r in routes]
        )

        assert [r.route.destination for r in created] == [r.destination for r in routes]
        assert outcomes(created) == [Outcome.OK] * count
        assert {d: r.target for d, r in listed.items()} == {r.destination: r.target for r in routes}
        assert [r.route.destination for r in deleted] == [r.destination for r in routes]
        assert outcomes(deleted) == [Outcome.OK] * count
        assert ours(conformance_world) == {}

    def test_a_delete_of_routes_some_already_gone_answers_each(
        self, conformance_world: ConformanceWorld
    ) -> None:
        target = targets(conformance_world)[0]
        present, gone = a_route(conformance_world, 10, target), a_route(conformance_world, 11, target)
        conformance_world.provider.create_routes(conformance_world.table, [present])

        results = conformance_world.provider.delete_routes(
            conformance_world.table, [ours(conformance_world)[present.destination], gone]
        )

        assert outcomes(results) == [Outcome.OK, Outcome.ALREADY_DONE]
        assert ours(conformance_world) == {}

    # --- ownership ----------------------------------------------------------------------------

    def test_foreign_route_is_listed_not_owned_and_survives_our_writes(
        self, conformance_world: ConformanceWorld
    ) -> None:
        first, second = targets(conformance_world)[:2]
        where = destination(conformance_world, 12)
        probe = conformance_world.add_foreign_route(where)
        foreign = probe()

        conformance_world.provider.create_routes(
            conformance_world.table,
            [a_route(conformance_world, 0, first), a_route(conformance_world, 1, first)],
        )
        conformance_world.provider.replace_routes(
            conformance_world.table, [replacing(conformance_world, a_route(conformance_world, 1, second))]
        )
        conformance_world.provider.delete_routes(
            conformance_world.table, [ours(conformance_world)[destination(conformance_world, 0)]]
        )

        assert foreign is not None
        assert probe() == foreign
        assert len(foreign_at(conformance_world, where)) == 1
        assert where not in ours(conformance_world)

    def test_create_over_a_foreign_route_is_a_conflict_and_leaves_it(
        self, conformance_world: ConformanceWorld
    ) -> None:
        route = a_route(conformance_world, 13, targets(conformance_world)[0])
        probe = conformance_world.add_foreign_route(route.destination, blocking=route)
        foreign = probe()

        [result] = conformance_world.provider.create_routes(conformance_world.table, [route])

        assert result.outcome is Outcome.CONFLICT
        assert probe() == foreign
        assert route.destination not in ours(conformance_world)

    def test_a_route_listed_as_not_owned_is_never_deleted(self, conformance_world: ConformanceWorld) -> None:
        require(conformance_world, "refuses_foreign_deletes")
        blocked = a_route(conformance_world, 14, targets(conformance_world)[0])
        probes = [
            conformance_world.add_foreign_route(destination(conformance_world, 15)),
            conformance_world.add_foreign_route(blocked.destination, blocking=blocked),
        ]
        before = [probe() for probe in probes]
        foreign = [
            *foreign_at(conformance_world, destination(conformance_world, 15)),
            *foreign_at(conformance_world, blocked.destination),
        ]
        requests = conformance_world.mutating_requests()

        results = conformance_world.provider.delete_routes(conformance_world.table, foreign)

        assert len(foreign) == 2
        assert all(r.outcome in (Outcome.CONFLICT, Outcome.FATAL) for r in results), outcomes(results)
        assert [probe() for probe in probes] == before
        assert conformance_world.mutating_requests() == requests

    # --- instances that go away ---------------------------------------------------------------

    def test_route_to_a_terminated_instance_is_an_owned_blackhole_replace_and_delete_clean(
        self, conformance_world: ConformanceWorld
    ) -> None:
        require(conformance_world, "blackholes")
        gone, alive = targets(conformance_world)[:2]
        stuck, stale = a_route(conformance_world, 0, gone), a_route(conformance_world, 1, gone)
        conformance_world.provider.create_routes(conformance_world.table, [stuck, stale])
        conformance_world.terminate(gone)

        listed = ours(conformance_world)
        moved = conformance_world.provider.replace_routes(
            conformance_world.table, [replacing(conformance_world, a_route(conformance_world, 0, alive))]
        )
        cleaned = conformance_world.provider.delete_routes(
            conformance_world.table, [listed[stale.destination]]
        )

        assert {(r.state, r.target) for r in listed.values()} == {(RouteState.BLACKHOLE, None)}
        assert set(listed) == {stuck.destination, stale.destination}
        assert outcomes(moved + cleaned) == [Outcome.OK, Outcome.OK]
        after = ours(conformance_world)
        assert list(after) == [stuck.destination]
        assert (after[stuck.destination].state, after[stuck.destination].target) == (RouteState.ACTIVE, alive)

    # --- quota and throttling -----------------------------------------------------------------

    def test_routes_beyond_the_quota_are_quota_exceeded_each_and_not_created(
        self, conformance_world: ConformanceWorld
    ) -> None:
        require(conformance_world, "route_quota")
        target = targets(conformance_world)[0]
        routes = [a_route(conformance_world, i, target) for i in range(4)]
        conformance_world.limit_routes(2)

        results = conformance_world.provider.create_routes(conformance_world.table, routes)

        assert outcomes(results) == [Outcome.OK, Outcome.OK, Outcome.QUOTA_EXCEEDED, Outcome.QUOTA_EXCEEDED]
        assert set(ours(conformance_world)) == {routes[0].destination, routes[1].destination}

    def test_throttled_create_is_a_throttled_retry_that_creates_nothing(
        self, conformance_world: ConformanceWorld
    ) -> None:
        require(conformance_world, "throttling")
        route = a_route(conformance_world, 0, targets(conformance_world)[0])
        conformance_world.throttle_writes(1, RETRY_AFTER)

        [refused] = conformance_world.provider.create_routes(conformance_world.table, [route])
        nothing = ours(conformance_world)
        [later] = conformance_world.provider.create_routes(conformance_world.table, [route])

        assert (refused.outcome, refused.throttled) == (Outcome.RETRY, True)
        if not conformance_world.supports.retry_after:
            assert refused.retry_after is None  # the cloud never says: the adapter invents nothing
        assert nothing == {}
        assert later.outcome is Outcome.OK
        assert list(ours(conformance_world)) == [route.destination]

    def test_throttled_replace_and_delete_are_throttled_retries_that_change_nothing(
        self, conformance_world: ConformanceWorld
    ) -> None:
        require(conformance_world, "throttling")
        old, new = targets(conformance_world)[:2]
        conformance_world.provider.create_routes(
            conformance_world.table, [a_route(conformance_world, 0, old)]
        )
        before = ours(conformance_world)

        conformance_world.throttle_writes(1, RETRY_AFTER)
        replaced = conformance_world.provider.replace_routes(
            conformance_world.table, [replacing(conformance_world, a_route(conformance_world, 0, new))]
        )
        after_replace = ours(conformance_world)
        conformance_world.throttle_writes(1, RETRY_AFTER)
        deleted = conformance_world.provider.delete_routes(conformance_world.table, list(before.values()))

        assert [(r.outcome, r.throttled) for r in replaced + deleted] == [(Outcome.RETRY, True)] * 2
        assert after_replace == before
        assert ours(conformance_world) == before

    def test_throttled_write_carries_the_clouds_retry_after(
        self, conformance_world: ConformanceWorld
    ) -> None:
        require(conformance_world, "throttling")
        require(conformance_world, "retry_after")
        old, new = targets(conformance_world)[:2]
        conformance_world.throttle_writes(1, RETRY_AFTER)
        created = conformance_world.provider.create_routes(
            conformance_world.table, [a_route(conformance_world, 0, old)]
        )
        conformance_world.provider.create_routes(
            conformance_world.table, [a_route(conformance_world, 0, old)]
        )

        conformance_world.throttle_writes(1, RETRY_AFTER)
        replaced = conformance_world.provider.replace_routes(
            conformance_world.table, [replacing(conformance_world, a_route(conformance_world, 0, new))]
        )
        conformance_world.throttle_writes(1, RETRY_AFTER)
        deleted = conformance_world.provider.delete_routes(
            conformance_world.table, list(ours(conformance_world).values())
        )

        assert [r.retry_after for r in created + replaced + deleted] == [RETRY_AFTER] * 3

    def test_a_throttled_request_fails_only_the_routes_it_carried(
        self, conformance_world: ConformanceWorld
    ) -> None:
        require(conformance_world, "throttling")
        target = targets(conformance_world)[0]
        routes = [a_route(conformance_world, i, target) for i in range(3)]
        limits = conformance_world.provider.limits
        conformance_world.throttle_writes(1, RETRY_AFTER)

        results = conformance_world.provider.create_routes(conformance_world.table, routes)

        if limits.batch_api and len(routes) <= limits.max_batch:  # one request carried all three
            assert [(r.outcome, r.throttled) for r in results] == [(Outcome.RETRY, True)] * 3
            assert ours(conformance_world) == {}
        else:  # one request per route: only the first was refused
            assert [(r.outcome, r.throttled) for r in results] == [
                (Outcome.RETRY, True),
                (Outcome.OK, False),
                (Outcome.OK, False),
            ]
            assert set(ours(conformance_world)) == {routes[1].destination, routes[2].destination}

    # --- the write guard ----------------------------------------------------------------------

    def test_the_write_guard_runs_before_every_mutating_request(
        self, conformance_world: ConformanceWorld
    ) -> None:
        world = conformance_world
        old, new = targets(world)[:2]
        seen: list[int] = []
        start = world.mutating_requests()

        with guarded(world, lambda: seen.append(world.mutating_requests())):
            world.provider.create_routes(world.table, [a_route(world, 0, old), a_route(world, 1, old)])
            world.provider.create_routes(world.table, [a_route(world, 0, old)])
            world.provider.create_routes(world.table, [a_route(world, 0, new)])
            world.provider.replace_routes(world.table, [replacing(world, a_route(world, 1, new))])
            world.provider.delete_routes(world.table, list(ours(world).values()))
            for target in targets(world):
                world.provider.prepare_target(target)

        made = world.mutating_requests() - start
        assert made > 0
        # Request i went out only after a guard call that saw exactly i requests before it.
        assert [start + i for i in range(made) if start + i not in seen] == []

    @pytest.mark.parametrize("write", ["create", "create-over-ours", "replace", "delete"])
    def test_a_refusing_guard_stops_the_write_before_its_next_request(
        self, conformance_world: ConformanceWorld, write: str
    ) -> None:
        """Refused at each step of a multi-step write in turn: nothing more is sent, and a write
        refused at its first step changes nothing."""
        world = conformance_world
        if write == "create-over-ours":
            require(world, "settles_stale_writes")
        old, new = targets(world)[:2]
        start_state = {"create": None, "create-over-ours": old, "replace": old, "delete": old}[write]

        def set_up() -> None:
            """Bring route 0 to its starting state, retrying as the executor would."""
            for _ in range(3):
                current = ours(world).get(destination(world, 0))
                if start_state is None and current is not None:
                    world.provider.delete_routes(world.table, [current])
                elif start_state is not None and current is None:
                    world.provider.create_routes(world.table, [a_route(world, 0, start_state)])
                elif start_state is not None and current is not None and current.target != start_state:
                    world.provider.replace_routes(
                        world.table, [replacing(world, a_route(world, 0, start_state))]
                    )
                else:
                    return
            raise AssertionError(f"route 0 did not reach its starting state {start_state}")

        def act() -> list[RouteResult]:
            if write in ("create", "create-over-ours"):
                return world.provider.create_routes(world.table, [a_route(world, 0, new)])
            if write == "replace":
                return world.provider.replace_routes(world.table, [replacing(world, a_route(world, 0, new))])
            return world.provider.delete_routes(world.table, list(ours(world).values()))

        set_up()
        requests = world.mutating_requests()
        assert act()[0].outcome is Outcome.OK
        steps = world.mutating_requests() - requests
        assert steps > 0, "the write made no request"

        for step in range(1, steps + 1):  # each request of the write must be stoppable
            set_up()
            before, requests = ours(world), world.mutating_requests()
            with guarded(world, refusing_at(step)), pytest.raises(Fenced):
                act()
            assert world.mutating_requests() - requests == step - 1, f"refused at step {step}"
            if step == 1:
                assert ours(world) == before

    def test_a_refusing_guard_stops_prepare_target_writes(self, conformance_world: ConformanceWorld) -> None:
        world = conformance_world
        for target in targets(world):
            requests = world.mutating_requests()
            with guarded(world, refusing_at(1)), contextlib.suppress(Fenced):
                world.provider.prepare_target(target)
            assert world.mutating_requests() == requests, target

    # --- observers ----------------------------------------------------------------------------

    def test_observers_hear_every_mutating_request(self, conformance_world: ConformanceWorld) -> None:
        world = conformance_world
        heard: list[tuple[str, str, float]] = []
        world.provider.observe(lambda api, code, seconds: heard.append((api, code, seconds)))
        start = world.mutating_requests()

        world.provider.create_routes(world.table, [a_route(world, 0, targets(world)[0])])
        world.provider.delete_routes(world.table, list(ours(world).values()))

        made = world.mutating_requests() - start
        assert made > 0
        assert len(heard) >= made
        assert all(isinstance(api, str) and api and code and seconds >= 0 for api, code, seconds in heard)

    # --- doctor -------------------------------------------------------------------------------

    def test_diagnose_reports_neutral_checks_and_changes_nothing(
        self, conformance_world: ConformanceWorld
    ) -> None:
        """`diagnose` is optional; an adapter that has it reads only (its dry runs change nothing) and
        answers in `Check`s of its own area, each failure or warning with a fix."""
        world = conformance_world
        if not isinstance(world.provider, Diagnosable):
            pytest.skip(f"{world.provider.name}: no diagnose() (optional; doctor prints one '!' line)")
        world.provider.create_routes(world.table, [a_route(world, 0, targets(world)[0])])
        before = sorted(map(repr, world.provider.list_routes(world.table)))
        scope = DiagnosisScope(tuple(world.cluster_cidrs), tuple(dict.fromkeys(world.provider_ids.values())))

        checks = world.provider.diagnose(scope)

        assert checks
        assert all(isinstance(c, Check) and c.area == world.provider.name and c.found for c in checks)
        assert all(c.fix for c in checks if c.status is not CheckStatus.PASS)
        assert sorted(map(repr, world.provider.list_routes(world.table))) == before


__all__ = ["Fenced", "RouteProviderContract"]

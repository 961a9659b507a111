"""The GCP adapter's route writes and listing, through google-cloud-compute against the emulator."""

from __future__ import annotations

import ipaddress

import pytest
from gcp_helpers import CLUSTER, NETWORK, PROJECT, ZONE, a_provider, a_route, uid, with_instances

from providers.emulators.gce import BASE, GceEmulator
from providers.errors import Throttled, Transient
from providers.gcp import GcpProvider, Polling
from providers.model import Outcome, RouteState, Target

NETWORK_URL = f"{BASE}projects/{PROJECT}/global/networks/{NETWORK}"


def owned_routes(provider: GcpProvider) -> dict[str, Target | None]:
    return {str(r.destination): r.target for r in provider.list_routes(NETWORK) if r.owned}


def outcomes(results: list) -> list[Outcome]:  # type: ignore[type-arg]
    return [r.outcome for r in results]


def test_created_route_is_listed_as_owned_with_its_node_and_target(
    emulator: GceEmulator, provider: GcpProvider
) -> None:
    with_instances(emulator, 1)
    assert outcomes(provider.create_routes(NETWORK, [a_route(0)])) == [Outcome.OK]

    [listed] = [r for r in provider.list_routes(NETWORK) if r.owned]
    assert (listed.destination, listed.target, listed.state) == (
        ipaddress.ip_network("10.0.0.0/24"),
        Target("node-0", ZONE, PROJECT),
        RouteState.ACTIVE,
    )
    assert (listed.node, listed.node_uid, listed.cloud_id) == ("node-0", uid(0), f"{CLUSTER}-{uid(0)}")
    [stored] = [r for r in emulator.routes(PROJECT) if r["name"] == listed.cloud_id]
    assert stored["description"] == f"routectl: cluster={CLUSTER} node=node-0"
    assert stored["priority"] == 1000
    assert stored["network"] == NETWORK_URL


def test_dual_stack_node_gets_one_route_per_family_with_distinct_names(
    emulator: GceEmulator, provider: GcpProvider
) -> None:
    with_instances(emulator, 1)
    routes = [a_route(0), a_route(0, cidr="fd00:10:0:1::/64")]

    assert outcomes(provider.create_routes(NETWORK, routes)) == [Outcome.OK, Outcome.OK]
    names = {r.cloud_id for r in provider.list_routes(NETWORK) if r.owned}
    assert names == {f"{CLUSTER}-{uid(0)}", f"{CLUSTER}-{uid(0)}-v6"}
    assert {r.node_uid for r in provider.list_routes(NETWORK) if r.owned} == {uid(0)}


def test_listing_pages_through_more_than_500_routes(emulator: GceEmulator, provider: GcpProvider) -> None:
    for i in range(1100):
        emulator.add_route(
            PROJECT,
            {
                "name": f"{CLUSTER}-{uid(i)}",
                "description": f"routectl: cluster={CLUSTER} node=node-{i}",
                "network": NETWORK_URL,
                "destRange": f"10.{i // 256}.{i % 256}.0/24",
                "nextHopInstance": f"{BASE}projects/{PROJECT}/zones/{ZONE}/instances/node-{i}",
            },
        )

    listed = provider.list_routes(NETWORK)

    assert len([r for r in listed if r.owned]) == 1100
    assert emulator.calls()["routes.list"] == 3


def test_listing_filters_on_the_network_server_side(emulator: GceEmulator, provider: GcpProvider) -> None:
    other = emulator.add_network(PROJECT, "other-vpc")
    emulator.add_route(PROJECT, {"name": "elsewhere", "network": other, "destRange": "10.9.0.0/16"})

    assert "10.9.0.0/16" not in {str(r.destination) for r in provider.list_routes(NETWORK)}


def test_other_clusters_default_and_legacy_routes_are_listed_but_never_owned(
    emulator: GceEmulator, provider: GcpProvider
) -> None:
    with_instances(emulator, 1)
    hop = f"{BASE}projects/{PROJECT}/zones/{ZONE}/instances/node-0"
    foreign = {
        f"other-{uid(1)}": "routectl: cluster=other node=node-1",
        f"{CLUSTER}-{uid(2)}": "k8s-node-route",
        f"{CLUSTER}-{uid(3)}": "routectl: cluster=prod-2 node=node-3",
    }
    for n, (name, description) in enumerate(foreign.items(), start=1):
        emulator.add_route(
            PROJECT,
            {
                "name": name,
                "description": description,
                "network": NETWORK_URL,
                "destRange": f"10.0.{n}.0/24",
                "nextHopInstance": hop,
            },
        )

    listed = provider.list_routes(NETWORK)

    assert {r.cloud_id for r in listed if not r.owned} >= set(foreign)
    assert any(r.next_hop.endswith("default-internet-gateway") and not r.owned for r in listed)
    assert not [r for r in listed if r.owned]


def test_name_taken_by_a_legacy_route_is_a_conflict_and_left_untouched(
    emulator: GceEmulator, provider: GcpProvider
) -> None:
    with_instances(emulator, 2)
    legacy = {
        "name": f"{CLUSTER}-{uid(0)}",
        "description": "k8s-node-route",
        "network": NETWORK_URL,
        "destRange": "10.0.0.0/24",
        "nextHopInstance": f"{BASE}projects/{PROJECT}/zones/{ZONE}/instances/node-1",
    }
    emulator.add_route(PROJECT, legacy)
    before = emulator.routes(PROJECT)

    [result] = provider.create_routes(NETWORK, [a_route(0)])

    assert result.outcome is Outcome.CONFLICT
    assert "not owned" in result.message
    assert emulator.routes(PROJECT) == before


def test_delete_refuses_a_route_without_the_cluster_prefix(
    emulator: GceEmulator, provider: GcpProvider
) -> None:
    before = emulator.routes(PROJECT)
    default = next(r for r in provider.list_routes(NETWORK) if not r.owned)

    [result] = provider.delete_routes(NETWORK, [default])

    assert result.outcome is Outcome.FATAL
    assert emulator.routes(PROJECT) == before


def test_route_whose_instance_is_gone_is_listed_as_blackhole(
    emulator: GceEmulator, provider: GcpProvider
) -> None:
    with_instances(emulator, 1)
    provider.create_routes(NETWORK, [a_route(0)])
    emulator.delete_instance(PROJECT, ZONE, "node-0")

    [route] = [r for r in provider.list_routes(NETWORK) if r.owned]

    assert (route.state, route.target) == (RouteState.BLACKHOLE, None)
    assert route.next_hop.endswith("instances/node-0")


def test_insert_to_a_missing_instance_is_fatal_and_flags_the_target_gone(provider: GcpProvider) -> None:
    [result] = provider.create_routes(NETWORK, [a_route(0)])

    assert (result.outcome, result.target_gone) == (Outcome.FATAL, True)
    assert "node-0" in result.message


def test_operations_that_finish_late_are_polled_to_completion(emulator: GceEmulator) -> None:
    emulator.operation_delay = 0.2
    with_instances(emulator, 5)
    adapter = a_provider(emulator)

    results = adapter.create_routes(NETWORK, [a_route(i) for i in range(5)])

    assert outcomes(results) == [Outcome.OK] * 5
    assert len(owned_routes(adapter)) == 5
    assert emulator.calls()["globalOperations.get"] >= 5
    adapter.close()


def test_operation_still_running_at_the_deadline_is_retry_then_already_done(emulator: GceEmulator) -> None:
    emulator.operation_delay = 60.0
    with_instances(emulator, 1)
    adapter = a_provider(emulator, polling=Polling(initial=0.01, maximum=0.02, timeout=0.1))

    [first] = adapter.create_routes(NETWORK, [a_route(0)])
    emulator.finish_operations()
    [second] = adapter.create_routes(NETWORK, [a_route(0)])

    assert (first.outcome, second.outcome) == (Outcome.RETRY, Outcome.ALREADY_DONE)
    assert "not done" in first.message
    adapter.close()


def test_routes_quota_exhaustion_is_reported_per_route(emulator: GceEmulator, provider: GcpProvider) -> None:
    emulator.routes_quota = len(emulator.routes(PROJECT)) + 2
    with_instances(emulator, 4)

    results = provider.create_routes(NETWORK, [a_route(i) for i in range(4)])

    assert outcomes(results) == [Outcome.OK, Outcome.OK, Outcome.QUOTA_EXCEEDED, Outcome.QUOTA_EXCEEDED]
    assert "ROUTES" in results[2].message


def test_synchronous_routes_quota_error_is_quota_exceeded(
    emulator: GceEmulator, provider: GcpProvider
) -> None:
    with_instances(emulator, 1)
    emulator.fail_next(
        "routes.insert", status=403, reason="quotaExceeded", message="Quota 'ROUTES' exceeded.  Limit: 100.0"
    )

    assert outcomes(provider.create_routes(NETWORK, [a_route(0)])) == [Outcome.QUOTA_EXCEEDED]


def test_rate_limited_inserts_are_retry_and_the_rest_succeed(
    emulator: GceEmulator, provider: GcpProvider
) -> None:
    with_instances(emulator, 4)
    provider.tables()
    emulator.rate_limit(rate=0.001, burst=2, apis={"routes.insert"})

    results = provider.create_routes(NETWORK, [a_route(i) for i in range(4)])

    assert sorted(r.outcome.value for r in results) == ["ok", "ok", "retry", "retry"]
    assert all("Rate Limit" in r.message for r in results if r.outcome is Outcome.RETRY)
    assert [r.throttled for r in results].count(True) == 2


@pytest.mark.parametrize("reason", ["rateLimitExceeded", "userRateLimitExceeded"])
def test_rate_limited_listing_raises_throttled(
    emulator: GceEmulator, provider: GcpProvider, reason: str
) -> None:
    provider.tables()
    emulator.fail_next("routes.list", status=403, reason=reason, message="Rate Limit Exceeded")

    with pytest.raises(Throttled, match="Rate Limit"):
        provider.list_routes(NETWORK)


def test_server_errors_are_retry_for_writes_and_transient_for_reads(
    emulator: GceEmulator, provider: GcpProvider
) -> None:
    with_instances(emulator, 1)
    provider.tables()
    emulator.fail_next("routes.insert", status=503)
    emulator.fail_next("routes.list", status=500)

    assert outcomes(provider.create_routes(NETWORK, [a_route(0)])) == [Outcome.RETRY]
    with pytest.raises(Transient, match="500"):
        provider.list_routes(NETWORK)


def test_failed_operation_polls_are_retried_until_the_operation_is_done(emulator: GceEmulator) -> None:
    emulator.operation_delay = 0.05
    with_instances(emulator, 1)
    adapter = a_provider(emulator)
    emulator.fail_next("globalOperations.get", status=503, count=2)

    assert outcomes(adapter.create_routes(NETWORK, [a_route(0)])) == [Outcome.OK]
    adapter.close()


def test_other_client_errors_are_fatal_with_the_clouds_message(
    emulator: GceEmulator, provider: GcpProvider
) -> None:
    with_instances(emulator, 1)
    emulator.fail_next("routes.insert", status=400, reason="invalid", message="Invalid value for field 'x'")

    [result] = provider.create_routes(NETWORK, [a_route(0)])

    assert result.outcome is Outcome.FATAL
    assert "Invalid value for field 'x'" in result.message


def test_observer_sees_every_call_with_its_code(emulator: GceEmulator, provider: GcpProvider) -> None:
    seen: list[tuple[str, str]] = []
    provider.observe(lambda api, code, seconds: seen.append((api, code)))
    with_instances(emulator, 1)
    emulator.fail_next("routes.insert", status=403, reason="rateLimitExceeded", message="Rate Limit Exceeded")

    for _ in range(3):  # throttled, created, already there
        provider.create_routes(NETWORK, [a_route(0)])

    assert ("routes.insert", "rateLimitExceeded") in seen
    assert ("routes.insert", "alreadyExists") in seen
    assert sorted({api for api, _ in seen}) == sorted(emulator.calls())
    assert len(seen) == sum(emulator.calls().values())


def test_an_operation_that_cannot_be_read_leaves_the_write_unknown_not_done(
    emulator: GceEmulator, provider: GcpProvider
) -> None:
    with_instances(emulator, 1)
    provider.create_routes(NETWORK, [a_route(0)])
    listed = [r for r in provider.list_routes(NETWORK) if r.owned]
    emulator.operation_delay = 0.2
    emulator.fail_next("globalOperations.get", status=404, reason="notFound", message="operation gone")

    [result] = provider.delete_routes(NETWORK, listed)

    assert result.outcome is Outcome.RETRY  # a 404 on the operation is not a 404 on the route
    assert "cannot read operation" in result.message

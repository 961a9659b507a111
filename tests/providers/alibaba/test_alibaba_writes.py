"""CreateRouteEntries / DeleteRouteEntries / replace through the real SDK against the VPC emulator."""

from __future__ import annotations

import pytest

from providers.alibaba import AlibabaProvider, PollPolicy
from providers.emulators.alibaba import AlibabaVpcEmulator
from providers.model import Outcome

from .conftest import VPC, Build, a_route, instances_for


def test_thousand_routes_take_twenty_write_calls_per_table(
    emulator: AlibabaVpcEmulator, make_provider: Build
) -> None:
    emulator.add_table(VPC, "vtb-big", quota=1000)
    routes = [a_route(i) for i in range(1000)]
    instances_for(emulator, routes)
    provider = make_provider()

    results = provider.create_routes("vtb-big", routes)

    assert {r.outcome for r in results} == {Outcome.OK}
    assert emulator.calls["CreateRouteEntries"] == 20
    assert len(emulator.routes("vtb-big", type_="Custom")) == 1000


def test_results_come_back_in_request_order(
    emulator: AlibabaVpcEmulator, provider: AlibabaProvider, table: str
) -> None:
    routes = [a_route(i) for i in range(70)]
    instances_for(emulator, routes)

    results = provider.create_routes(table, routes)

    assert [r.route for r in results] == routes


def test_create_reports_ok_only_once_entries_are_available(
    emulator: AlibabaVpcEmulator, provider: AlibabaProvider, table: str
) -> None:
    emulator.create_delay = 0.2
    routes = [a_route(i) for i in range(3)]
    instances_for(emulator, routes)

    results = provider.create_routes(table, routes)

    assert {r.outcome for r in results} == {Outcome.OK}
    assert {r.status for r in emulator.routes(table, type_="Custom")} == {"Available"}


def test_entries_still_creating_at_the_deadline_are_retried(
    emulator: AlibabaVpcEmulator, make_provider: Build, table: str
) -> None:
    emulator.create_delay = 30.0
    provider = make_provider(poll=PollPolicy(first=0.01, cap=0.02, timeout=0.2))
    route = a_route(1)
    instances_for(emulator, [route])

    [result] = provider.create_routes(table, [route])

    assert result.outcome is Outcome.RETRY
    assert "pending" in result.message


@pytest.mark.parametrize("code", ["TaskConflict", "OperationConflict"])
def test_write_to_a_busy_vpc_is_retried_not_failed(
    emulator: AlibabaVpcEmulator, provider: AlibabaProvider, table: str, code: str
) -> None:
    emulator.busy_code = code
    emulator.add_route(table, "10.9.0.0/24", "i-other", status="Creating")
    route = a_route(1)
    instances_for(emulator, [route])

    [result] = provider.create_routes(table, [route])

    assert result.outcome is Outcome.RETRY
    assert code in result.message
    emulator.set_route_status(table, "10.9.0.0/24", "Available")
    assert provider.create_routes(table, [route])[0].outcome is Outcome.OK


def test_throttled_status_poll_waits_and_still_confirms_the_write(
    emulator: AlibabaVpcEmulator, provider: AlibabaProvider, table: str
) -> None:
    route = a_route(1)
    instances_for(emulator, [route])
    emulator.throttle("DescribeRouteEntryList", times=2, retry_after_ms=20)

    [result] = provider.create_routes(table, [route])

    assert result.outcome is Outcome.OK


def test_unnamed_ccm_route_to_the_same_instance_is_a_conflict_not_success(
    emulator: AlibabaVpcEmulator, provider: AlibabaProvider, table: str
) -> None:
    route = a_route(1)
    instances_for(emulator, [route])
    emulator.add_route(table, str(route.destination), route.target.instance if route.target else "")

    [result] = provider.create_routes(table, [route])

    assert result.outcome is Outcome.CONFLICT


def test_stale_client_token_replay_does_not_hide_a_deleted_route(
    emulator: AlibabaVpcEmulator, provider: AlibabaProvider, table: str
) -> None:
    route = a_route(1)
    instances_for(emulator, [route])
    provider.create_routes(table, [route])
    provider.delete_routes(table, provider.list_routes(table))

    replayed = provider.create_routes(table, [route])
    fresh = provider.create_routes(table, [route])

    assert replayed[0].outcome is Outcome.RETRY
    assert fresh[0].outcome is Outcome.OK
    assert [e.next_hop for e in emulator.routes(table, type_="Custom")] == ["i-000001"]


def test_lost_response_retried_with_the_same_batch_creates_each_route_once(
    emulator: AlibabaVpcEmulator, provider: AlibabaProvider, table: str
) -> None:
    routes = [a_route(i) for i in range(3)]
    instances_for(emulator, routes)
    emulator.lose_response("CreateRouteEntries")

    first = provider.create_routes(table, routes)
    second = provider.create_routes(table, routes)

    assert {r.outcome for r in first} == {Outcome.RETRY}
    assert {r.outcome for r in second} == {Outcome.OK}
    assert len(emulator.routes(table, type_="Custom")) == 3


def test_retry_without_client_token_support_is_still_idempotent(
    emulator: AlibabaVpcEmulator, provider: AlibabaProvider, table: str
) -> None:
    emulator.honour_client_token = False
    emulator.create_delay = 0.0
    routes = [a_route(i) for i in range(3)]
    instances_for(emulator, routes)
    emulator.lose_response("CreateRouteEntries")

    provider.create_routes(table, routes)
    second = provider.create_routes(table, routes)

    assert {r.outcome for r in second} == {Outcome.ALREADY_DONE}
    assert len(emulator.routes(table, type_="Custom")) == 3


@pytest.mark.parametrize(
    ("status", "code", "outcome"),
    [
        (503, "ServiceUnavailable", Outcome.RETRY),
        (500, "InternalError", Outcome.RETRY),
        (400, "SystemBusy", Outcome.RETRY),
        (400, "LastTokenProcessing", Outcome.RETRY),
        (400, "IncorrectVpcStatus", Outcome.RETRY),
        (400, "QuotaExceeded", Outcome.QUOTA_EXCEEDED),
        (403, "Forbidden.RAM", Outcome.FATAL),
    ],
)
def test_whole_call_errors_map_to_outcomes(
    emulator: AlibabaVpcEmulator, provider: AlibabaProvider, status: int, code: str, outcome: Outcome
) -> None:
    route = a_route(1)
    instances_for(emulator, [route])
    emulator.fail("CreateRouteEntries", status=status, code=code, message="injected")

    [result] = provider.create_routes("vtb-main", [route])

    assert result.outcome is outcome
    assert code in result.message


def test_delete_removes_owned_routes_and_waits_until_gone(
    emulator: AlibabaVpcEmulator, provider: AlibabaProvider, table: str
) -> None:
    emulator.delete_delay = 0.1
    routes = [a_route(i) for i in range(60)]
    instances_for(emulator, routes)
    provider.create_routes(table, routes)

    results = provider.delete_routes(table, provider.list_routes(table))

    assert {r.outcome for r in results} == {Outcome.OK}
    assert emulator.routes(table, type_="Custom") == []
    assert emulator.calls["DeleteRouteEntries"] == 2


def test_foreign_and_system_routes_are_never_deleted(
    emulator: AlibabaVpcEmulator, provider: AlibabaProvider, table: str
) -> None:
    emulator.add_route(table, "10.50.0.0/24", "i-foreign", description="routectl cluster=other node=x")
    before = emulator.routes(table)

    results = provider.delete_routes(table, provider.list_routes(table))

    assert {r.outcome for r in results} == {Outcome.CONFLICT}
    assert emulator.routes(table) == before
    assert "DeleteRouteEntries" not in emulator.calls


def test_replace_refuses_a_route_it_does_not_own(
    emulator: AlibabaVpcEmulator, provider: AlibabaProvider, table: str
) -> None:
    emulator.add_instances(VPC, "i-new")
    emulator.add_route(table, "10.0.1.0/24", "i-foreign")

    [result] = provider.replace_routes(table, [a_route(1, instance="i-new")])

    assert result.outcome is Outcome.CONFLICT
    assert [e.next_hop for e in emulator.routes(table, type_="Custom")] == ["i-foreign"]


def test_a_replayed_success_is_not_taken_when_another_route_now_holds_the_destination(
    emulator: AlibabaVpcEmulator, provider: AlibabaProvider, table: str
) -> None:
    route = a_route(1)
    instances_for(emulator, [route])
    emulator.add_instances(VPC, "i-someone-else")
    assert [r.outcome for r in provider.create_routes(table, [route])] == [Outcome.OK]
    assert [r.outcome for r in provider.delete_routes(table, provider.list_routes(table))] == [Outcome.OK]
    emulator.add_route(table, str(route.destination), "i-someone-else", description="not routectl's")

    [result] = provider.create_routes(table, [route])  # the same batch: the same ClientToken

    assert result.outcome is Outcome.CONFLICT
    assert [(r.next_hop, r.description) for r in emulator.routes(table, type_="Custom")] == [
        ("i-someone-else", "not routectl's")
    ]


def test_a_refused_entry_is_retried_as_a_fresh_request_not_a_replayed_refusal(
    emulator: AlibabaVpcEmulator, make_provider: Build
) -> None:
    full = emulator.add_table(VPC, "vtb-small", quota=1)
    provider = make_provider()
    first, second = a_route(1), a_route(2)
    instances_for(emulator, [first, second])
    assert [r.outcome for r in provider.create_routes(full, [first])] == [Outcome.OK]
    assert [r.outcome for r in provider.create_routes(full, [second])] == [Outcome.QUOTA_EXCEEDED]
    assert [r.outcome for r in provider.delete_routes(full, provider.list_routes(full))] == [Outcome.OK]

    assert [r.outcome for r in provider.create_routes(full, [second])] == [Outcome.OK]

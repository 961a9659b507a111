"""The simulated cloud is exact about each behaviour the engine must survive."""

from __future__ import annotations

import threading

import pytest

from providers import (
    Outcome,
    Route,
    RouteState,
    Target,
    Throttled,
    Transient,
)
from providers.emulators.simcloud import WRITES, Bucket, CloudBucket, Fault, SimCloud
from tests.unit.builders import FakeClock, net

T = "rtb-main"


def desired(dest: str, instance: str, node: str = "n") -> Route:
    return Route(net(dest), Target(instance, "zone-a"), owned=True, node=node)


def a_cloud(**kwargs: object) -> tuple[SimCloud, FakeClock]:
    clock = FakeClock()
    sim = SimCloud("c1", clock=clock, sleep=clock.sleep, **kwargs)  # type: ignore[arg-type]
    sim.add_instance("i-1")
    sim.add_instance("i-2")
    return sim, clock


def test_foreign_routes_are_listed_not_owned() -> None:
    sim, _ = a_cloud()
    sim.add_route(T, "10.0.1.0/24", "i-x")
    sim.add_route(T, "10.0.2.0/24", "i-y", owner="other-cluster")
    assert [r.owned for r in sim.list_routes(T)] == [False, False]


def test_creating_the_same_route_again_is_already_done_and_another_target_a_conflict() -> None:
    sim, _ = a_cloud()
    sim.create_routes(T, [desired("10.0.1.0/24", "i-1")])
    again, other = sim.create_routes(T, [desired("10.0.1.0/24", "i-1"), desired("10.0.1.0/24", "i-2")])
    assert (again.outcome, other.outcome) == (Outcome.ALREADY_DONE, Outcome.CONFLICT)


def test_terminated_instance_turns_its_routes_into_blackholes() -> None:
    sim, _ = a_cloud()
    sim.create_routes(T, [desired("10.0.1.0/24", "i-1")])
    sim.terminate("i-1")
    [listed] = sim.list_routes(T)
    assert (listed.state, listed.target) == (RouteState.BLACKHOLE, None)
    [result] = sim.create_routes(T, [desired("10.0.2.0/24", "i-1")])
    assert (result.outcome, result.target_gone) == (Outcome.FATAL, True)


def test_writes_to_foreign_routes_are_allowed_but_recorded() -> None:
    sim, _ = a_cloud()
    sim.add_route(T, "10.0.1.0/24", "i-x")
    sim.delete_routes(T, [desired("10.0.1.0/24", "i-x")])
    assert sim.foreign_writes == [("delete_routes", T, net("10.0.1.0/24"))]


def test_quota_counts_every_route_in_the_table() -> None:
    sim, _ = a_cloud(quota=2)
    sim.add_route(T, "0.0.0.0/0", next_hop="igw-1")
    ok, full = sim.create_routes(T, [desired("10.0.1.0/24", "i-1"), desired("10.0.2.0/24", "i-2")])
    assert (ok.outcome, full.outcome) == (Outcome.OK, Outcome.QUOTA_EXCEEDED)
    assert sim.limits.routes_per_table == 2


def test_write_throttling_refuses_with_retry_and_refills_over_time() -> None:
    sim, clock = a_cloud(write=Bucket(burst=2, rate=1.0))
    results = sim.create_routes(T, [desired(f"10.0.{i}.0/24", "i-1") for i in range(3)])
    assert [(r.outcome, r.throttled) for r in results] == [
        (Outcome.OK, False),
        (Outcome.OK, False),
        (Outcome.RETRY, True),
    ]
    assert (sim.calls["create_routes"], sim.throttled["create_routes"]) == (3, 1)
    clock.sleep(1.0)
    assert sim.create_routes(T, [desired("10.0.2.0/24", "i-1")])[0].outcome is Outcome.OK


def test_read_throttling_raises_throttled() -> None:
    sim, _ = a_cloud(read=Bucket(burst=1, rate=0.1))
    sim.list_routes(T)
    with pytest.raises(Throttled):
        sim.list_routes(T)
    assert sim.throttled["list_routes"] == 1


def test_sims_given_one_cloud_bucket_share_the_account_limit() -> None:
    clock = FakeClock()
    account = CloudBucket(Bucket(burst=2, rate=1.0), clock())
    first, second = (
        SimCloud(name, clock=clock, sleep=clock.sleep, write=account, read=account) for name in ("c1", "c2")
    )
    first.list_routes(T)
    second.list_routes(T)
    with pytest.raises(Throttled):
        first.list_routes(T)  # the other cluster spent the account's last token
    assert (first.throttled["list_routes"], second.throttled["list_routes"]) == (1, 0)
    assert first.limits.read_burst == second.limits.read_burst == 2  # each believes it is alone
    clock.sleep(1.0)
    second.list_routes(T)


def test_batch_api_creates_many_routes_in_one_call_each_with_its_outcome() -> None:
    sim, _ = a_cloud(max_batch=50)
    sim.add_route(T, "10.0.3.0/24", "i-x")
    routes = [desired(f"10.0.{i}.0/24", "i-1") for i in range(5)]
    assert [r.outcome for r in sim.create_routes(T, routes)] == [
        Outcome.OK,
        Outcome.OK,
        Outcome.OK,
        Outcome.CONFLICT,
        Outcome.OK,
    ]
    assert sim.calls["create_routes"] == 1


def test_without_batch_api_each_route_is_one_call() -> None:
    sim, _ = a_cloud()
    sim.create_routes(T, [desired(f"10.0.{i}.0/24", "i-1") for i in range(4)])
    assert sim.calls["create_routes"] == 4


@pytest.mark.parametrize("fault", [Fault.SERVER_ERROR, Fault.TIMEOUT, Fault.BUSY])
def test_faults_before_acting_change_nothing(fault: Fault) -> None:
    sim, _ = a_cloud()
    sim.inject("create_routes", fault)
    assert sim.create_routes(T, [desired("10.0.1.0/24", "i-1")])[0].outcome is Outcome.RETRY
    assert sim.routes(T) == {}


def test_timeout_after_write_reports_retry_but_the_route_exists() -> None:
    sim, _ = a_cloud()
    sim.inject("create_routes", Fault.TIMEOUT_AFTER_WRITE)
    assert sim.create_routes(T, [desired("10.0.1.0/24", "i-1")])[0].outcome is Outcome.RETRY
    assert sim.create_routes(T, [desired("10.0.1.0/24", "i-1")])[0].outcome is Outcome.ALREADY_DONE


def test_an_injected_throttle_refuses_like_an_empty_bucket() -> None:
    """One queue can serve several APIs: the next write of any kind is refused, then the next read."""
    sim, _ = a_cloud()
    sim.inject(WRITES, Fault.THROTTLED)
    sim.inject("list_routes", Fault.THROTTLED)

    [refused] = sim.delete_routes(T, [desired("10.0.1.0/24", "i-1")])
    [created] = sim.create_routes(T, [desired("10.0.1.0/24", "i-1")])
    with pytest.raises(Throttled):
        sim.list_routes(T)

    assert (refused.outcome, refused.throttled, created.outcome) == (Outcome.RETRY, True, Outcome.OK)
    assert sim.throttled == {"delete_routes": 1, "list_routes": 1}
    assert len(sim.list_routes(T)) == 1


def test_faulted_list_raises_transient() -> None:
    sim, _ = a_cloud()
    sim.inject("list_routes", Fault.SERVER_ERROR)
    with pytest.raises(Transient):
        sim.list_routes(T)
    assert sim.list_routes(T) == []


def test_an_outage_fails_every_call_with_5xx_and_timeouts_until_it_ends() -> None:
    sim, clock = a_cloud()
    sim.create_routes(T, [desired("10.0.1.0/24", "i-1")])
    recovery = sim.outage(120.0)

    with pytest.raises(Transient, match="server_error"):
        sim.list_routes(T)
    [timed_out] = sim.delete_routes(T, [desired("10.0.1.0/24", "i-1")])
    with pytest.raises(Transient, match="server_error"):
        sim.prepare_target(Target("i-2", "zone-a"))
    clock.sleep(119.0)
    [refused] = sim.create_routes(T, [desired("10.0.2.0/24", "i-2")])
    assert (timed_out.outcome, refused.outcome) == (Outcome.RETRY, Outcome.RETRY)
    assert "timeout" in timed_out.message
    assert list(sim.routes(T)) == [net("10.0.1.0/24")]

    clock.sleep(recovery - clock())
    assert len(sim.list_routes(T)) == 1
    assert sim.create_routes(T, [desired("10.0.2.0/24", "i-2")])[0].outcome is Outcome.OK


def test_created_route_is_listed_only_after_the_visibility_delay() -> None:
    sim, clock = a_cloud(visibility_delay_s=5.0)
    sim.create_routes(T, [desired("10.0.1.0/24", "i-1")])
    assert sim.list_routes(T) == []
    clock.sleep(5.0)
    assert len(sim.list_routes(T)) == 1


def test_latency_is_paid_per_call() -> None:
    sim, clock = a_cloud(latency_s=0.05)
    start = clock()
    sim.list_routes(T)
    sim.create_routes(T, [desired("10.0.1.0/24", "i-1")])
    assert clock() - start == pytest.approx(0.1)


def test_a_second_concurrent_writer_on_a_table_finds_it_busy() -> None:
    entered, release = threading.Event(), threading.Event()

    def slow_sleep(_: float) -> None:
        entered.set()
        release.wait(5)

    sim = SimCloud("c1", writers_per_table=1, latency_s=1.0, sleep=slow_sleep)
    sim.add_instance("i-1")
    first = threading.Thread(target=sim.create_routes, args=(T, [desired("10.0.1.0/24", "i-1")]))
    first.start()
    assert entered.wait(5)
    [second] = sim.create_routes(T, [desired("10.0.2.0/24", "i-1")])
    release.set()
    first.join(5)
    assert second.outcome is Outcome.RETRY
    assert "OperationConflict" in second.message


def test_chaos_is_seeded_and_replayable() -> None:
    def run() -> list[Outcome]:
        sim, _ = a_cloud()
        sim.chaos(0.5, seed=7)
        return [sim.create_routes(T, [desired(f"10.0.{i}.0/24", "i-1")])[0].outcome for i in range(20)]

    first = run()
    assert first == run()
    assert Outcome.RETRY in first
    assert Outcome.OK in first


def test_prepare_target_counts_and_refuses_terminated_instances() -> None:
    sim, _ = a_cloud()
    sim.prepare_target(Target("i-1"))
    sim.terminate("i-2")
    with pytest.raises(Exception, match="terminated"):
        sim.prepare_target(Target("i-2"))
    assert sim.calls["prepare_target"] == 2


def test_every_call_is_reported_to_observers_with_its_code() -> None:
    sim, _ = a_cloud(write=Bucket(burst=1, rate=0.001), latency_s=0.05)
    seen: list[tuple[str, str, float]] = []
    sim.observe(lambda api, code, seconds: seen.append((api, code, seconds)))
    sim.inject("list_routes", Fault.SERVER_ERROR)
    with pytest.raises(Transient):
        sim.list_routes(T)
    sim.create_routes(T, [desired("10.0.1.0/24", "i-1"), desired("10.0.2.0/24", "i-1")])
    assert seen == [
        ("list_routes", "500", 0.05),
        ("create_routes", "200", 0.05),
        ("create_routes", "RequestLimitExceeded", 0.0),
    ]

"""The executor: batching, retries with backoff and retry-after, no retry of final outcomes, fencing."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pytest

from providers import Limits, Outcome, Route, RouteResult, Target
from providers.emulators.simcloud import Bucket, SimCloud
from routectl.engine.executor import Applied, Executor, Op
from routectl.engine.planner import Change, Plan
from routectl.engine.ratelimit import Pacer
from routectl.fence import Fence, LostLeadership, Unfenced
from routectl.metrics import Metrics
from routectl.pacing import TokenBucket
from tests.unit.builders import TABLE, FakeClock, a_route, net


class Scripted(SimCloud):
    """A sim whose first create calls answer with scripted results instead of acting."""

    def __init__(self, script: list[Outcome], retry_after: float | None = None, **kwargs: object) -> None:
        super().__init__("c1", **kwargs)  # type: ignore[arg-type]
        self.script = script
        self.retry_after = retry_after

    def create_routes(self, table: str, routes: Sequence[Route]) -> list[RouteResult]:
        if self.script:
            self.calls["create_routes"] += 1
            outcome = self.script.pop(0)
            return [RouteResult(r, outcome, "scripted", retry_after=self.retry_after) for r in routes]
        return super().create_routes(table, routes)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def creates(*cidrs: str) -> Plan:
    return Plan(
        create=tuple(
            Change(TABLE, net(c), f"n{i}", a_route(c, f"i-{i}", node=f"n{i}")) for i, c in enumerate(cidrs)
        )
    )


def a_pacer(provider: SimCloud, clock: FakeClock, **kwargs: int) -> Pacer:
    return Pacer(provider.limits, clock=clock, sleep=clock.sleep, base_delay_s=0.1, **kwargs)


@contextmanager
def an_executor(
    provider: SimCloud, clock: FakeClock, fence: Fence | None = None, **kwargs: int
) -> Iterator[Executor]:
    fence = fence or Unfenced()
    provider.guard_writes(fence.check)  # as the controller wires it
    executor = Executor(provider, fence, Metrics(), a_pacer(provider, clock, **kwargs))
    yield executor
    executor.close()


def with_instances(sim: SimCloud, count: int) -> SimCloud:
    for i in range(count):
        sim.add_instance(f"i-{i}", zone="")
    return sim


def test_batches_up_to_max_batch_routes_per_call(clock: FakeClock) -> None:
    sim = with_instances(SimCloud("c1", max_batch=3, clock=clock, sleep=clock.sleep), 7)
    with an_executor(sim, clock) as executor:
        applied = executor.apply(creates(*(f"10.244.{i}.0/24" for i in range(7))))
    assert [a.result.outcome for a in applied] == [Outcome.OK] * 7
    assert sim.calls["create_routes"] == 3


def test_retry_honours_the_clouds_retry_after(clock: FakeClock) -> None:
    sim = with_instances(Scripted([Outcome.RETRY], retry_after=7.0, clock=clock, sleep=clock.sleep), 1)
    start = clock()
    with an_executor(sim, clock) as executor:
        [applied] = executor.apply(creates("10.244.0.0/24"))
    assert (applied.result.outcome, applied.attempts) == (Outcome.OK, 2)
    assert clock() - start >= 7.0


@pytest.mark.parametrize("outcome", [Outcome.QUOTA_EXCEEDED, Outcome.CONFLICT, Outcome.FATAL])
def test_final_outcomes_are_never_retried_in_the_pass(clock: FakeClock, outcome: Outcome) -> None:
    sim = with_instances(Scripted([outcome], clock=clock, sleep=clock.sleep), 1)
    with an_executor(sim, clock) as executor:
        [applied] = executor.apply(creates("10.244.0.0/24"))
    assert (applied.result.outcome, sim.calls["create_routes"]) == (outcome, 1)


def test_retries_stop_at_the_attempt_cap_with_backoff_between(clock: FakeClock) -> None:
    sim = with_instances(Scripted([Outcome.RETRY] * 9, clock=clock, sleep=clock.sleep), 1)
    start = clock()
    with an_executor(sim, clock, max_attempts=3) as executor:
        [applied] = executor.apply(creates("10.244.0.0/24"))
    assert (applied.result.outcome, applied.attempts, sim.calls["create_routes"]) == (Outcome.RETRY, 3, 3)
    assert clock() > start


def test_throttled_write_shrinks_the_write_bucket(clock: FakeClock) -> None:
    sim = with_instances(SimCloud("c1", write=Bucket(1, 0.5), clock=clock, sleep=clock.sleep), 3)
    with an_executor(sim, clock) as executor:
        writes = executor.pacer.writes = TokenBucket(100.0, 100, clock=clock, sleep=clock.sleep)
        executor.apply(creates("10.244.0.0/24", "10.244.1.0/24"))
        assert writes.throttle_count >= 1
        assert writes.rate < 100.0


def test_deletes_run_before_creates(clock: FakeClock) -> None:
    sim = with_instances(SimCloud("c1", quota=1, clock=clock, sleep=clock.sleep), 2)
    sim.add_route(TABLE, "10.244.9.0/24", "i-1", owner="c1")
    old = a_route("10.244.9.0/24", "i-1")
    the_plan = Plan(create=creates("10.244.0.0/24").create, delete=(Change(TABLE, old.destination, "", old),))
    with an_executor(sim, clock) as executor:
        applied = executor.apply(the_plan)
    assert [(a.op, a.result.outcome) for a in applied] == [(Op.DELETE, Outcome.OK), (Op.CREATE, Outcome.OK)]


def test_a_route_already_being_written_is_not_written_again_by_a_concurrent_apply(clock: FakeClock) -> None:
    sim = with_instances(SimCloud("c1", clock=clock, sleep=clock.sleep), 1)
    with an_executor(sim, clock) as executor:
        inner: list[Applied] = []
        original = sim.create_routes

        def create_while_a_resync_plans_the_same_route(
            table: str, routes: Sequence[Route]
        ) -> list[RouteResult]:
            if not inner:  # the node's own sync is mid-write when the full pass plans the same create
                inner.extend(executor.apply(creates("10.244.0.0/24")))
            return original(table, routes)

        sim.create_routes = create_while_a_resync_plans_the_same_route  # type: ignore[method-assign]
        [outer] = executor.apply(creates("10.244.0.0/24"))
    assert outer.result.outcome is Outcome.OK
    assert inner == []  # left to the write in progress, not reported as a failure of its own
    assert sim.calls["create_routes"] == 1


@pytest.mark.parametrize(("batch_api", "tokens_per_call"), [(True, 1), (False, 4)])
def test_write_tokens_are_per_request_the_cloud_sees(
    clock: FakeClock, batch_api: bool, tokens_per_call: int
) -> None:
    limits = Limits(
        write_rate=1.0, write_burst=100, read_rate=1.0, read_burst=100, max_batch=4, batch_api=batch_api
    )
    sim = with_instances(SimCloud("c1", limits=limits, max_batch=4, clock=clock, sleep=clock.sleep), 4)
    with an_executor(sim, clock) as executor:
        before = executor.pacer.writes.tokens
        executor.apply(creates(*(f"10.244.{i}.0/24" for i in range(4))))
        assert before - executor.pacer.writes.tokens == pytest.approx(tokens_per_call, abs=0.01)


class _Refusing:
    def check(self) -> None:
        raise LostLeadership("lease lost")


@pytest.mark.parametrize("prepare_writes", [True, False])
def test_a_prepare_that_may_write_is_paced_as_a_write_and_fenced(
    clock: FakeClock, prepare_writes: bool
) -> None:
    limits = Limits(
        write_rate=1.0, write_burst=10, read_rate=1.0, read_burst=10, prepare_writes=prepare_writes
    )
    sim = with_instances(SimCloud("c1", limits=limits, clock=clock, sleep=clock.sleep), 1)
    with an_executor(sim, clock) as executor:
        writes, reads = executor.pacer.writes.tokens, executor.pacer.reads.tokens
        executor.prepare(Target("i-0"))
        spent = (writes - executor.pacer.writes.tokens, reads - executor.pacer.reads.tokens)
    assert spent == pytest.approx((1, 0) if prepare_writes else (0, 1), abs=0.01)

    with an_executor(sim, clock, fence=_Refusing()) as fenced:
        if prepare_writes:
            with pytest.raises(LostLeadership):
                fenced.prepare(Target("i-0"))
            assert sim.calls["prepare_target"] == 1
        else:
            fenced.prepare(Target("i-0"))  # a pure read needs no lease
            assert sim.calls["prepare_target"] == 2


def test_a_retry_after_left_when_the_attempts_run_out_holds_back_the_next_writes(clock: FakeClock) -> None:
    sim = with_instances(Scripted([Outcome.RETRY], retry_after=7.0, clock=clock, sleep=clock.sleep), 2)
    with an_executor(sim, clock, max_attempts=1) as executor:
        [gave_up] = executor.apply(creates("10.244.0.0/24"))
        start = clock()
        [next_write] = executor.apply(creates("10.244.1.0/24"))
    assert gave_up.result.outcome is Outcome.RETRY
    assert next_write.result.outcome is Outcome.OK
    assert clock() - start >= 7.0

"""WorkQueue: client-go workqueue semantics (dedup, exclusive processing, delays, backoff, metrics)."""

from __future__ import annotations

import threading

import pytest

from routectl.kube.workqueue import WorkQueue
from routectl.metrics import Metrics


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def a_queue(clock: FakeClock | None = None, **kwargs: float) -> WorkQueue:
    return WorkQueue("nodes", clock=clock or FakeClock(), **kwargs)  # type: ignore[arg-type]


def drain(queue: WorkQueue) -> list[str]:
    keys = []
    while (key := queue.get(timeout_s=0)) is not None:
        keys.append(key)
    return keys


def released_between(queue: WorkQueue, clock: FakeClock, key: str, low: float, high: float) -> bool:
    """Rate-limit `key` once: is it held back until `low` seconds and ready by `high`?"""
    queue.add_rate_limited(key)
    start = clock.now
    clock.now = start + low - 1e-6
    held = drain(queue) == []
    clock.now = start + high
    released = drain(queue) == [key]
    queue.done(key)
    return held and released


def test_a_key_added_twice_before_processing_is_handed_out_once() -> None:
    queue = a_queue()
    queue.add("n1")
    queue.add("n2")
    queue.add("n1")

    assert drain(queue) == ["n1", "n2"]
    assert len(queue) == 0


def test_a_key_being_processed_is_not_handed_to_a_second_worker() -> None:
    queue = a_queue()
    queue.add("n1")
    assert queue.get(timeout_s=0) == "n1"

    queue.add("n1")

    assert queue.get(timeout_s=0) is None


def test_a_key_readded_during_processing_is_queued_again_after_done() -> None:
    queue = a_queue()
    queue.add("n1")
    key = queue.get(timeout_s=0)
    queue.add("n1")
    queue.add("n1")

    queue.done("n1")

    assert key == "n1"
    assert drain(queue) == ["n1"]


def test_done_without_readd_does_not_requeue() -> None:
    queue = a_queue()
    queue.add("n1")
    queue.get(timeout_s=0)

    queue.done("n1")

    assert queue.get(timeout_s=0) is None


def test_add_after_releases_keys_in_time_order() -> None:
    clock = FakeClock()
    queue = a_queue(clock)
    queue.add_after("late", 5.0)
    queue.add_after("early", 1.0)
    queue.add_after("middle", 3.0)

    assert drain(queue) == []
    clock.advance(3.0)
    assert drain(queue) == ["early", "middle"]
    clock.advance(2.0)
    assert drain(queue) == ["late"]


def test_add_after_keeps_the_sooner_time_of_a_waiting_key() -> None:
    clock = FakeClock()
    queue = a_queue(clock)
    queue.add_after("n1", 10.0)
    queue.add_after("n1", 1.0)
    queue.add_after("n1", 20.0)

    clock.advance(1.0)
    assert drain(queue) == ["n1"]
    queue.done("n1")
    clock.advance(30.0)
    assert drain(queue) == []


def test_add_after_with_no_delay_adds_at_once() -> None:
    queue = a_queue()
    queue.add_after("n1", 0.0)

    assert drain(queue) == ["n1"]


def test_rate_limited_backoff_grows_exponentially_until_the_cap() -> None:
    clock = FakeClock()
    queue = a_queue(clock, base_delay_s=1.0, max_delay_s=8.0, rate_per_s=1e6, burst=1_000_000)

    # base x 2^n, jittered down to no less than 90 % of it, capped at 8 s
    for expected in (1.0, 2.0, 4.0, 8.0, 8.0, 8.0):
        assert released_between(queue, clock, "n1", 0.9 * expected, expected)


def test_num_requeues_counts_failures_and_forget_resets_the_backoff() -> None:
    clock = FakeClock()
    queue = a_queue(clock, base_delay_s=1.0, max_delay_s=100.0, rate_per_s=1e6, burst=1_000_000)
    for _ in range(4):
        queue.add_rate_limited("n1")
    assert queue.num_requeues("n1") == 4

    queue.forget("n1")

    assert queue.num_requeues("n1") == 0
    clock.advance(100.0)
    drain(queue)
    queue.done("n1")
    assert released_between(queue, clock, "n1", 0.9, 1.0)


def test_backoff_is_per_key() -> None:
    clock = FakeClock()
    queue = a_queue(clock, base_delay_s=1.0, rate_per_s=1e6, burst=1_000_000)
    for _ in range(5):
        queue.add_rate_limited("failing")
    clock.advance(1.0)
    assert drain(queue) == ["failing"]
    queue.done("failing")

    assert released_between(queue, clock, "healthy", 0.9, 1.0)
    assert released_between(queue, clock, "failing", 0.9 * 32.0, 32.0)


def test_the_overall_token_bucket_caps_rate_limited_adds() -> None:
    clock = FakeClock()
    queue = a_queue(clock, base_delay_s=0.0, rate_per_s=2.0, burst=3)
    for i in range(7):
        queue.add_rate_limited(f"n{i}")

    assert drain(queue) == ["n0", "n1", "n2"]  # the burst
    clock.advance(1.0)
    assert drain(queue) == ["n3", "n4"]  # 2 per second afterwards
    clock.advance(1.0)
    assert drain(queue) == ["n5", "n6"]


def test_get_blocks_until_a_key_is_added() -> None:
    queue = WorkQueue("nodes")
    got: list[str | None] = []
    getter = threading.Thread(target=lambda: got.append(queue.get(timeout_s=30.0)))
    getter.start()

    queue.add("n1")
    getter.join(timeout=30.0)

    assert got == ["n1"]


def test_get_returns_none_on_timeout() -> None:
    queue = WorkQueue("nodes")

    assert queue.get(timeout_s=0.01) is None


def test_shutdown_wakes_blocked_getters_and_refuses_new_keys() -> None:
    queue = WorkQueue("nodes")
    got: list[str | None] = []
    getters = [threading.Thread(target=lambda: got.append(queue.get(timeout_s=30.0))) for _ in range(3)]
    for getter in getters:
        getter.start()

    queue.shut_down()
    for getter in getters:
        getter.join(timeout=30.0)
    queue.add("n1")

    assert got == [None, None, None]
    assert queue.get(timeout_s=0) is None


def test_shutdown_stops_handing_out_queued_keys() -> None:
    queue = a_queue()
    queue.add("n1")

    queue.shut_down()

    assert queue.get(timeout_s=0) is None


def test_workers_never_process_one_key_concurrently() -> None:
    queue = WorkQueue("nodes")
    active: set[str] = set()
    overlaps: list[str] = []
    lock = threading.Lock()
    processed = 0

    def worker() -> None:
        nonlocal processed
        while (key := queue.get(timeout_s=5.0)) is not None:
            with lock:
                if key in active:
                    overlaps.append(key)
                active.add(key)
            for _ in range(3):
                queue.add(key)  # a watch event for the same node arrives meanwhile
            with lock:
                active.discard(key)
                processed += 1
                if processed >= 200:
                    queue.shut_down()
            queue.done(key)

    for key in ("a", "b", "c"):
        queue.add(key)
    workers = [threading.Thread(target=worker) for _ in range(4)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=60.0)

    assert processed >= 200
    assert overlaps == []


def sample(metrics: Metrics, name: str) -> float:
    value = metrics.registry.get_sample_value(name, {"name": "nodes"})
    return 0.0 if value is None else value


def test_metrics_follow_adds_depth_retries_and_durations() -> None:
    clock = FakeClock()
    metrics = Metrics()
    queue = WorkQueue("nodes", metrics, clock=clock, base_delay_s=1.0)
    queue.add("n1")
    queue.add("n1")
    queue.add("n2")
    assert sample(metrics, "workqueue_adds_total") == 2
    assert sample(metrics, "workqueue_depth") == 2

    clock.advance(2.0)
    key = queue.get(timeout_s=0)
    clock.advance(3.0)
    assert key is not None
    queue.done(key)
    queue.add_rate_limited(key)

    assert sample(metrics, "workqueue_depth") == 1
    assert sample(metrics, "workqueue_retries_total") == 1
    assert sample(metrics, "workqueue_queue_duration_seconds_sum") == pytest.approx(2.0)
    assert sample(metrics, "workqueue_work_duration_seconds_sum") == pytest.approx(3.0)


def test_work_in_progress_is_measured_when_scraped_as_client_go_does() -> None:
    """unfinished_work_seconds sums, longest_running_processor_seconds maxes, the time each item handed
    out and not yet done has been processed — a stuck worker shows while it is stuck."""
    clock, metrics = FakeClock(), Metrics()
    queue = WorkQueue("nodes", metrics, clock=clock)

    def scraped() -> tuple[float | None, float | None]:
        get = metrics.registry.get_sample_value
        return (
            get("workqueue_unfinished_work_seconds", {"name": "nodes"}),
            get("workqueue_longest_running_processor_seconds", {"name": "nodes"}),
        )

    assert scraped() == (0.0, 0.0)
    queue.add("n1")
    queue.add("n2")
    assert queue.get(timeout_s=0) == "n1"
    clock.advance(3)
    assert queue.get(timeout_s=0) == "n2"
    clock.advance(2)
    assert scraped() == (7.0, 5.0)
    queue.done("n1")
    assert scraped() == (2.0, 2.0)
    queue.done("n2")
    assert scraped() == (0.0, 0.0)

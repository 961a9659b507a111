"""Event aggregation without an API server: which occurrence is written, as what, and what is counted."""

from __future__ import annotations

from routectl.kube.events import EventAggregator, EventPolicy, EventWrite
from tests.unit.builders import FakeClock


def key(node: str, message: str = "conflict") -> tuple[str, ...]:
    return (node, "uid-" + node, "Warning", "RouteConflict", message)


def test_a_repeat_patches_the_event_with_the_count_of_every_occurrence() -> None:
    events = EventAggregator(EventPolicy(burst=2, refill_s=100.0), FakeClock(0.0))
    assert events.admit(key("a")) == EventWrite("", 1)
    events.created(key("a"), "a.1")
    assert events.admit(key("a")) == EventWrite("a.1", 2)


def test_over_the_nodes_budget_occurrences_are_counted_not_written() -> None:
    clock = FakeClock(0.0)
    events = EventAggregator(EventPolicy(burst=2, refill_s=100.0), clock)
    writes = [events.admit(key("a")) for _ in range(4)]
    assert [w is not None for w in writes] == [True, True, False, False]
    assert events.admit(key("b")) == EventWrite("", 1)  # another node has its own budget
    clock.now += 100.0
    assert events.admit(key("a")) == EventWrite("", 5)


def test_after_the_window_an_occurrence_starts_a_new_event() -> None:
    clock = FakeClock(0.0)
    events = EventAggregator(EventPolicy(window_s=10.0), clock)
    events.admit(key("a"))
    events.created(key("a"), "a.1")
    clock.now += 11.0
    assert events.admit(key("a")) == EventWrite("", 1)


def test_the_least_recently_seen_keys_are_forgotten_first() -> None:
    events = EventAggregator(EventPolicy(remembered=2), FakeClock(0.0))
    for message in ("one", "two"):
        events.admit(key("a", message))
        events.created(key("a", message), message)
    events.admit(key("a", "one"))
    events.admit(key("a", "three"))  # evicts "two", the least recently seen
    assert events.admit(key("a", "one")) == EventWrite("one", 3)
    assert events.admit(key("a", "two")) == EventWrite("", 1)

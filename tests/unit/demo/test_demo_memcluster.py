"""MemoryCluster behaves like the API server where routectl's correctness depends on it."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from routectl.cluster import (
    AmbiguousError,
    Condition,
    ConflictError,
    EventType,
    GoneError,
    Lease,
    NotFoundError,
)
from routectl.demo.memcluster import MemoryCluster


def a_cluster(*names: str) -> MemoryCluster:
    cluster = MemoryCluster(bookmark_interval_s=0.05)
    for name in names:
        cluster.add_node(name)
    return cluster


def test_every_write_takes_the_next_global_resource_version() -> None:
    cluster = a_cluster()
    a = cluster.add_node("a")
    lease = cluster.create_lease(Lease("ns", "l"), timeout_s=1)
    b = cluster.update_node("a", provider_id="x")

    versions = [int(a.resource_version), int(lease.resource_version), int(b.resource_version)]

    assert versions == sorted(set(versions))
    assert cluster.list_nodes(limit=0).resource_version == b.resource_version


def test_list_pages_share_one_resource_version_and_end_without_a_token() -> None:
    cluster = a_cluster("a", "b", "c")

    first = cluster.list_nodes(limit=2)
    second = cluster.list_nodes(limit=2, continue_token=first.continue_token)

    assert [n.name for n in first.items + second.items] == ["a", "b", "c"]
    assert first.resource_version == second.resource_version
    assert second.continue_token == ""


def test_a_continue_token_older_than_the_compaction_is_gone() -> None:
    cluster = a_cluster("a", "b", "c")
    first = cluster.list_nodes(limit=2)
    cluster.add_node("d")
    cluster.compact()

    with pytest.raises(GoneError):
        cluster.list_nodes(limit=2, continue_token=first.continue_token)


def test_watch_delivers_the_changes_after_the_given_version_in_order() -> None:
    cluster = a_cluster("a")
    start = cluster.list_nodes(limit=0).resource_version
    cluster.add_node("b")
    cluster.update_node("a", provider_id="x")
    cluster.delete_node("b")

    events = [e for e in cluster.watch_nodes(start, timeout_s=0.2) if e.type is not EventType.BOOKMARK]

    assert [(e.type, e.node.name if e.node else "") for e in events] == [
        (EventType.ADDED, "b"),
        (EventType.MODIFIED, "a"),
        (EventType.DELETED, "b"),
    ]


def test_a_watch_from_a_compacted_version_is_gone() -> None:
    cluster = a_cluster("a")
    start = cluster.list_nodes(limit=0).resource_version
    cluster.add_node("b")
    cluster.compact()

    with pytest.raises(GoneError):
        next(iter(cluster.watch_nodes(start, timeout_s=1)))


def test_the_history_limit_compacts_the_oldest_versions() -> None:
    cluster = MemoryCluster(history_limit=2)
    first = cluster.add_node("a")
    cluster.add_node("b")
    cluster.add_node("c")

    kept = list(cluster.watch_nodes(first.resource_version, timeout_s=0.05))
    with pytest.raises(GoneError):
        list(cluster.watch_nodes("0", timeout_s=0.05))

    assert [e.node.name for e in kept if e.node] == ["b", "c"]


def test_pod_cidrs_are_set_once_and_a_second_writer_conflicts() -> None:
    cluster = a_cluster("a")
    cluster.set_pod_cidrs("a", ["10.0.1.0/24"])

    with pytest.raises(ConflictError):
        cluster.set_pod_cidrs("a", ["10.0.2.0/24"])

    assert cluster.get_node("a").pod_cidrs == ("10.0.1.0/24",)


def test_pod_cidrs_of_a_missing_node_are_not_found() -> None:
    with pytest.raises(NotFoundError):
        a_cluster().set_pod_cidrs("ghost", ["10.0.1.0/24"])


def test_an_unchanged_condition_is_not_written_again() -> None:
    cluster = a_cluster("a")
    condition = Condition("False", "RouteCreated", "RouteController created a route")
    cluster.set_network_unavailable("a", condition)
    version = cluster.get_node("a").resource_version

    cluster.set_network_unavailable("a", condition)

    assert cluster.get_node("a").resource_version == version
    assert cluster.get_node("a").network_unavailable == condition


def test_lease_create_twice_conflicts_and_a_stale_update_conflicts() -> None:
    cluster = a_cluster()
    created = cluster.create_lease(Lease("ns", "l", holder="a"), timeout_s=1)
    with pytest.raises(ConflictError):
        cluster.create_lease(Lease("ns", "l", holder="b"), timeout_s=1)
    cluster.update_lease(Lease("ns", "l", holder="a", resource_version=created.resource_version), 1)

    with pytest.raises(ConflictError):
        cluster.update_lease(Lease("ns", "l", holder="c", resource_version=created.resource_version), 1)
    with pytest.raises(NotFoundError):
        cluster.update_lease(Lease("ns", "other", resource_version="1"), timeout_s=1)

    lease = cluster.lease("ns", "l")
    assert lease is not None
    assert lease.holder == "a"


def test_a_lease_call_hanging_past_its_timeout_is_ambiguous() -> None:
    cluster = a_cluster()
    release = threading.Event()

    def hang() -> None:
        release.wait(5)

    cluster.inject("create_lease", hang)

    with pytest.raises(AmbiguousError):
        cluster.create_lease(Lease("ns", "l"), timeout_s=0.05)
    release.set()


def test_repeated_events_are_aggregated_into_one_with_a_count() -> None:
    cluster = a_cluster("a")
    node = cluster.get_node("a")
    for _ in range(3):
        cluster.record_event(node, "Warning", "FailedToCreateRoute", "quota")
    cluster.record_event(node, "Warning", "FailedToCreateRoute", "throttled")

    assert [(e.message, e.count) for e in cluster.events] == [("quota", 3), ("throttled", 1)]


def test_an_idle_watch_sends_bookmarks() -> None:
    cluster = a_cluster("a")
    lease = cluster.create_lease(Lease("ns", "l"), timeout_s=1)

    events = list(cluster.watch_nodes(lease.resource_version, timeout_s=0.3))

    assert [e.type for e in events][:1] == [EventType.BOOKMARK]


def test_a_continued_list_is_served_from_the_first_pages_snapshot() -> None:
    cluster = a_cluster("a", "b")
    first = cluster.list_nodes(limit=1)
    cluster.update_node("b", provider_id="changed")

    second = cluster.list_nodes(limit=1, continue_token=first.continue_token)

    assert second.items[0].provider_id == ""


def test_a_lease_watch_streams_changes_after_its_version_and_ends_at_its_timeout() -> None:
    cluster = a_cluster()
    created = cluster.create_lease(Lease("ns", "l", holder="a"), timeout_s=1)
    seen: list[str] = []

    def watch() -> None:
        for lease in cluster.watch_lease("ns", "l", created.resource_version, timeout_s=0.5):
            seen.append(lease.holder)

    watcher = threading.Thread(target=watch)
    watcher.start()
    cluster.update_lease(replace(created, holder="b"), timeout_s=1)
    watcher.join(5)

    assert not watcher.is_alive()
    assert seen == ["b"]
    assert [x.holder for x in cluster.watch_lease("ns", "l", "", timeout_s=0.05)] == ["b"]


def test_a_lease_watch_from_a_compacted_version_is_gone() -> None:
    cluster = a_cluster()
    created = cluster.create_lease(Lease("ns", "l"), timeout_s=1)
    cluster.add_node("a")
    cluster.compact()

    with pytest.raises(GoneError):
        next(iter(cluster.watch_lease("ns", "l", created.resource_version, timeout_s=1)))

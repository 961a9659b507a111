"""NodeInformer against MemoryCluster: paginated list, watch, 410 relist diff, retries, bookmarks."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from routectl.cluster import ClusterError, Lease
from routectl.demo.memcluster import MemoryCluster
from routectl.kube.informer import NodeChange, NodeInformer

WAIT_S = 10.0


class Recorder:
    """Collects changes from the informer thread; tests wait on a predicate, never on a sleep."""

    def __init__(self) -> None:
        self.changes: list[NodeChange] = []
        self._cond = threading.Condition()

    def __call__(self, change: NodeChange) -> None:
        with self._cond:
            self.changes.append(change)
            self._cond.notify_all()

    def wait_for(self, count: int) -> list[NodeChange]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.changes) >= count, WAIT_S), self.changes
            return list(self.changes)

    def summary(self, start: int = 0) -> list[tuple[str, str]]:
        with self._cond:
            return [(c.kind, name_of(c)) for c in self.changes[start:]]


def name_of(change: NodeChange) -> str:
    node = change.new or change.old
    assert node is not None
    return node.name


@contextmanager
def running(
    cluster: MemoryCluster, on_change: Callable[[NodeChange], None], page_size: int = 500
) -> Iterator[NodeInformer]:
    informer = NodeInformer(
        cluster,
        on_change,
        page_size=page_size,
        watch_timeout_s=(0.1, 0.2),
        backoff_s=(0.01, 0.05),
    )
    stop = threading.Event()
    thread = threading.Thread(target=informer.run, args=(stop,), name="informer")
    thread.start()
    try:
        yield informer
    finally:
        stop.set()
        thread.join(timeout=WAIT_S)
        assert not thread.is_alive(), "informer did not stop"


def a_cluster(*names: str) -> MemoryCluster:
    cluster = MemoryCluster(bookmark_interval_s=0.05)
    for name in names:
        cluster.add_node(name, provider_id=f"aws:///z/{name}")
    return cluster


def blocking_fault() -> tuple[Callable[[], None], threading.Event, threading.Event]:
    """A fault that holds its call until released: (fault, entered, release)."""
    entered, release = threading.Event(), threading.Event()

    def fault() -> None:
        entered.set()
        release.wait(WAIT_S)

    return fault, entered, release


def test_initial_list_is_paginated_and_every_node_arrives_as_added_before_synced() -> None:
    names = [f"n{i}" for i in range(7)]
    cluster = a_cluster(*names)
    recorder = Recorder()

    with running(cluster, recorder, page_size=2) as informer:
        assert informer.synced.wait(WAIT_S)
        recorder.wait_for(7)

        assert recorder.summary() == [("added", name) for name in names]
        assert cluster.calls["list_nodes"] == 4
        assert [node.name for node in informer.nodes()] == names
        assert informer.get("n3") == cluster.nodes()["n3"]


def test_watch_delivers_add_update_and_delete_and_keeps_the_cache_current() -> None:
    cluster = a_cluster("n1", "n2")
    recorder = Recorder()
    with running(cluster, recorder) as informer:
        assert informer.synced.wait(WAIT_S)
        last_n2 = cluster.nodes()["n2"]

        cluster.add_node("n3")
        updated = cluster.update_node("n1", provider_id="aws:///z/other")
        cluster.delete_node("n2")
        changes = recorder.wait_for(5)

        assert recorder.summary(2) == [("added", "n3"), ("updated", "n1"), ("deleted", "n2")]
        assert changes[3].new == updated
        assert changes[4].old == last_n2
        assert changes[4].new is None
        assert informer.get("n1") == updated
        assert informer.get("n2") is None


def test_generation_changes_with_every_change_of_the_cache_and_only_then() -> None:
    cluster = a_cluster("n1", "n2")
    recorder = Recorder()
    with running(cluster, recorder) as informer:
        assert informer.synced.wait(WAIT_S)
        recorder.wait_for(2)
        listed = informer.generation()
        assert informer.generation() == listed  # nothing changed: it stands
        cluster.update_node("n1", provider_id="aws:///z/other")
        recorder.wait_for(3)
        updated = informer.generation()
        assert updated != listed
        cluster.delete_node("n2")
        recorder.wait_for(4)
        assert informer.generation() not in (listed, updated)


def test_relist_after_410_emits_exactly_the_missed_changes_including_deletes() -> None:
    cluster = a_cluster("keep", "change", "remove")
    fault, entered, release = blocking_fault()
    cluster.inject("watch_nodes", fault)  # holds the first watch, so it misses what follows
    recorder = Recorder()
    with running(cluster, recorder) as informer:
        assert entered.wait(WAIT_S)
        tombstone = cluster.nodes()["remove"]
        cluster.update_node("change", labels={"zone": "b"})
        cluster.delete_node("remove")
        cluster.add_node("new")
        cluster.add_node("transient")
        cluster.delete_node("transient")
        cluster.compact()

        release.set()
        changes = recorder.wait_for(6)

        assert recorder.summary(3) == [("updated", "change"), ("added", "new"), ("deleted", "remove")]
        assert changes[5].old == tombstone
        assert cluster.calls["list_nodes"] == 2
        assert [node.name for node in informer.nodes()] == ["change", "keep", "new"]
        cluster.add_node("after")
        recorder.wait_for(7)
        assert recorder.summary(6) == [("added", "after")]


def test_an_expired_continue_token_restarts_the_list_and_nothing_is_emitted_twice() -> None:
    cluster = a_cluster("a", "b", "c", "d")

    def change_and_compact() -> None:
        cluster.add_node("e")
        cluster.compact()

    cluster.inject("list_nodes", lambda: None)
    cluster.inject("list_nodes", change_and_compact)  # before the second page
    recorder = Recorder()
    with running(cluster, recorder, page_size=2) as informer:
        assert informer.synced.wait(WAIT_S)
        recorder.wait_for(5)

        assert recorder.summary() == [("added", name) for name in "abcde"]
        assert cluster.calls["list_nodes"] == 5  # 1 page, expired, then 3 pages


def test_a_failing_watch_is_retried_from_the_last_version_without_a_relist() -> None:
    cluster = a_cluster("n1")

    def broken() -> None:
        raise ClusterError("connection reset")

    def generic() -> None:
        raise RuntimeError("unexpected")

    cluster.inject("watch_nodes", broken)
    cluster.inject("watch_nodes", generic)
    recorder = Recorder()
    with running(cluster, recorder):
        cluster.add_node("n2")
        recorder.wait_for(2)

        assert recorder.summary() == [("added", "n1"), ("added", "n2")]
        assert cluster.calls["watch_nodes"] >= 3
        assert cluster.calls["list_nodes"] == 1


def test_a_failing_handler_does_not_lose_later_changes() -> None:
    cluster = a_cluster("n1")
    recorder = Recorder()

    def flaky(change: NodeChange) -> None:
        recorder(change)
        if name_of(change) == "n1":
            raise RuntimeError("handler bug")

    with running(cluster, flaky):
        recorder.wait_for(1)
        cluster.add_node("n2")
        recorder.wait_for(2)

        assert recorder.summary() == [("added", "n1"), ("added", "n2")]
        assert cluster.calls["list_nodes"] == 1


def test_bookmarks_advance_the_resource_version_without_node_changes() -> None:
    cluster = a_cluster("n1")
    recorder = Recorder()
    with running(cluster, recorder) as informer:
        assert informer.synced.wait(WAIT_S)
        lease = cluster.create_lease(Lease("kube-system", "routectl"), timeout_s=1.0)

        advanced = threading.Event()
        for _ in range(50):
            if informer.resource_version == lease.resource_version:
                advanced.set()
                break
            advanced.wait(0.05)

        assert advanced.is_set()
        assert recorder.summary() == [("added", "n1")]


def test_relist_reports_a_node_recreated_under_the_same_name_as_a_delete_and_an_add() -> None:
    cluster = a_cluster("a")
    fault, entered, release = blocking_fault()
    cluster.inject("watch_nodes", fault)
    recorder = Recorder()
    with running(cluster, recorder):
        assert entered.wait(WAIT_S)
        tombstone = cluster.nodes()["a"]
        cluster.delete_node("a")
        cluster.add_node("a")
        cluster.compact()

        release.set()
        changes = recorder.wait_for(3)

        assert recorder.summary(1) == [("deleted", "a"), ("added", "a")]
        assert changes[1].old == tombstone
        assert changes[2].new is not None
        assert changes[2].new.uid != tombstone.uid

"""Smoke tests of the benchmark suite at tiny sizes: the pieces run and produce well-formed results.

No timing assertions: speed figures belong to `make bench`, never to the test suite.
"""

from __future__ import annotations

import random
import threading
from pathlib import Path

import pytest

from bench import cold_restart, dual_stack, report, scale, shared_account
from bench.baseline import BaselineRouteController, SdkRetries
from bench.world import TABLE, add_nodes, measure, new_cluster, percentile, routectl_config
from providers import Throttled
from providers.emulators.simcloud import SimCloud
from routectl.controller import Controller
from routectl.metrics import Metrics


def test_routectl_and_baseline_both_converge_a_tiny_cluster_with_well_formed_figures() -> None:
    cfg = routectl_config()
    sim, cluster = SimCloud("bench"), new_cluster()
    add_nodes(cluster, sim, range(5), with_cidrs=False)
    ours = measure(sim, cluster, cfg, Controller(cfg, cluster, sim, Metrics()).run, timeout_s=30)

    sim, cluster = SimCloud("bench"), new_cluster()
    add_nodes(cluster, sim, range(5), with_cidrs=True)
    baseline = BaselineRouteController(cluster, sim, (TABLE,), period_s=0.2)
    theirs = measure(sim, cluster, cfg, baseline.run, timeout_s=30)

    for figures in (ours, theirs):
        assert figures["converged"] is True
        assert figures["api_calls"]["create_routes"] == 5
        assert "tables" not in figures["api_calls"]
        assert figures["throttled"] == 0
        assert figures["curve"][-1][1] == 5


def test_sdk_retries_give_up_after_three_attempts() -> None:
    sdk = SdkRetries(random.Random(0), sleep=lambda _s: None)
    attempts: list[int] = []

    def always_throttled() -> None:
        attempts.append(1)
        raise Throttled("RequestLimitExceeded")

    with pytest.raises(Throttled):
        sdk.call(always_throttled)
    assert len(attempts) == 3


def test_sdk_retries_stop_retrying_once_the_retry_quota_is_spent() -> None:
    sdk = SdkRetries(random.Random(0), sleep=lambda _s: None)
    assert sdk.quota.acquire(sdk.quota.CAPACITY - 4)  # less than one throttled retry (5) is left
    attempts: list[int] = []

    def always_throttled() -> None:
        attempts.append(1)
        raise Throttled("RequestLimitExceeded")

    with pytest.raises(Throttled):
        sdk.call(always_throttled)
    assert len(attempts) == 1


def test_baseline_stops_between_passes_when_told() -> None:
    sim, cluster = SimCloud("bench"), new_cluster()
    add_nodes(cluster, sim, range(3), with_cidrs=True)
    baseline = BaselineRouteController(cluster, sim, (TABLE,), period_s=60)
    stop = threading.Event()
    thread = threading.Thread(target=baseline.run, args=(stop,))
    thread.start()
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert baseline.passes >= 1


def test_plan_times_are_measured_for_a_few_nodes() -> None:
    converged, fresh = scale._plan_times(20, 2)
    assert converged >= 0
    assert fresh >= 0


def test_nearest_rank_percentile() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([3.0], 99) == 3.0


def test_summary_tabulates_every_result_present(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "RESULTS", tmp_path)
    report.write(
        "join_latency",
        {
            "nodes": 10,
            "joins": 2,
            "interval_s": 1.0,
            "routectl": {"p50_s": 0.1, "p99_s": 0.2},
            "baseline": {"p50_s": 4.0, "p99_s": 9.0},
            "notes": ["how it was measured"],
        },
    )
    text = report.summary().read_text()
    assert "| Measure | routectl | baseline (k8s route controller) | Goal | Notes |" in text
    assert "| Node join, podCIDR → verified route, p50 / p99 (s) | 0.1 / 0.2 | 4.0 / 9.0 | n/a |" in text
    assert "- **join_latency**: how it was measured" in text


def test_dual_stack_runs_both_controllers_at_once_and_each_prepares_every_instance_once() -> None:
    ours, theirs, passes = dual_stack.both(nodes=4, timeout_s=60)
    routes = 4 * 2 * len(dual_stack.TABLES)
    for figures in (ours, theirs):
        assert figures["converged"] is True
        assert figures["api_calls"]["create_routes"] == routes
        assert figures["curve"][-1][1] == routes
    assert ours["api_calls"]["prepare_target"] == 4
    assert theirs["api_calls"]["prepare_target"] == routes  # the reference prepares on every create
    assert passes >= 1


def test_shared_account_reports_every_clusters_finish() -> None:
    members = shared_account.members(3, 4, with_cidrs=False)
    figures = shared_account.converge(
        members, [Controller(m.cfg, m.cluster, m.sim, Metrics()).run for m in members], timeout_s=60
    )
    assert figures["converged"] is True
    assert len(figures["cluster_finish_s"]) == 3
    assert figures["slowest_vs_fastest"] >= 1.0
    assert figures["api_calls"]["create_routes"] == 12
    assert 0.0 <= figures["throttled_share"] <= 1.0


def test_cold_restart_counts_one_list_per_table_and_no_write() -> None:
    figures = cold_restart.restart(nodes=10, table_count=3, timeout_s=60, window_s=0.5)
    assert figures["ready"] is True
    assert figures["cloud_calls"] == {"list_routes": 3}
    assert figures["cloud_writes"] == 0
    assert figures["kube_node_writes"] == 0
    assert figures["kube_lease_writes"] >= 1


def test_summary_names_the_machine_and_its_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "RESULTS", tmp_path)
    host = report.machine([0.5, 3.25, 1.0])
    assert host["cpus"] is not None
    assert host["cpus"] >= 1
    assert (host["load_1min_min"], host["load_1min_max"]) == (0.5, 3.25)
    report.write("machine", host)
    text = report.summary().read_text()
    assert f"Measured on {host['cpus']} CPUs" in text
    assert "load average 0.50-3.25 during the run" in text

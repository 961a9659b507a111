"""Prometheus metrics, defined once and owned by one registry per controller (docs/architecture.md,
"Status, Events, metrics"; every name is listed in docs/operations.md, generated from this module by
scripts/metrics-docs.py).

No module-level registry: each controller (and each test) builds its own `Metrics`, so two controllers in
one process — the chaos tests and the demo — never share counters. The registry also carries the
process, platform and garbage-collector series (`process_*`, `python_*`) and `routectl_build_info`.
Counters and histograms export no `<name>_created` series: client-go has none, and in the text format
Prometheus stores each as one more gauge per child.
"""

from __future__ import annotations

import platform
from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

import routectl

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
_WORK_BUCKETS = (1e-4, 1e-3, 0.01, 0.1, 1, 10, 100)


FAMILY_ALL = "all"
"""`family` label of a table whose quota counts both IP families together (`ipv4`, `ipv6` otherwise)."""


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None, *, provider: str = "") -> None:
        """`provider` names the cloud adapter in `routectl_build_info` ("" when routes are off)."""
        self.registry = registry or CollectorRegistry()
        r = self.registry
        # prometheus_client's process-wide switch, read at every scrape (the function is untyped).
        disable_created_metrics()  # type: ignore[no-untyped-call]
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)  # registers itself only where the interpreter has gc statistics
        Info("routectl_build", "Version of routectl, of Python, and the provider; value 1", registry=r).info(
            {"version": routectl.__version__, "python": platform.python_version(), "provider": provider}
        )
        self._route_metrics(r)
        self._node_metrics(r)
        self._queue_metrics(r)

    def _route_metrics(self, r: CollectorRegistry) -> None:
        """Routes, route tables and the cloud calls behind them."""
        self.routes_desired = Gauge(
            "routectl_routes_desired", "Routes routectl wants (nodes x managed tables)", registry=r
        )
        self.routes_programmed = Gauge(
            "routectl_routes_programmed", "Owned routes verified in a table", ["table"], registry=r
        )
        self.route_operations = Counter(
            "routectl_route_operations_total",
            "Route writes by outcome",
            ["provider", "op", "outcome"],
            registry=r,
        )
        self.cloud_api_requests = Counter(
            "routectl_cloud_api_requests_total",
            "Cloud API calls by API name and result code",
            ["provider", "api", "code"],
            registry=r,
        )
        self.cloud_api_duration = Histogram(
            "routectl_cloud_api_request_duration_seconds",
            "Cloud API call latency",
            ["provider", "api"],
            registry=r,
        )
        self.node_route_latency = Histogram(
            "routectl_node_route_latency_seconds",
            "From podCIDR set to the node's routes verified in every table",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.ipam_capacity = Gauge(
            "routectl_ipam_cidrs_capacity", "Node blocks a cluster CIDR holds", ["cidr"], registry=r
        )
        self.ipam_used = Gauge(
            "routectl_ipam_cidrs_used", "Node blocks in use in a cluster CIDR", ["cidr"], registry=r
        )
        self.route_table_quota = Gauge(
            "routectl_route_table_quota",
            "Route quota of a managed table (per IP family where the cloud counts them apart)",
            ["table"],
            registry=r,
        )
        self.route_table_capacity_remaining = Gauge(
            "routectl_route_table_capacity_remaining",
            "Routes a managed table can still take: its quota minus every route in it (owned or not), "
            "per IP family where the cloud counts them apart (family ipv4/ipv6), else family=all",
            ["table", "family"],
            registry=r,
        )
        self.route_conflicts = Gauge(
            "routectl_route_conflicts",
            "Node routes blocked by a foreign route in a table (last full pass; never touched)",
            ["table"],
            registry=r,
        )
        self.routes_adoptable = Gauge(
            "routectl_routes_adoptable",
            "Routes another route controller made for a node's block and instance (last full pass): "
            "adopted with --adopt-routes, else they block their node",
            ["table"],
            registry=r,
        )
        self.routes_contested = Gauge(
            "routectl_routes_contested",
            "Owned routes held back from rewriting because something else keeps changing their target",
            registry=r,
        )

    def _node_metrics(self, r: CollectorRegistry) -> None:
        """Nodes, podCIDRs and reconciles."""
        self.converged = Gauge(
            "routectl_converged",
            "1 when the last full pass left every node routed and no stale route behind (upsert-only: "
            "stale routes it withholds do not count), else 0",
            registry=r,
        )
        self.nodes_network_unavailable = Gauge(
            "routectl_nodes_network_unavailable",
            "Nodes routectl holds at NetworkUnavailable=True (routes not verified in every table)",
            registry=r,
        )
        self.reconcile_duration = Histogram(
            "routectl_reconcile_duration_seconds", "Duration of one reconcile", ["kind"], registry=r
        )
        self.reconcile_errors = Counter(
            "routectl_reconcile_errors_total", "Reconciles that ended in an error", ["kind"], registry=r
        )
        self.cidr_conflicts = Counter(
            "routectl_ipam_cidr_conflicts_total",
            "Existing podCIDRs that could not be occupied (outside the pool or overlapping)",
            registry=r,
        )
        self.node_cidr_conflicts = Gauge(
            "routectl_node_cidr_conflicts",
            "PodCIDRs of live nodes that their node does not own, by the rule they break (no route)",
            ["rule"],
            registry=r,
        )

    def _queue_metrics(self, r: CollectorRegistry) -> None:
        """Leader election and client-go's workqueue metric set, labelled by queue name as client-go
        does."""
        self.leader = Gauge(
            "leader_election_master_status", "1 while this instance leads", ["name"], registry=r
        )
        self.wq_depth = Gauge("workqueue_depth", "Current depth of the queue", ["name"], registry=r)
        self.wq_adds = Counter("workqueue_adds_total", "Adds handled by the queue", ["name"], registry=r)
        self.wq_retries = Counter("workqueue_retries_total", "Rate-limited re-adds", ["name"], registry=r)
        self.wq_queue_duration = Histogram(
            "workqueue_queue_duration_seconds",
            "Time an item waits before being processed",
            ["name"],
            buckets=_WORK_BUCKETS,
            registry=r,
        )
        self.wq_work_duration = Histogram(
            "workqueue_work_duration_seconds",
            "Time processing an item takes",
            ["name"],
            buckets=_WORK_BUCKETS,
            registry=r,
        )
        self.wq_unfinished_work = Gauge(
            "workqueue_unfinished_work_seconds",
            "Seconds of work in progress not yet observed by work_duration; large values: stuck workers",
            ["name"],
            registry=r,
        )
        self.wq_longest_running = Gauge(
            "workqueue_longest_running_processor_seconds",
            "Seconds the longest-running worker of the queue has been processing its item",
            ["name"],
            registry=r,
        )

    def cloud_calls(self, provider: str) -> Callable[[str, str, float], None]:
        """The observer a provider reports every real cloud call to (`RouteProvider.observe`): one per
        request, so an adapter without a batch API counts one per route."""

        def count(api: str, code: str, seconds: float) -> None:
            self.cloud_api_requests.labels(provider, api, code).inc()
            self.cloud_api_duration.labels(provider, api).observe(seconds)

        return count

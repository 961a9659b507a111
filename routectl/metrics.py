"""Prometheus metrics, defined once and owned by one registry per controller (docs/architecture.md,
"Status, Events, metrics").

No module-level registry: each controller (and each test) builds its own `Metrics`, so two controllers in
one process — the chaos tests and the demo — never share counters.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
_WORK_BUCKETS = (1e-4, 1e-3, 0.01, 0.1, 1, 10, 100)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
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
            "routectl_route_table_quota", "Route quota of a managed table", ["table"], registry=r
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
        self.leader = Gauge(
            "leader_election_master_status", "1 while this instance leads", ["name"], registry=r
        )
        # client-go workqueue metric set, labelled by queue name as client-go does.
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

    def cloud_calls(self, provider: str) -> Callable[[str, str, float], None]:
        """The observer a provider reports every real cloud call to (`RouteProvider.observe`): one per
        request, so an adapter without a batch API counts one per route."""

        def count(api: str, code: str, seconds: float) -> None:
            self.cloud_api_requests.labels(provider, api, code).inc()
            self.cloud_api_duration.labels(provider, api).observe(seconds)

        return count

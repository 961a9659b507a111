"""A controller restarted over a converged cluster writes nothing: the restart costs one list per table.

Real controllers on MemoryCluster + SimCloud: the first converges a dual-stack cluster with two tables
and stops; the second starts over that state, and every call it makes is counted.
"""

from __future__ import annotations

import threading
from collections import Counter

from bench.cold_restart import NODE_WRITES
from providers.emulators.simcloud import WRITES, SimCloud
from routectl.controller import Controller
from routectl.demo.harness import embedded_config, run_until_converged
from routectl.demo.memcluster import MemoryCluster
from routectl.metrics import Metrics
from tests.unit.test_controller import FAST_LEASE, eventually

TABLES = ("rtb-a", "rtb-b")


def test_a_restart_over_a_converged_cluster_lists_each_table_once_and_writes_nothing() -> None:
    cfg = embedded_config(
        "aws", ["10.244.0.0/16", "fd00::/48"], cluster_name="sim", extra=("--region=sim", *FAST_LEASE)
    )
    cluster, sim = MemoryCluster(), SimCloud("sim", tables=TABLES)
    for i in range(12):
        cluster.add_node(f"node-{i}", provider_id=sim.add_instance(f"i-{i}"))
    first = run_until_converged(cluster, sim, cfg, timeout_s=30)
    assert first.converged, first.violations
    assert sim.prepared == {f"i-{i}" for i in range(12)}

    cloud_before, kube_before = Counter(sim.calls), Counter(cluster.calls)
    metrics, stop = Metrics(), threading.Event()
    controller = Controller(cfg, cluster, sim, metrics)
    thread = threading.Thread(target=controller.run, args=(stop,))
    thread.start()
    try:
        eventually(lambda: metrics.registry.get_sample_value("routectl_converged") == 1, "first pass")
        eventually(lambda: len(controller.queue) == 0 and controller.queue.busy() == 0, "queue drained")
    finally:
        stop.set()
        thread.join(timeout=30)

    cloud = Counter(sim.calls) - cloud_before
    kube = Counter(cluster.calls) - kube_before
    assert cloud["list_routes"] == len(TABLES)
    assert [api for api in (*WRITES, "prepare_target") if cloud[api]] == []
    assert [op for op in NODE_WRITES if kube[op]] == []
    assert kube["create_lease"] + kube["update_lease"] > 0  # it did lead: only the Lease was written

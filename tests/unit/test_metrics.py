"""The controller's registry: client-go's and prometheus_client's standard series beside routectl's own,
build info, and the metrics table of docs/operations.md generated from this code."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

from prometheus_client import generate_latest

import routectl
from routectl.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]


def test_process_python_and_build_info_series_are_in_the_controllers_own_registry() -> None:
    metrics = Metrics(provider="gcp")
    get = metrics.registry.get_sample_value
    build = {"version": routectl.__version__, "python": platform.python_version(), "provider": "gcp"}
    assert get("routectl_build_info", build) == 1
    assert (get("process_resident_memory_bytes") or 0) > 0
    assert (get("process_start_time_seconds") or 0) > 0
    assert get("python_info", {**_python_info()}) == 1
    assert get("python_gc_collections_total", {"generation": "0"}) is not None


def _python_info() -> dict[str, str]:
    major, minor, patch = platform.python_version_tuple()
    return {
        "implementation": platform.python_implementation(),
        "major": major,
        "minor": minor,
        "patchlevel": patch,
        "version": platform.python_version(),
    }


def test_two_controllers_in_one_process_keep_their_own_series() -> None:
    first, second = Metrics(), Metrics()
    first.route_conflicts.labels("rtb-1").set(3)
    assert second.registry.get_sample_value("routectl_route_conflicts", {"table": "rtb-1"}) is None


def test_counters_and_histograms_export_no_created_series() -> None:
    metrics = Metrics()
    metrics.cloud_api_requests.labels("aws", "CreateRoute", "200").inc()
    metrics.node_route_latency.observe(1.0)
    text = generate_latest(metrics.registry).decode()
    assert "routectl_cloud_api_requests_total{" in text
    assert "_created" not in text


def test_the_metrics_table_of_the_operations_guide_is_generated_from_this_code() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "metrics-docs.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr

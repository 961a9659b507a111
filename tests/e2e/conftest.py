"""Fixtures of the e2e tier: one real etcd + kube-apiserver per session, started on first use.

Without the pinned binaries the tier skips with a loud notice naming `make e2e-bins`, except under
CI=true, where it fails: CI must never pass an e2e tier that did not run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from apiserver import ControlPlane, ControlPlaneOptions
from binaries import Binaries, BinariesMissing, cache_dir_from_env, locate_binaries
from kubernetes import client

from tests.chart.chartlib import EXAMPLES, Helm, HelmMissing, Manifest, locate
from tests.providers.aws.awsworld import moto_server


def _missing_binaries() -> BinariesMissing | None:
    try:
        locate_binaries(cache_dir_from_env())
    except BinariesMissing as missing:
        return missing
    return None


@pytest.fixture(scope="session")
def e2e_binaries() -> Binaries:
    try:
        return locate_binaries(cache_dir_from_env())
    except BinariesMissing as missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and the e2e tier cannot run: {missing}", pytrace=False)
        pytest.skip(f"E2E TIER SKIPPED: {missing}")


@pytest.fixture(scope="session")
def control_plane(e2e_binaries: Binaries) -> Iterator[ControlPlane]:
    """The shared production-like control plane (watch cache on)."""
    with ControlPlane(e2e_binaries) as plane:
        yield plane


@pytest.fixture(scope="session")
def control_plane_without_watch_cache(e2e_binaries: Binaries) -> Iterator[ControlPlane]:
    """A second control plane whose watches all reach etcd, so a compaction yields 410 Gone."""
    with ControlPlane(e2e_binaries, ControlPlaneOptions(watch_cache=False)) as plane:
        yield plane


@pytest.fixture(scope="session")
def admin_api(control_plane: ControlPlane) -> Iterator[client.ApiClient]:
    with control_plane.admin_api_client() as api:
        yield api


@pytest.fixture(scope="session")
def chart_rbac() -> list[Manifest]:
    """The chart's ServiceAccount and RBAC objects, rendered by the pinned helm for the AWS example."""
    try:
        helm = Helm(locate())
    except HelmMissing as missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and the e2e tier cannot render the chart: {missing}", pytrace=False)
        pytest.skip(f"E2E TIER SKIPPED: {missing}")
    return [
        obj
        for template in ("templates/serviceaccount.yaml", "templates/rbac.yaml")
        for obj in helm.template([EXAMPLES["aws"]], show_only=template)
    ]


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's EC2 (and Service Quotas) server on 127.0.0.1, shared by the session; scenarios each build
    their own VPC, so they never see each other's tables."""
    with moto_server() as endpoint:
        yield endpoint


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Repeat the skip reason at the end of the run, where nobody can miss it."""
    missing = _missing_binaries()
    if missing is not None and os.environ.get("CI") != "true":
        terminalreporter.section("E2E TIER SKIPPED", sep="!", red=True, bold=True)
        terminalreporter.write_line(str(missing), red=True, bold=True)

"""Fixtures of the e2e tier: one real etcd + kube-apiserver per session, started on first use.

The shared fixtures live in tests/support/fixtures.py. Without the pinned binaries the tier skips with a
loud notice naming `make e2e-bins`, except under CI=true, where it fails: CI must never pass an e2e tier
that did not run.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.chart.chartlib import Manifest
from tests.monitoring.prom import missing_tools
from tests.support.apiserver import ControlPlane, ControlPlaneOptions
from tests.support.binaries import Binaries
from tests.support.cluster import Installed, install_chart_rbac
from tests.support.fixtures import (
    admin_api,
    chart_rbac,
    control_plane,
    e2e_binaries,
    missing_e2e_binaries,
    moto_endpoint,
    report_unavailable,
)

# The shared session fixtures, offered to this tier's tests.
__all__ = ["admin_api", "chart_rbac", "control_plane", "e2e_binaries", "moto_endpoint"]


@pytest.fixture(scope="session")
def tier() -> str:
    return "e2e"


@pytest.fixture(scope="session")
def control_plane_without_watch_cache(e2e_binaries: Binaries) -> Iterator[ControlPlane]:
    """A second control plane whose watches all reach etcd, so a compaction yields 410 Gone."""
    with ControlPlane(e2e_binaries, ControlPlaneOptions(watch_cache=False)) as plane:
        yield plane


@pytest.fixture(scope="module")
def installed(
    control_plane: ControlPlane, chart_rbac: list[Manifest], tmp_path_factory: pytest.TempPathFactory
) -> Installed:
    """The chart's ServiceAccount and RBAC on the shared control plane, and a kubeconfig with its token."""
    return install_chart_rbac(control_plane, chart_rbac, tmp_path_factory.mktemp("sa"))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    report_unavailable(terminalreporter, "e2e", [*missing_e2e_binaries(), *missing_tools()])

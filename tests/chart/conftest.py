"""Fixtures of the chart tier: the pinned helm (fail under CI=true, loud skip otherwise) and renders."""

from __future__ import annotations

import os

import pytest
from chartlib import EXAMPLES, Helm, HelmMissing, Manifest, locate

from tests.monitoring.prom import missing_tools
from tests.support.fixtures import report_unavailable


@pytest.fixture(scope="session")
def helm() -> Helm:
    try:
        return Helm(locate())
    except HelmMissing as missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"chart tier needs helm: {missing}")
        pytest.skip(f"*** CHART TIER SKIPPED: {missing} ***")


@pytest.fixture(params=sorted(EXAMPLES))
def example(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def rendered(helm: Helm, example: str) -> list[Manifest]:
    return helm.template([EXAMPLES[example]])


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The alert and dashboard checks need promtool: say so at the end when they skipped."""
    report_unavailable(terminalreporter, "chart", missing_tools())

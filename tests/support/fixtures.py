"""Session fixtures shared by the tiers that run real binaries (e2e, dataplane).

A tier's conftest imports the fixtures it uses and defines `tier` (its name, for messages). A tier that
cannot run — binaries missing, or what else it needs — fails under CI=true, since CI must never pass a
tier that did not run, and otherwise skips with a notice that is repeated at the end of the run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import NoReturn

import pytest
from kubernetes import client

from tests.chart.chartlib import EXAMPLES, Helm, HelmMissing, Manifest, locate
from tests.providers.aws.awsworld import moto_server
from tests.support.apiserver import ControlPlane
from tests.support.binaries import Binaries, BinariesMissing, cache_dir_from_env, locate_binaries


def unavailable(tier: str, reason: object) -> NoReturn:
    """Fail (CI=true) or skip the test that needed what is missing."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and the {tier} tier cannot run: {reason}", pytrace=False)
    pytest.skip(f"{tier.upper()} TIER SKIPPED: {reason}")


def report_unavailable(terminalreporter: pytest.TerminalReporter, tier: str, reasons: Sequence[str]) -> None:
    """Repeat why a tier skipped at the end of the run, where nobody can miss it (under CI it failed)."""
    if reasons and os.environ.get("CI") != "true":
        terminalreporter.section(f"{tier.upper()} TIER SKIPPED", sep="!", red=True, bold=True)
        for reason in reasons:
            terminalreporter.write_line(reason, red=True, bold=True)


def missing_e2e_binaries() -> list[str]:
    try:
        locate_binaries(cache_dir_from_env())
    except BinariesMissing as missing:
        return [str(missing)]
    return []


@pytest.fixture(scope="session")
def e2e_binaries(tier: str) -> Binaries:
    try:
        return locate_binaries(cache_dir_from_env())
    except BinariesMissing as missing:
        unavailable(tier, missing)


@pytest.fixture(scope="session")
def control_plane(e2e_binaries: Binaries) -> Iterator[ControlPlane]:
    """The shared production-like control plane (watch cache on)."""
    with ControlPlane(e2e_binaries) as plane:
        yield plane


@pytest.fixture(scope="session")
def admin_api(control_plane: ControlPlane) -> Iterator[client.ApiClient]:
    with control_plane.admin_api_client() as api:
        yield api


@pytest.fixture(scope="session")
def chart_rbac(tier: str) -> list[Manifest]:
    """The chart's ServiceAccount and RBAC objects, rendered by the pinned helm for the AWS example."""
    try:
        helm = Helm(locate())
    except HelmMissing as missing:
        unavailable(tier, missing)
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

"""Fixtures of the image tier: the images and wheels scripts/image.sh built, and the e2e tier's control
plane, chart RBAC, moto server and VPC, reused.

`make image-test` builds the images with a private Docker daemon, then runs this tier with the environment
naming them (ROUTECTL_DOCKER, DOCKER_HOST, ROUTECTL_IMAGE, ROUTECTL_IMAGE_AWS) and the wheels
(ROUTECTL_WHEELHOUSE). Without that environment the tier skips with a loud notice, except under CI=true,
where it fails: CI must never pass an image tier that did not run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.e2e.test_controller_e2e import cloud
from tests.image.imagelib import Docker, Images
from tests.support.fixtures import (
    admin_api,
    chart_rbac,
    control_plane,
    e2e_binaries,
    moto_endpoint,
    report_unavailable,
    unavailable,
)

# The shared session fixtures and the e2e tier's VPC in moto (two tables tagged owned), offered here.
__all__ = ["admin_api", "chart_rbac", "cloud", "control_plane", "e2e_binaries", "moto_endpoint"]

TIER = "image"
_IMAGES = ("ROUTECTL_DOCKER", "DOCKER_HOST", "ROUTECTL_IMAGE", "ROUTECTL_IMAGE_AWS")


def _missing(*names: str) -> list[str]:
    return [name for name in names if not os.environ.get(name)]


@pytest.fixture(scope="session")
def tier() -> str:
    return TIER


@pytest.fixture(scope="session")
def images() -> Images:
    missing = _missing(*_IMAGES)
    if missing:
        unavailable(TIER, f"no images built ({', '.join(missing)} unset); run `make image-test`")
    return Images(
        Docker(os.environ["ROUTECTL_DOCKER"]), os.environ["ROUTECTL_IMAGE"], os.environ["ROUTECTL_IMAGE_AWS"]
    )


@pytest.fixture(scope="session")
def wheelhouse() -> Path:
    """The build context of the every-cloud image: wheels/ (the pinned dependencies), dist/ (routectl's
    wheel) and constraints.txt."""
    if _missing("ROUTECTL_WHEELHOUSE"):
        unavailable(TIER, "no wheels built (ROUTECTL_WHEELHOUSE unset); run `make image-test`")
    return Path(os.environ["ROUTECTL_WHEELHOUSE"])


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    missing = _missing(*_IMAGES, "ROUTECTL_WHEELHOUSE")
    reasons = [f"no images or wheels ({', '.join(missing)} unset); run `make image-test`"] if missing else []
    report_unavailable(terminalreporter, TIER, reasons)

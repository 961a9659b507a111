"""Fixtures of the image tier: the images and wheels scripts/image.sh built, and the e2e tier's control
plane, chart RBAC, moto server and VPC, reused.

`make image-test` builds the images with a private Docker daemon, then runs this tier with the environment
naming them (ROUTECTL_DOCKER, DOCKER_HOST, ROUTECTL_IMAGE, ROUTECTL_IMAGE_AWS) and the wheels
(ROUTECTL_WHEELHOUSE). Without that environment the tier skips with a loud notice, except under CI=true,
where it fails: CI must never pass an image tier that did not run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# The e2e tier's helper modules import one another by name (its conftest's directory is on sys.path
# there); this tier reuses them and that tier's fixtures.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from imagelib import Docker, Images
from test_controller_e2e import cloud  # noqa: F401 (one scenario's VPC in moto, two tables tagged owned)

from tests.e2e.conftest import (
    admin_api,  # noqa: F401
    chart_rbac,  # noqa: F401
    control_plane,  # noqa: F401
    e2e_binaries,  # noqa: F401
    moto_endpoint,  # noqa: F401
)

SKIPPED = "IMAGE TIER SKIPPED"


def _missing(*names: str) -> list[str]:
    return [name for name in names if not os.environ.get(name)]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and the image tier cannot run: {reason}", pytrace=False)
    pytest.skip(f"{SKIPPED}: {reason}")


@pytest.fixture(scope="session")
def images() -> Images:
    missing = _missing("ROUTECTL_DOCKER", "DOCKER_HOST", "ROUTECTL_IMAGE", "ROUTECTL_IMAGE_AWS")
    if missing:
        _unavailable(f"no images built ({', '.join(missing)} unset); run `make image-test`")
    return Images(
        Docker(os.environ["ROUTECTL_DOCKER"]), os.environ["ROUTECTL_IMAGE"], os.environ["ROUTECTL_IMAGE_AWS"]
    )


@pytest.fixture(scope="session")
def wheelhouse() -> Path:
    """The build context of the every-cloud image: wheels/ (the pinned dependencies), dist/ (routectl's
    wheel) and constraints.txt."""
    if _missing("ROUTECTL_WHEELHOUSE"):
        _unavailable("no wheels built (ROUTECTL_WHEELHOUSE unset); run `make image-test`")
    return Path(os.environ["ROUTECTL_WHEELHOUSE"])


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Repeat a skip at the end of the run, where nobody can miss it."""
    skipped = [r for r in terminalreporter.stats.get("skipped", ()) if SKIPPED in str(r.longrepr)]
    if skipped:
        terminalreporter.section(SKIPPED, sep="!", red=True, bold=True)
        terminalreporter.write_line(
            f"{len(skipped)} tests skipped: no images; `make image-test` builds them and runs this tier",
            red=True,
            bold=True,
        )

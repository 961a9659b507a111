"""Shared by every tier: no cloud SDK in a test (or a process a test starts) probes instance metadata."""

from __future__ import annotations

import os

import pytest

from providers.emulators.isolation import disable_metadata_probes
from routectl.config import ENV_PREFIX


def pytest_configure(config: pytest.Config) -> None:
    # Before any test module imports an SDK: google-auth and alibabacloud-credentials read these once.
    disable_metadata_probes(os.environ)


@pytest.fixture
def no_harness_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """routectl run in-process sees no `ROUTECTL_*` variable of the test harness (the Makefile's
    ROUTECTL_BIN_CACHE, replay seeds): it refuses every such name that is not a setting. Binaries are
    found by the session fixtures before this removes the variable."""
    for name in [n for n in os.environ if n.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(name)

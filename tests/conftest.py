"""Shared by every tier: no cloud SDK in a test (or a process a test starts) probes instance metadata."""

from __future__ import annotations

import os

import pytest

from providers.emulators.isolation import disable_metadata_probes


def pytest_configure(config: pytest.Config) -> None:
    # Before any test module imports an SDK: google-auth and alibabacloud-credentials read these once.
    disable_metadata_probes(os.environ)

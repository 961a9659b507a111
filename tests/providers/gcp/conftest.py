"""Fixtures: a fresh GCE emulator per test (with the cluster's network) and an adapter bound to it.

Teardown fails a test whose adapter called a compute API that has no IAM permission mapped, so the
permission list in docs/gcp.md cannot silently fall behind the code.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gcp_helpers import API_PERMISSIONS, NETWORK, PROJECT, a_provider

from providers.emulators.gce import GceEmulator
from providers.gcp import GcpProvider


@pytest.fixture
def emulator() -> Iterator[GceEmulator]:
    with GceEmulator() as emu:
        emu.add_network(PROJECT, NETWORK)
        yield emu
        unmapped = set(emu.calls()) - set(API_PERMISSIONS)
        assert not unmapped, f"adapter called APIs with no IAM permission mapped: {sorted(unmapped)}"


@pytest.fixture
def provider(emulator: GceEmulator) -> Iterator[GcpProvider]:
    adapter = a_provider(emulator)
    yield adapter
    adapter.close()

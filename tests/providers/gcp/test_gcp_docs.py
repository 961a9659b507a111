"""docs/gcp.md lists exactly the IAM permissions of the compute APIs the adapter calls.

The emulator fixture fails any test whose adapter calls an API missing from API_PERMISSIONS; this test
drives every adapter path once and checks the documented custom role against that map.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import pathlib
import re

from gcp_helpers import API_PERMISSIONS, NETWORK, PROJECT, ZONE, a_route, with_instances

from providers.emulators.gce import GceEmulator
from providers.gcp import GcpProvider
from providers.model import DiagnosisScope, Target

DOC = pathlib.Path(__file__).resolve().parents[3] / "docs" / "gcp.md"


def documented_permissions() -> set[str]:
    """The permissions in the custom role's `includedPermissions` block of docs/gcp.md."""
    block = re.search(r"includedPermissions:\n((?:- \S+\n)+)", DOC.read_text())
    assert block is not None, "docs/gcp.md has no includedPermissions list"
    return {line.removeprefix("- ").strip() for line in block[1].splitlines()}


def test_documented_role_covers_every_api_the_adapter_calls(
    emulator: GceEmulator, provider: GcpProvider
) -> None:
    emulator.operation_delay = 0.05
    with_instances(emulator, 2)
    provider.prepare_target(Target("node-0", ZONE, PROJECT))
    provider.create_routes(NETWORK, [a_route(0, instance="node-1")])
    provider.create_routes(NETWORK, [a_route(0)])  # 409 → get → replace
    [listed] = [r for r in provider.list_routes(NETWORK) if r.owned]
    provider.replace_routes(
        NETWORK, [dataclasses.replace(a_route(0, instance="node-1"), cloud_id=listed.cloud_id)]
    )
    provider.delete_routes(NETWORK, [listed])
    provider.diagnose(
        DiagnosisScope((ipaddress.ip_network("10.0.0.0/16"),), (Target("node-0", ZONE, PROJECT),))
    )

    called = set(emulator.calls())
    assert called == set(API_PERMISSIONS)
    assert documented_permissions() == set().union(*API_PERMISSIONS.values())

"""`GcpProvider.diagnose` against the GCE emulator: a healthy setup passes all but the two lines GCP
cannot prove (the emulator's anonymous identity, permissions); each broken one is its ✗ line. And the
emulator's `projects.get`, which the quota check reads."""

from __future__ import annotations

import ipaddress

from gcp_helpers import NETWORK, PROJECT, ZONE, a_provider, with_instances
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1

from providers import Check, CheckStatus, DiagnosisScope, Target
from providers.emulators.gce import GceEmulator
from providers.gcp import GcpProvider

CIDRS = (ipaddress.ip_network("10.0.0.0/16"),)
UNPROVABLE = {"identity", "permissions"}


def scope(count: int, *extra: str) -> DiagnosisScope:
    names = [f"node-{i}" for i in range(count)] + list(extra)
    return DiagnosisScope(CIDRS, tuple(Target(n, ZONE, PROJECT) for n in names))


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def failures(checks: list[Check]) -> set[str]:
    return {c.name for c in checks if c.status is CheckStatus.FAIL}


def test_a_healthy_setup_passes_all_but_what_gcp_cannot_prove(
    emulator: GceEmulator, provider: GcpProvider
) -> None:
    emulator.routes_quota = 100
    with_instances(emulator, 2)
    checks = by_name(provider.diagnose(scope(2)))
    assert {n for n, c in checks.items() if c.status is not CheckStatus.PASS} == UNPROVABLE
    assert {checks[n].status for n in UNPROVABLE} == {CheckStatus.WARN}
    assert "testIamPermissions" in checks["permissions"].found
    assert checks["network"].found == f"network projects/{PROJECT}/global/networks/{NETWORK}"
    assert {f"can-ip-forward {PROJECT}/{ZONE}/node-{i}" for i in range(2)} <= set(checks)
    assert checks[f"quota project {PROJECT}"].found.endswith("quota 100")
    assert not {"routes.insert", "routes.delete"} & set(emulator.calls())


def test_an_instance_without_can_ip_forward_fails(emulator: GceEmulator, provider: GcpProvider) -> None:
    emulator.routes_quota = 100
    with_instances(emulator, 1)
    emulator.add_instance(PROJECT, ZONE, "stiff", can_ip_forward=False)
    checks = provider.diagnose(scope(1, "stiff"))
    assert failures(checks) == {f"can-ip-forward {PROJECT}/{ZONE}/stiff"}
    assert "--can-ip-forward" in by_name(checks)[f"can-ip-forward {PROJECT}/{ZONE}/stiff"].fix


def test_an_instance_in_another_network_fails_the_association(
    emulator: GceEmulator, provider: GcpProvider
) -> None:
    emulator.routes_quota = 100
    emulator.add_network(PROJECT, "other")
    emulator.add_instance(PROJECT, ZONE, "away", network="other")
    association = by_name(provider.diagnose(scope(0, "away")))["associations"]
    assert association.status is CheckStatus.FAIL
    assert f"NICs in projects/{PROJECT}/global/networks/other" in association.found


def test_a_missing_network_fails_and_stops(emulator: GceEmulator) -> None:
    provider = a_provider(emulator, network="absent")
    try:
        checks = provider.diagnose(scope(0))
    finally:
        provider.close()
    assert [c.name for c in checks] == ["identity", "permissions", "network"]
    assert failures(checks) == {"network"}


def test_a_project_quota_without_room_for_every_node_fails(
    emulator: GceEmulator, provider: GcpProvider
) -> None:
    emulator.routes_quota = 3  # the network's default route counts too
    with_instances(emulator, 3)
    checks = by_name(provider.diagnose(scope(3)))
    quota = checks[f"quota project {PROJECT}"]
    assert quota.status is CheckStatus.FAIL
    assert "1 route(s) now, 4 once every node is routed, quota 3" in quota.found


def test_an_unknown_quota_is_a_warning(emulator: GceEmulator, provider: GcpProvider) -> None:
    with_instances(emulator, 1)
    assert by_name(provider.diagnose(scope(1)))[f"quota project {PROJECT}"].status is CheckStatus.WARN


def test_the_emulator_reports_the_routes_quota_and_usage_of_the_whole_project(emulator: GceEmulator) -> None:
    emulator.add_network(PROJECT, "second")
    projects = compute_v1.ProjectsClient(
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options=ClientOptions(api_endpoint=emulator.endpoint),
        transport="rest",
    )
    assert list(projects.get(project=PROJECT).quotas) == []  # no quota set: unlimited, none reported
    emulator.routes_quota = 7
    [quota] = projects.get(project=PROJECT).quotas
    assert (quota.metric, quota.limit, quota.usage) == ("ROUTES", 7.0, float(len(emulator.routes(PROJECT))))
    assert quota.usage == 2.0  # each network's default route
    projects.transport.close()  # type: ignore[no-untyped-call]

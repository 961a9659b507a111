"""providerID parsing, canIpForward checks, naming, limits and configuration of the GCP adapter."""

from __future__ import annotations

import ipaddress
import re

import google.auth
import pytest
from gcp_helpers import CLUSTER, NETWORK, PROJECT, ZONE, a_config, a_provider
from google.auth import exceptions as auth_exceptions
from hypothesis import given
from hypothesis import strategies as st

from providers.emulators.gce import GceEmulator
from providers.errors import ConfigurationError, Fatal, NotFound, OutsideNetwork
from providers.gcp import GcpProvider, cluster_prefix, route_name
from providers.model import RouteProvider, Target

RFC1035 = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
UID = "0c9a6c4e-6f0a-4b8a-9d7e-2f1e0c3b5a71"


def test_instance_that_can_forward_ip_is_prepared(emulator: GceEmulator, provider: GcpProvider) -> None:
    emulator.add_instance(PROJECT, ZONE, "node-a")

    provider.prepare_target(Target("node-a", ZONE, PROJECT))
    provider.prepare_target(Target("node-a", ZONE, PROJECT))

    assert emulator.calls()["instances.get"] == 1


def test_instance_without_can_ip_forward_is_a_clear_fatal_error(
    emulator: GceEmulator, provider: GcpProvider
) -> None:
    emulator.add_instance(PROJECT, ZONE, "node-a", can_ip_forward=False)

    with pytest.raises(
        Fatal, match=r"canIpForward=false.*recreate the instance/template with --can-ip-forward"
    ):
        provider.prepare_target(Target("node-a", ZONE, PROJECT))


def test_an_instance_with_no_nic_in_the_managed_network_is_refused_naming_both(
    emulator: GceEmulator, provider: GcpProvider
) -> None:
    emulator.add_network(PROJECT, "elsewhere")
    emulator.add_instance(PROJECT, ZONE, "node-a", network="elsewhere")

    with pytest.raises(OutsideNetwork) as raised:
        provider.prepare_target(Target("node-a", ZONE, PROJECT))

    assert raised.value.network == f"projects/{PROJECT}/global/networks/elsewhere"
    assert raised.value.managed == f"projects/{PROJECT}/global/networks/{NETWORK}"
    assert "node-a" in str(raised.value)


def test_missing_instance_is_not_found(provider: GcpProvider) -> None:
    with pytest.raises(NotFound, match="node-x"):
        provider.prepare_target(Target("node-x", ZONE, PROJECT))


def test_the_network_is_the_only_table(provider: GcpProvider) -> None:
    assert provider.tables() == [NETWORK]


def test_missing_network_is_a_configuration_error(emulator: GceEmulator) -> None:
    adapter = a_provider(emulator, network="nope")
    with pytest.raises(ConfigurationError, match="nope"):
        adapter.tables()
    adapter.close()


def test_built_through_the_registry_it_satisfies_the_provider_protocol(emulator: GceEmulator) -> None:
    adapter = a_config(emulator.endpoint).build()
    assert isinstance(adapter, RouteProvider)
    assert adapter.tables() == [NETWORK]
    adapter.close()


@pytest.mark.parametrize("missing", ["project", "network"])
def test_project_and_network_are_required(missing: str) -> None:
    with pytest.raises(ConfigurationError, match=missing):
        a_config("http://127.0.0.1:9", **{missing: ""})


def test_limits_are_conservative_by_default_and_overridable(emulator: GceEmulator) -> None:
    default = a_provider(emulator).limits
    tuned = a_config(emulator.endpoint, write_rate=3.0, write_burst=4, route_table_quota=250).build().limits

    assert (default.write_rate, default.write_burst, default.read_rate, default.read_burst) == (
        10.0,
        20,
        20.0,
        50,
    )
    assert default.routes_per_table is None
    assert (tuned.write_rate, tuned.write_burst, tuned.routes_per_table) == (3.0, 4, 250)


def test_long_cluster_name_is_truncated_but_the_uid_is_kept_whole() -> None:
    prefix = cluster_prefix("A-Very_Long.Cluster-Name-For-Production-Europe")
    name = route_name(prefix, UID, ipaddress.ip_network("fd00::/64"))

    assert name.endswith(f"-{UID}-v6")
    assert len(name) <= 63
    assert RFC1035.fullmatch(name)
    assert cluster_prefix(CLUSTER) == CLUSTER


@given(st.text(min_size=1, max_size=80).filter(lambda s: any(c.isalnum() and c.isascii() for c in s)))
def test_every_cluster_name_yields_valid_route_names_for_both_families(cluster: str) -> None:
    prefix = cluster_prefix(cluster)
    for network in ("10.0.0.0/24", "fd00::/64"):
        name = route_name(prefix, UID, ipaddress.ip_network(network))
        assert len(name) <= 63
        assert RFC1035.fullmatch(name), name


def test_missing_application_default_credentials_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_credentials(*args: object, **kwargs: object) -> None:
        raise auth_exceptions.DefaultCredentialsError("Your default credentials were not found.")

    monkeypatch.setattr(google.auth, "default", no_credentials)
    config = a_config("", cluster="c")

    with pytest.raises(ConfigurationError, match="Application Default Credentials"):
        config.build()

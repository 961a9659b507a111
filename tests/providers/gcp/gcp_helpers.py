"""Builders and the API → IAM permission map shared by the GCP adapter tests."""

from __future__ import annotations

import ipaddress

from providers.emulators.gce import GceEmulator
from providers.gcp import GcpProvider, Polling, _Clients
from providers.model import Route, Target
from providers.registry import ConfiguredProvider
from providers.specs.gcp import GcpConfig
from tests.providers.configured import configured

PROJECT = "proj-1234"
NETWORK = "vpc"
ZONE = "us-central1-a"
CLUSTER = "prod"
FAST = Polling(initial=0.01, maximum=0.05, timeout=10.0, call_timeout=10.0)

API_PERMISSIONS: dict[str, frozenset[str]] = {
    "routes.list": frozenset({"compute.routes.list"}),
    "routes.get": frozenset({"compute.routes.get"}),
    "routes.insert": frozenset(
        {"compute.routes.create", "compute.networks.updatePolicy", "compute.instances.use"}
    ),
    "routes.delete": frozenset({"compute.routes.delete", "compute.networks.updatePolicy"}),
    "globalOperations.get": frozenset({"compute.globalOperations.get"}),
    "instances.get": frozenset({"compute.instances.get"}),
    "networks.get": frozenset({"compute.networks.get"}),
    "projects.get": frozenset({"compute.projects.get"}),
}
"""Every compute API the adapter may call and the IAM permissions it needs (docs/gcp.md lists them)."""


def a_config(endpoint: str, cluster: str = CLUSTER, **overrides: object) -> ConfiguredProvider[GcpConfig]:
    """Through the registry's `gcp` spec; `.config` is the GcpConfig, `.build()` the adapter."""
    values = {"project": PROJECT, "network": NETWORK, "endpoint": endpoint, **overrides}
    return configured("gcp", cluster, **values)


def a_provider(
    emulator: GceEmulator, cluster: str = CLUSTER, polling: Polling = FAST, **overrides: object
) -> GcpProvider:
    config = a_config(emulator.endpoint, cluster, **overrides).config
    return GcpProvider(config, _Clients.connect(emulator.endpoint), polling)


def uid(i: int) -> str:
    return f"{i:08x}-1111-4222-8333-444455556666"


def a_route(i: int, *, cidr: str = "", instance: str = "", cluster_node: str = "") -> Route:
    """The desired route of node-i (instance node-i unless told), podCIDR 10.<i/256>.<i%256>.0/24."""
    destination = ipaddress.ip_network(cidr or f"10.{i // 256}.{i % 256}.0/24")
    return Route(
        destination=destination,
        target=Target(instance or f"node-{i}", ZONE, PROJECT),
        node=cluster_node or f"node-{i}",
        node_uid=uid(i),
    )


def with_instances(emulator: GceEmulator, count: int) -> None:
    for i in range(count):
        emulator.add_instance(PROJECT, ZONE, f"node-{i}")

"""Fixtures for the Alibaba adapter tier: a running VPC emulator and adapters built on it via the real SDK."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator

import pytest

from providers.alibaba import AlibabaProvider, PollPolicy, build
from providers.emulators.alibaba import AlibabaVpcEmulator
from providers.model import Route, Target
from tests.providers.configured import configured

REGION = "cn-hangzhou"
VPC = "vpc-test"
CLUSTER = "prod"
FAST_POLL = PollPolicy(first=0.005, cap=0.05, timeout=5.0)

Build = Callable[..., AlibabaProvider]


@pytest.fixture
def emulator() -> Iterator[AlibabaVpcEmulator]:
    with AlibabaVpcEmulator(region=REGION, create_delay=0.01, delete_delay=0.01) as emu:
        yield emu


@pytest.fixture
def table(emulator: AlibabaVpcEmulator) -> str:
    return emulator.add_table(VPC, "vtb-main")


@pytest.fixture
def make_provider(emulator: AlibabaVpcEmulator) -> Build:
    def make(*, poll: PollPolicy = FAST_POLL, **overrides: object) -> AlibabaProvider:
        settings: dict[str, object] = {"region": REGION, "vpc_id": VPC, "endpoint": emulator.endpoint}
        settings.update(overrides)
        cluster = str(settings.pop("cluster_name", CLUSTER))
        return build(configured("alibaba", cluster, **settings).config, poll=poll)

    return make


@pytest.fixture
def provider(make_provider: Build, table: str) -> AlibabaProvider:
    return make_provider()


def a_route(index: int, *, instance: str = "", node: str = "") -> Route:
    """The desired route of node `node-<index>`: 10.<hi>.<lo>.0/24 via `i-<index>`."""
    return Route(
        destination=ipaddress.ip_network(f"10.{index // 256}.{index % 256}.0/24"),
        target=Target(instance=instance or f"i-{index:06d}", zone=REGION),
        owned=True,
        node=node or f"node-{index}",
    )


def instances_for(emulator: AlibabaVpcEmulator, routes: list[Route]) -> None:
    emulator.add_instances(VPC, *(r.target.instance for r in routes if r.target is not None))

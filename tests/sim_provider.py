"""A provider spec for the simulated cloud, offered in-process rather than through an entry point: how a
test hands routectl a provider it does not ship, with settings of its own, as an adapter from another
distribution would (the e2e tier installs a real one)."""

from __future__ import annotations

from dataclasses import dataclass

from providers.emulators.simcloud import SimCloud
from providers.model import Limits
from providers.registry import CommonConfig, ProviderSpec, Registry, discover
from providers.settings import Setting


@dataclass(frozen=True, slots=True)
class SimConfig:
    common: CommonConfig
    tables: tuple[str, ...]


def _build(config: SimConfig) -> SimCloud:
    return SimCloud(config.common.cluster_name, tables=config.tables)


SIM = ProviderSpec(
    name="sim",
    summary="the simulated cloud of providers.emulators.simcloud",
    config=SimConfig,
    build=_build,
    limits=Limits(write_rate=1000.0, write_burst=1000, read_rate=1000.0, read_burst=1000),
    settings=(
        Setting(
            "sim-table",
            "route tables of the simulated cloud",
            required=True,
            many=True,
            default=(),
            field="tables",
        ),
    ),
)


def with_sim() -> Registry:
    """The installed providers plus `sim`."""
    return Registry(tuple(sorted((*discover().specs, SIM), key=lambda spec: spec.name)))

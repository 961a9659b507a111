"""Provider settings, as one frozen value the controller's config maps onto.

Zero means "use the provider's default" for every numeric override, so a single config shape serves all
clouds.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    cluster_name: str
    region: str = ""
    project: str = ""
    network: str = ""
    vpc_id: str = ""
    route_table_ids: tuple[str, ...] = ()
    route_priority: int = 1000
    route_table_quota: int = 0
    endpoint: str = ""
    """Endpoint override for tests and emulators; empty means the real cloud."""
    write_rate: float = 0.0
    write_burst: int = 0
    read_rate: float = 0.0
    read_burst: int = 0

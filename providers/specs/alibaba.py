"""The Alibaba Cloud adapter's spec and config: VPC route tables through alibabacloud-vpc20160428
(providers/alibaba.py)."""

from __future__ import annotations

from dataclasses import dataclass

from providers.errors import ConfigurationError
from providers.model import Limits
from providers.registry import CommonConfig, ProviderSpec
from providers.settings import Setting, region, resource_id

MAX_BATCH = 50
"""Entries per CreateRouteEntries / DeleteRouteEntries call (API limit)."""
DEFAULT_QUOTA = 200
"""Default custom entries per route table."""
LIMITS = Limits(
    write_rate=5.0,
    write_burst=10,
    read_rate=20.0,
    read_burst=40,
    max_batch=MAX_BATCH,
    batch_api=True,
    routes_per_table=DEFAULT_QUOTA,
    writers_per_table=1,
)


@dataclass(frozen=True, slots=True)
class AlibabaConfig:
    """Invariant: names a VPC or at least one route table, so there is something to manage."""

    common: CommonConfig
    region: str
    vpc_id: str = ""
    route_table_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.vpc_id and not self.route_table_ids:
            raise ConfigurationError(
                "--vpc-id: required for --provider alibaba unless --route-table-id is given"
            )


SPEC = ProviderSpec(
    name="alibaba",
    summary="Alibaba Cloud: VPC route tables (alibabacloud-vpc20160428)",
    config=AlibabaConfig,
    build="providers.alibaba:build",
    limits=LIMITS,
    settings=(
        Setting("region", "Alibaba Cloud region", region, required=True),
        Setting(
            "vpc-id",
            "VPC of the managed route tables; required unless --route-table-id is given",
            resource_id,
        ),
        Setting(
            "route-table-id",
            "managed route tables; default: every table of --vpc-id",
            resource_id,
            many=True,
            default=(),
            field="route_table_ids",
        ),
    ),
    embedded="providers.emulators.embedded:alibaba_cloud",
)

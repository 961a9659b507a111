"""The AWS adapter's spec and config: EC2 VPC route tables through boto3 (providers/aws.py)."""

from __future__ import annotations

from dataclasses import dataclass

from providers.model import Limits
from providers.registry import CommonConfig, ProviderSpec
from providers.settings import Setting, region, resource_id

DEFAULT_ROUTES_PER_TABLE = 50
"""AWS's default route quota per table; the adapter asks Service Quotas for the account's value."""
LIMITS = Limits(
    # EC2 API request throttling: mutating actions bucket 50 refill 5/s; non-mutating bucket 100 refill 20/s.
    write_rate=5.0,
    write_burst=50,
    read_rate=20.0,
    read_burst=100,
    routes_per_table=DEFAULT_ROUTES_PER_TABLE,
    quota_per_family=True,
    prepare_writes=True,
)


@dataclass(frozen=True, slots=True)
class AwsConfig:
    common: CommonConfig
    region: str
    vpc_id: str = ""
    """Discovery considers only route tables of this VPC; empty: every VPC of the region."""
    route_table_ids: tuple[str, ...] = ()
    """Explicit tables; empty: discover the tables tagged for the cluster."""


SPEC = ProviderSpec(
    name="aws",
    summary="AWS: EC2 VPC route tables (boto3)",
    config=AwsConfig,
    build="providers.aws:build",
    limits=LIMITS,
    settings=(
        Setting("region", "AWS region", region, required=True),
        Setting("vpc-id", "only manage route tables of this VPC (optional filter)", resource_id),
        Setting(
            "route-table-id",
            "managed route tables; default: discover the tables tagged for the cluster",
            resource_id,
            many=True,
            default=(),
            field="route_table_ids",
        ),
    ),
    embedded="providers.emulators.embedded:aws_cloud",
)

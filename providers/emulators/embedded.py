"""Embedded clouds for `routectl demo` and the benchmarks: a populated cloud behind the real SDK.

AWS is moto's EC2 in-process; GCP and Alibaba are this package's HTTP emulators on 127.0.0.1. Each yields
the provider flags that point routectl at it and one `spec.providerID` per node. The built-in specs
name these factories (`ProviderSpec.embedded`), so only the demo, when it runs one, imports this module.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from providers.errors import MissingPackage
from providers.registry import DEMO_CLUSTER, EmbeddedCloud, requirement

AWS_MAX_ROUTES_PER_TABLE = 1000
"""The most an administrator can raise AWS's routes-per-table quota to (per IP family)."""


@dataclass(frozen=True, slots=True)
class RouteQuota:
    """What one table of an embedded cloud holds: `routes` (None = no limit), counted per IP family or
    all together."""

    routes: int | None
    per_family: bool = False

    def fits(self, nodes: int, families: int) -> bool:
        return self.routes is None or nodes * (1 if self.per_family else families) <= self.routes


@contextlib.contextmanager
def aws_cloud(nodes: int, tables: int = 2) -> Iterator[EmbeddedCloud]:
    try:
        import boto3
        from moto import mock_aws
    except ModuleNotFoundError as missing:  # e.g. the container image, which ships without moto
        raise MissingPackage(
            missing, "the demo's embedded AWS cloud", requirement(__name__, "demo")
        ) from None

    region, zone = "us-east-1", "us-east-1a"
    with mock_aws():
        ec2 = boto3.client("ec2", region_name=region)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/20", AvailabilityZone=zone)["Subnet"]
        igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
        for _ in range(tables):
            table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
            ec2.create_tags(
                Resources=[table], Tags=[{"Key": f"kubernetes.io/cluster/{DEMO_CLUSTER}", "Value": "owned"}]
            )
            # A route routectl does not own, to show it is left alone.
            ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
        reservation = ec2.run_instances(
            ImageId="ami-12c6146b", MinCount=nodes, MaxCount=nodes, SubnetId=subnet["SubnetId"]
        )
        ids = [i["InstanceId"] for i in reservation["Instances"]]
        # AWS's default is 50 routes per table; an administrator raises it (up to 1,000) for a cluster
        # this size, and routectl reads it from Service Quotas — which moto does not let us raise.
        quota = str(min(AWS_MAX_ROUTES_PER_TABLE, max(50, nodes + 10)))
        yield EmbeddedCloud(
            flags=("--region", region, "--vpc-id", vpc, "--route-table-quota", quota),
            provider_ids=tuple(f"aws:///{zone}/{i}" for i in ids),
        )


@contextlib.contextmanager
def gcp_cloud(nodes: int) -> Iterator[EmbeddedCloud]:
    from providers.emulators.gce import GceEmulator

    project, zone, network = "demo-project", "us-central1-a", "demo-net"
    with GceEmulator() as emulator:
        emulator.add_network(project, network)
        names = [f"node-{i:03d}" for i in range(nodes)]
        for name in names:
            emulator.add_instance(project, zone, name)
        yield EmbeddedCloud(
            flags=("--project", project, "--network", network, "--cloud-endpoint", emulator.endpoint),
            provider_ids=tuple(f"gce://{project}/{zone}/{n}" for n in names),
        )


@contextlib.contextmanager
def alibaba_cloud(nodes: int, tables: int = 2) -> Iterator[EmbeddedCloud]:
    from providers.emulators.alibaba import AlibabaVpcEmulator

    region, vpc = "cn-hangzhou", "vpc-demo"
    with AlibabaVpcEmulator(region=region) as emulator:
        for _ in range(tables):
            emulator.add_table(vpc)
        ids = [f"i-demo{i:08d}" for i in range(nodes)]
        emulator.add_instances(vpc, *ids)
        yield EmbeddedCloud(
            flags=("--region", region, "--vpc-id", vpc, "--cloud-endpoint", f"http://{emulator.endpoint}"),
            provider_ids=tuple(f"{region}.{i}" for i in ids),
        )


ROUTE_QUOTAS: dict[object, RouteQuota] = {
    aws_cloud: RouteQuota(AWS_MAX_ROUTES_PER_TABLE, per_family=True),
    gcp_cloud: RouteQuota(None),
    alibaba_cloud: RouteQuota(200),
}
"""Each embedded cloud's route quota per table, by factory (the GCE emulator sets none; Alibaba's is
its default): `routectl demo` refuses more nodes than fit before starting the cloud."""

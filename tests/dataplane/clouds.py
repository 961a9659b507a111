"""One emulated cloud per provider, set up through its public API, as the dataplane scenarios need it.

Each `DataplaneCloud` launches an instance per node and reports the private address the cloud gives it
(AWS: moto assigns one in the subnet; GCP: the emulator reports the `networkIP` it was created with;
Alibaba: the VPC API knows no instance addresses, so the test plans them inside the vSwitch CIDR it
created), hands routectl its provider flags, gives the router a view of the cloud's own state, and
deletes a route out of band, as an administrator would, through the cloud's API.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from providers.emulators.alibaba import AlibabaVpcEmulator
from providers.emulators.gce import GceEmulator
from tests.dataplane.router import AlibabaView, AwsView, CloudView, GceView, get_json
from tests.providers.aws.awsworld import REGION, ec2_at

IPv4 = ipaddress.IPv4Address
SUBNET = ipaddress.IPv4Network("10.0.0.0/24")
"""The nodes' subnet in every cloud (exists only inside the tier's namespaces)."""
_HTTP_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class Launched:
    provider_id: str
    address: IPv4
    """The private address the cloud reports for the instance."""


class DataplaneCloud(Protocol):
    @property
    def provider(self) -> str: ...

    @property
    def flags(self) -> tuple[str, ...]:
        """routectl's provider flags for this cloud."""
        ...

    @property
    def subnet(self) -> ipaddress.IPv4Network: ...

    def launch(self, node: str) -> Launched: ...

    def view(self) -> CloudView: ...

    def delete_route(self, destination: ipaddress.IPv4Network) -> None: ...


@dataclass(slots=True)
class AwsCloud:
    """A VPC in moto: the subnet, one route table tagged for the cluster and associated with the subnet."""

    ec2: Any
    cluster_name: str
    endpoint: str
    provider: str = "aws"
    subnet: ipaddress.IPv4Network = SUBNET
    vpc_id: str = ""
    subnet_id: str = ""
    table_id: str = ""

    def __post_init__(self) -> None:
        self.vpc_id = self.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        created = self.ec2.create_subnet(
            VpcId=self.vpc_id, CidrBlock=str(self.subnet), AvailabilityZone=f"{REGION}a"
        )
        self.subnet_id = created["Subnet"]["SubnetId"]
        owned = [{"Key": f"kubernetes.io/cluster/{self.cluster_name}", "Value": "owned"}]
        table = self.ec2.create_route_table(
            VpcId=self.vpc_id, TagSpecifications=[{"ResourceType": "route-table", "Tags": owned}]
        )
        self.table_id = table["RouteTable"]["RouteTableId"]
        self.ec2.associate_route_table(RouteTableId=self.table_id, SubnetId=self.subnet_id)

    @property
    def flags(self) -> tuple[str, ...]:
        return (
            "--provider=aws",
            f"--region={REGION}",
            f"--cloud-endpoint={self.endpoint}",
            f"--vpc-id={self.vpc_id}",
            "--route-table-quota=1000",  # moto answers Service Quotas with AWS's default (50)
        )

    def launch(self, node: str) -> Launched:
        (instance,) = self.ec2.run_instances(
            ImageId="ami-12345678", MinCount=1, MaxCount=1, SubnetId=self.subnet_id
        )["Instances"]
        return Launched(f"aws:///{REGION}a/{instance['InstanceId']}", IPv4(instance["PrivateIpAddress"]))

    def view(self) -> CloudView:
        return AwsView(self.ec2, self.subnet_id)

    def delete_route(self, destination: ipaddress.IPv4Network) -> None:
        self.ec2.delete_route(RouteTableId=self.table_id, DestinationCidrBlock=str(destination))


@dataclass(slots=True)
class GcpCloud:
    emulator: GceEmulator
    provider: str = "gcp"
    subnet: ipaddress.IPv4Network = SUBNET
    project: str = "dataplane-project"
    zone: str = "us-central1-a"
    network: str = "dataplane-net"
    network_url: str = ""
    _addresses: Iterator[IPv4] = field(default_factory=lambda: itertools.islice(SUBNET.hosts(), 1, None))

    def __post_init__(self) -> None:
        self.network_url = self.emulator.add_network(self.project, self.network)

    @property
    def flags(self) -> tuple[str, ...]:
        return (
            "--provider=gcp",
            f"--project={self.project}",
            f"--network={self.network}",
            f"--cloud-endpoint={self.emulator.endpoint}",
        )

    def launch(self, node: str) -> Launched:
        address = next(self._addresses)  # GCE hands out the subnetwork's addresses after its gateway
        self.emulator.add_instance(self.project, self.zone, node, network_ip=str(address))
        reported = get_json(
            f"{self.emulator.endpoint}/compute/v1/projects/{self.project}/zones/{self.zone}/instances/{node}"
        )
        return Launched(
            f"gce://{self.project}/{self.zone}/{node}", IPv4(reported["networkInterfaces"][0]["networkIP"])
        )

    def view(self) -> CloudView:
        return GceView(self.emulator.endpoint, self.project, self.network_url)

    def delete_route(self, destination: ipaddress.IPv4Network) -> None:
        routes = get_json(f"{self.emulator.endpoint}/compute/v1/projects/{self.project}/global/routes")
        (name,) = (r["name"] for r in routes.get("items", []) if r["destRange"] == str(destination))
        url = f"{self.emulator.endpoint}/compute/v1/projects/{self.project}/global/routes/{name}"
        with urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=_HTTP_TIMEOUT_S):
            pass


@dataclass(slots=True)
class AlibabaCloud:
    emulator: AlibabaVpcEmulator
    provider: str = "alibaba"
    subnet: ipaddress.IPv4Network = SUBNET
    vpc_id: str = "vpc-dataplane"
    table_id: str = ""
    addresses: dict[str, IPv4] = field(default_factory=dict)
    _planned: Iterator[IPv4] = field(default_factory=lambda: itertools.islice(SUBNET.hosts(), 1, None))
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.table_id = self.emulator.add_table(self.vpc_id, vswitch_cidrs=(str(self.subnet),))

    @property
    def flags(self) -> tuple[str, ...]:
        return (
            "--provider=alibaba",
            f"--region={self.emulator.region}",
            f"--vpc-id={self.vpc_id}",
            f"--cloud-endpoint=http://{self.emulator.endpoint}",
        )

    def launch(self, node: str) -> Launched:
        instance = f"i-dp{next(self._ids):08d}"
        self.emulator.add_instances(self.vpc_id, instance)
        self.addresses[instance] = next(self._planned)
        return Launched(f"{self.emulator.region}.{instance}", self.addresses[instance])

    def view(self) -> CloudView:
        return AlibabaView(self.emulator.endpoint, self.table_id, self.addresses)

    def delete_route(self, destination: ipaddress.IPv4Network) -> None:
        params = {
            "Action": "DescribeRouteEntryList",
            "RouteTableId": self.table_id,
            "DestinationCidrBlock": str(destination),
        }
        (entry,) = get_json(f"http://{self.emulator.endpoint}/?{urllib.parse.urlencode(params)}")[
            "RouteEntrys"
        ]["RouteEntry"]
        params = {
            "Action": "DeleteRouteEntries",
            "RouteEntries.1.RouteTableId": self.table_id,
            "RouteEntries.1.RouteEntryId": entry["RouteEntryId"],
        }
        deleted = get_json(f"http://{self.emulator.endpoint}/?{urllib.parse.urlencode(params)}")
        assert deleted["SuccessCount"] == 1, deleted


@contextlib.contextmanager
def cloud_for(provider: str, cluster_name: str, moto_endpoint: str) -> Iterator[DataplaneCloud]:
    """The provider's cloud, started (emulators) or set up (a fresh VPC in the session's moto)."""
    if provider == "aws":
        yield AwsCloud(ec2_at(moto_endpoint), cluster_name, moto_endpoint)
    elif provider == "gcp":
        with GceEmulator() as gce:
            yield GcpCloud(gce)
    elif provider == "alibaba":
        with AlibabaVpcEmulator(region="cn-hangzhou") as alibaba:
            yield AlibabaCloud(alibaba)
    else:
        raise ValueError(f"unknown provider {provider!r}")

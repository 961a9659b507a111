"""Builders for a small EC2 world (in moto) and botocore hooks that inject faults or record calls.

Every hook is registered on one client's event system, so it sees exactly that client's calls: the
adapter's (`provider._ec2`) or the test's own (`World.ec2`), never both.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler
from moto.server import ThreadedMotoServer

from providers import Route, Target
from providers.aws import AwsProvider
from tests.providers.configured import configured

REGION = "us-east-1"
CLUSTER = "kube-a"
CLUSTER_CIDR = ipaddress.IPv4Network("10.244.0.0/16")
OWNED_TAG = {f"kubernetes.io/cluster/{CLUSTER}": "owned"}
IAM_PREFIX = {"ec2": "ec2", "service-quotas": "servicequotas"}
"""botocore's hyphenated service id -> the IAM action prefix."""


def use_dummy_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials through the default chain's first link (env), never a real profile."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)


@dataclass(slots=True)
class World:
    """One VPC (IPv4 + an Amazon-provided IPv6 /56), one subnet, and whatever a test adds."""

    ec2: Any
    vpc_id: str
    ipv6_block: ipaddress.IPv6Network
    subnet_id: str

    def table(self, tags: dict[str, str] | None = None, vpc_id: str = "") -> str:
        pairs = [{"Key": k, "Value": v} for k, v in (tags or {}).items()]
        spec = [{"ResourceType": "route-table", "Tags": pairs}] if pairs else []
        table = self.ec2.create_route_table(VpcId=vpc_id or self.vpc_id, TagSpecifications=spec)
        return str(table["RouteTable"]["RouteTableId"])

    def instances(self, count: int) -> list[str]:
        # Any image id will do for moto; listing its catalogue of real AMIs costs a second per test.
        started = self.ec2.run_instances(
            ImageId="ami-12345678", MinCount=count, MaxCount=count, SubnetId=self.subnet_id
        )
        return [i["InstanceId"] for i in started["Instances"]]

    def terminate(self, instance: str) -> None:
        self.ec2.terminate_instances(InstanceIds=[instance])

    @property
    def pod_range_v6(self) -> ipaddress.IPv6Network:
        """The upper half of the VPC's /56, for IPv6 pod CIDRs (the lower half is left to subnets)."""
        return list(self.ipv6_block.subnets(new_prefix=57))[1]

    def pod_cidr_v6(self, index: int) -> ipaddress.IPv6Network:
        """The index-th /64 of `pod_range_v6`."""
        return ipaddress.IPv6Network((int(self.pod_range_v6.network_address) + index * 2**64, 64))

    def raw_routes(self, table: str) -> dict[str, dict[str, Any]]:
        """The table as EC2 reports it, keyed by destination."""
        routes = self.ec2.describe_route_tables(RouteTableIds=[table])["RouteTables"][0]["Routes"]
        return {r.get("DestinationCidrBlock") or r.get("DestinationIpv6CidrBlock"): r for r in routes}

    def add_route(self, table: str, destination: str, **target: str) -> None:
        key = "DestinationIpv6CidrBlock" if ":" in destination else "DestinationCidrBlock"
        self.ec2.create_route(RouteTableId=table, **{key: destination}, **target)


def ec2_at(endpoint: str) -> Any:
    """An EC2 client for moto's server at `endpoint`, with dummy credentials of its own."""
    return boto3.client(
        "ec2",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's EC2 and Service Quotas over real HTTP on 127.0.0.1 (a run-time port): its endpoint URL."""
    with pytest.MonkeyPatch.context() as patch:
        # Instances are launched from a made-up image id; moto's real-AMI catalogue only costs time.
        patch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        # Without TCP_NODELAY every keep-alive response waits ~40 ms for the client's delayed ACK.
        patch.setattr(MotoRequestHandler, "disable_nagle_algorithm", True, raising=False)
        # moto's backends are not thread-safe (a describe iterating a table's routes while a create adds
        # one fails with "dictionary changed size"); EC2 itself is consistent, so requests take turns.
        patch.setattr(
            DomainDispatcherApplication, "__call__", _one_at_a_time(DomainDispatcherApplication.__call__)
        )
        # Its per-request access log would drown every failure report.
        access_log = logging.getLogger("werkzeug")
        level = access_log.level
        access_log.setLevel(logging.WARNING)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()
            access_log.setLevel(level)


def _one_at_a_time(app: Callable[..., Any]) -> Callable[..., Any]:
    lock = threading.Lock()

    def serve(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return app(*args, **kwargs)

    return serve


def a_world() -> World:
    """Call inside `mock_aws` (or with an endpoint-bound client)."""
    return world_on(boto3.client("ec2", region_name=REGION))


def world_on(ec2: Any) -> World:
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16", AmazonProvidedIpv6CidrBlock=True)["Vpc"]
    block = ipaddress.IPv6Network(vpc["Ipv6CidrBlockAssociationSet"][0]["Ipv6CidrBlock"])
    subnet = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.0.0/20")["Subnet"]
    return World(ec2=ec2, vpc_id=vpc["VpcId"], ipv6_block=block, subnet_id=subnet["SubnetId"])


def a_provider(**settings: Any) -> AwsProvider:
    """The adapter as the controller gets it: through the registry's `aws` spec."""
    provider = configured("aws", CLUSTER, **{"region": REGION, **settings}).build()
    assert isinstance(provider, AwsProvider)
    return provider


def a_route(destination: str | ipaddress.IPv4Network | ipaddress.IPv6Network, instance: str) -> Route:
    """A desired route, as the planner builds it for a node."""
    return Route(ipaddress.ip_network(destination), Target(instance), owned=True, node="node-1")


def error_response(code: str, status: int = 400, message: str = "injected") -> tuple[AWSResponse, Any]:
    """What a `before-call` handler returns to make botocore raise ClientError(code)."""
    parsed = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return AWSResponse("https://ec2.amazonaws.com/", status, HTTPHeaders(), None), parsed


def fail(
    client: Any, operation: str, code: str, status: int = 400, *, when: Callable[[Any], bool] | None = None
) -> Counter[str]:
    """Make `operation` answer `code` (for requests matching `when`); returns a count of injections."""
    injected: Counter[str] = Counter()

    def handler(params: Any, **_: Any) -> tuple[AWSResponse, Any] | None:
        if when is not None and not when(params["body"]):
            return None
        injected[code] += 1
        return error_response(code, status)

    client.meta.events.register_first(f"before-call.ec2.{operation}", handler)
    return injected


def refuse_duplicate_ipv6_creates(provider: AwsProvider, world: World, *, ipv4: bool = False) -> None:
    """AWS answers RouteAlreadyExists for an IPv6 destination already in the table; moto overwrites
    the route silently, which would hide the adapter's whole already-exists path for IPv6. With
    `ipv4`, IPv4 destinations too (moto overwrites even a table's local route)."""

    def handler(params: Any, **_: Any) -> Any:
        body = params["body"]
        destination = body.get("DestinationIpv6CidrBlock") or (ipv4 and body.get("DestinationCidrBlock"))
        if destination and destination in world.raw_routes(body["RouteTableId"]):
            return error_response("RouteAlreadyExists")
        return None

    provider._ec2.meta.events.register_first("before-call.ec2.CreateRoute", handler)


@dataclass(slots=True)
class Calls:
    """Every API call a client made, as IAM action names (`ec2:CreateRoute`)."""

    actions: Counter[str] = field(default_factory=Counter)

    def record(self, event_name: str, **_: Any) -> None:
        service, operation = event_name.split(".")[1:]
        self.actions[f"{IAM_PREFIX.get(service, service)}:{operation}"] += 1

    def watch(self, client: Any) -> None:
        client.meta.events.register("before-call", self.record)


@contextmanager
def hooking_new_clients(monkeypatch: pytest.MonkeyPatch, hook: Callable[[Any], None]) -> Iterator[None]:
    """Apply `hook` to every client created inside the block: the adapter calls Service Quotas while
    it is built, before a test could reach its clients."""
    original = boto3.session.Session.client

    def client(self: boto3.session.Session, *args: Any, **kwargs: Any) -> Any:
        made = original(self, *args, **kwargs)
        hook(made)
        return made

    with monkeypatch.context() as patch:
        patch.setattr(boto3.session.Session, "client", client)
        yield


@contextmanager
def recording_clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[Calls]:
    """Record every call of the clients created inside the block."""
    calls = Calls()
    with hooking_new_clients(monkeypatch, calls.watch):
        yield calls


ROUTE_WRITES = ("create_route", "replace_route", "delete_route")


def honour_dry_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make moto answer DryRun on route writes as EC2 does: `DryRunOperation` once the caller is
    authorized, and no change. moto 5 honours DryRun on ModifyInstanceAttribute but performs
    CreateRoute, ReplaceRoute and DeleteRoute even with DryRun=True; its IAM check (when enforced)
    runs before the action, so a denied caller still gets AccessDenied first, as on EC2."""
    from moto.ec2.responses.route_tables import RouteTables

    for action in ROUTE_WRITES:
        original = getattr(RouteTables, action)

        def dry(self: Any, _original: Callable[[Any], Any] = original) -> Any:
            self.error_on_dryrun()
            return _original(self)

        monkeypatch.setattr(RouteTables, action, dry)


def enforce_iam(monkeypatch: pytest.MonkeyPatch, actions: list[str]) -> dict[str, str]:
    """Create an IAM user allowed exactly `actions` and turn moto's IAM enforcement on (every later
    request is authorized): the user's credentials, for the environment."""
    from moto import settings

    iam = boto3.client("iam", region_name=REGION)
    iam.create_user(UserName="routectl")
    statement = {"Effect": "Allow", "Action": actions, "Resource": "*"}
    document = {"Version": "2012-10-17", "Statement": [statement]}
    iam.put_user_policy(UserName="routectl", PolicyName="routectl", PolicyDocument=json.dumps(document))
    key = iam.create_access_key(UserName="routectl")["AccessKey"]
    monkeypatch.setattr(settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
    return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}

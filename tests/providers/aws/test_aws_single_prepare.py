"""The route reconciler on moto's EC2: a dual-stack cluster with two managed tables writes four routes
to each instance at once, and still disables each instance's source/destination check with one
ModifyInstanceAttribute.

moto answers in microseconds; EC2 takes tens of milliseconds. The check is read first, so with a real
cloud's latency every concurrent route to an instance would read it still on and write it: the test
gives the read that latency, so the routes overlap as they would on AWS."""

from __future__ import annotations

import ipaddress
import time
from typing import Any

import pytest
from awsworld import OWNED_TAG, World, a_provider, recording_clients

from routectl.controller import route_reconciler
from routectl.demo.memcluster import MemoryCluster
from routectl.fence import Unfenced
from routectl.metrics import Metrics

NODES = 2
READ_LATENCY_S = 0.05


def slow_reads(client: Any) -> None:
    client.meta.events.register("before-call.ec2.DescribeInstances", lambda **_: time.sleep(READ_LATENCY_S))


def test_routes_to_one_instance_modify_it_once_with_two_tables_and_two_families(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    tables = [world.table(OWNED_TAG), world.table(OWNED_TAG)]
    instances = world.instances(NODES)
    cluster_v6 = list(world.ipv6_block.subnets(new_prefix=57))[1]  # where `pod_cidr_v6` carves blocks
    cluster = MemoryCluster()
    for i, instance in enumerate(instances):
        cluster.add_node(
            f"node-{i}",
            provider_id=f"aws:///us-east-1a/{instance}",
            pod_cidrs=[f"10.244.{i}.0/24", str(world.pod_cidr_v6(i))],
        )
    with recording_clients(monkeypatch) as calls:
        provider = a_provider()
    slow_reads(provider._ec2)
    reconciler = route_reconciler(
        cluster,
        provider,
        Unfenced(),
        Metrics(),
        cluster_cidrs=[ipaddress.ip_network("10.244.0.0/16"), cluster_v6],
        nodes=lambda: list(cluster.nodes().values()),
        exclude_label=("routectl.io/exclude", "true"),
        concurrency=8,
    )
    try:
        assert reconciler.resync() is True
    finally:
        reconciler.close()
        provider.close()

    assert calls.actions["ec2:CreateRoute"] == NODES * len(tables) * 2
    assert calls.actions["ec2:ModifyInstanceAttribute"] == NODES
    for instance in instances:
        attribute = world.ec2.describe_instance_attribute(InstanceId=instance, Attribute="sourceDestCheck")
        assert attribute["SourceDestCheck"]["Value"] is False

"""docs/alibaba.md's RAM policy grants exactly the VPC actions the adapter calls."""

from __future__ import annotations

import dataclasses
import json
import pathlib
import re

from providers.alibaba import AlibabaProvider
from providers.emulators.alibaba import AlibabaVpcEmulator

from .conftest import a_route, instances_for

DOC = pathlib.Path(__file__).resolve().parents[3] / "docs" / "alibaba.md"


def documented_actions() -> set[str]:
    block = re.search(r"```json\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert block is not None, "docs/alibaba.md has no JSON policy block"
    policy = json.loads(block.group(1))
    return {action for statement in policy["Statement"] for action in statement["Action"]}


def test_ram_policy_lists_exactly_the_actions_the_adapter_calls(
    emulator: AlibabaVpcEmulator, provider: AlibabaProvider, table: str
) -> None:
    routes = [a_route(i) for i in range(3)]
    instances_for(emulator, [*routes, a_route(1, instance="i-new")])
    provider.tables()
    provider.create_routes(table, routes)
    provider.replace_routes(table, [a_route(1, instance="i-new")])
    provider.delete_routes(table, provider.list_routes(table))
    emulator.add_route(table, "10.0.9.0/24", "i-000001")  # an unmarked entry, adopted in place
    [adoptable] = [r for r in provider.list_routes(table) if r.adoptable]
    provider.adopt_routes(
        table, [dataclasses.replace(a_route(9, instance="i-000001"), cloud_id=adoptable.cloud_id)]
    )
    provider.prepare_target(provider.target_for("cn-hangzhou.i-000001"))

    service = {"DescribeInstances": "ecs"}  # the one ECS read; every other action is the VPC API's
    assert {f"{service.get(a, 'vpc')}:{a}" for a in emulator.calls} == documented_actions()

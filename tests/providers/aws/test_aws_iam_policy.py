"""The minimal IAM policy in docs/aws.md covers every call the adapter makes, and grants no more.

The calls are gathered from a representative run (discovery, listing with a dead instance, create,
replace, delete, conflicts and already-exists paths, source/destination check) with a botocore
`before-call` handler on every client the adapter creates.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from awsworld import OWNED_TAG, Calls, World, a_provider, a_route, recording_clients

from providers import Target
from providers.aws import ACTIONS

DOC = Path(__file__).resolve().parents[3] / "docs" / "aws.md"
WRITES = {"ec2:CreateRoute", "ec2:ReplaceRoute", "ec2:DeleteRoute", "ec2:ModifyInstanceAttribute"}


def policy() -> dict[str, Any]:
    blocks = re.findall(r"```json\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    documents = [json.loads(b) for b in blocks if '"Statement"' in b]
    assert len(documents) == 1, "docs/aws.md must hold exactly one IAM policy as a ```json block"
    document: dict[str, Any] = documents[0]
    return document


def statements() -> list[dict[str, Any]]:
    return [s for s in policy()["Statement"] if s["Effect"] == "Allow"]


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def granted() -> set[str]:
    return {a for s in statements() for a in as_list(s["Action"])}


def representative_run(world: World, monkeypatch: pytest.MonkeyPatch) -> Calls:
    table = world.table(OWNED_TAG)
    old, new, gone = world.instances(3)
    world.add_route(table, "10.244.9.0/24", GatewayId="local")  # moto lets a test plant a foreign route
    with recording_clients(monkeypatch) as calls:
        provider = a_provider()
    provider.tables()
    provider.create_routes(table, [a_route("10.244.1.0/24", old), a_route("10.244.2.0/24", gone)])
    world.terminate(gone)
    provider.list_routes(table)
    provider.create_routes(table, [a_route("10.244.1.0/24", new), a_route("10.244.9.0/24", new)])
    provider.replace_routes(table, [a_route("10.244.2.0/24", new)])
    provider.delete_routes(table, [a_route("10.244.2.0/24", new), a_route("10.244.3.0/24", new)])
    provider.prepare_target(Target(new))
    return calls


def test_policy_grants_every_action_the_adapter_calls(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    called = set(representative_run(world, monkeypatch).actions)

    assert called - granted() == set()
    assert called - set(ACTIONS) == set(), "providers.aws.ACTIONS must list every action called"


def test_policy_grants_exactly_the_adapters_declared_actions() -> None:
    assert granted() == set(ACTIONS)


def test_representative_run_exercises_every_declared_action(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Otherwise the first test could pass while an action the adapter may call goes unchecked."""
    assert set(ACTIONS) - set(representative_run(world, monkeypatch).actions) == set()


def test_policy_grants_no_wildcard_action_and_denies_nothing_implicitly() -> None:
    assert all("*" not in a for a in granted())
    assert all(set(s) <= {"Sid", "Effect", "Action", "Resource", "Condition"} for s in statements())


def test_writes_are_scoped_to_tagged_resources_never_to_everything() -> None:
    for statement in statements():
        writes = set(as_list(statement["Action"])) & WRITES
        if not writes:
            continue
        assert "*" not in as_list(statement["Resource"]), statement["Sid"]
        keys = {k for condition in statement["Condition"].values() for k in condition}
        assert "aws:ResourceTag/kubernetes.io/cluster/CLUSTER_NAME" in keys, statement["Sid"]


def test_route_writes_are_granted_on_route_tables() -> None:
    on_tables = {
        a
        for s in statements()
        if any(":route-table/" in r for r in as_list(s["Resource"]))
        for a in as_list(s["Action"])
    }

    assert on_tables == {"ec2:CreateRoute", "ec2:ReplaceRoute", "ec2:DeleteRoute"}

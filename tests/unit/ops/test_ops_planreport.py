"""`routectl plan`: the plan from the route view and the planner alone — nothing written, nothing rewired,
no executor and no thread pool."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import io
from collections.abc import Iterator

import pytest

from routectl.demo.harness import embedded_config
from routectl.engine.executor import Executor
from routectl.engine.planner import plan
from routectl.ops.planreport import as_json, compute, render_table
from tests.unit.builders import CLUSTER, TABLE, World, a_node, a_route

CONFIG = embedded_config("aws", ["10.244.0.0/16"], cluster_name="sim", extra=("--region=sim",))


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    yield w
    w.close()


def test_plan_is_read_only(world: World) -> None:
    world.add_nodes(3)
    assert len(compute(CONFIG, world.cluster, world.sim).create) == 3
    assert world.sim.routes(TABLE) == {}
    assert world.sim.calls["list_routes"] == 1
    assert world.cluster.calls.get("set_network_unavailable", 0) == 0


def test_plan_builds_no_executor_no_thread_pool_and_rewires_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.add_nodes(3)
    built: list[str] = []

    def recording(name: str, original: object) -> object:
        def record(*args: object, **kwargs: object) -> object:
            built.append(name)
            return original(*args, **kwargs)  # type: ignore[operator]

        return record

    pool_init = concurrent.futures.ThreadPoolExecutor.__init__
    monkeypatch.setattr(concurrent.futures.ThreadPoolExecutor, "__init__", recording("pool", pool_init))
    monkeypatch.setattr(Executor, "__init__", recording("executor", Executor.__init__))
    monkeypatch.setattr(world.sim, "observe", recording("observe", world.sim.observe))
    monkeypatch.setattr(world.sim, "guard_writes", recording("guard_writes", world.sim.guard_writes))

    the_plan = compute(CONFIG, world.cluster, world.sim)

    assert len(the_plan.create) == 3
    assert built == []


def test_a_duplicate_podcidr_has_its_own_section_in_table_and_json(world: World) -> None:
    world.add_node(1)
    world.add_node(2, pod_cidrs=["10.244.1.0/24"])  # created later, claims n001's block

    the_plan = compute(CONFIG, world.cluster, world.sim)
    out = io.StringIO()
    render_table(the_plan, out)

    [rejected] = as_json(the_plan)["rejected_pod_cidrs"]  # type: ignore[misc]
    assert rejected["node"] == "n002"
    assert rejected["rule"] == "duplicate"
    assert rejected["other_node"] == "n001"
    assert [(c.node, str(c.destination)) for c in the_plan.create] == [("n001", "10.244.1.0/24")]
    assert not the_plan.converged
    text = out.getvalue()
    assert "PodCIDRs not owned by their node" in text
    assert "n002  10.244.1.0/24  duplicate  n001" in text
    assert "1 podCIDRs rejected" in text


def test_upsert_only_plan_shows_what_sync_would_delete(world: World) -> None:
    world.add_node(1)
    world.sim.add_route(TABLE, "10.244.9.0/24", "i-gone", owner=world.sim.cluster_name, node="gone")
    upsert = embedded_config(
        "aws", ["10.244.0.0/16"], cluster_name="sim", extra=("--region=sim", "--route-policy=upsert-only")
    )

    the_plan = compute(upsert, world.cluster, world.sim)
    out = io.StringIO()
    render_table(the_plan, out)

    assert the_plan.delete == ()
    assert [c["destination"] for c in as_json(the_plan)["withheld_deletes"]] == ["10.244.9.0/24"]  # type: ignore[attr-defined]
    assert "WITHHELD" in out.getvalue()
    assert "1 deletes withheld" in out.getvalue()
    assert [str(c.destination) for c in compute(CONFIG, world.cluster, world.sim).delete] == ["10.244.9.0/24"]


def test_adoptable_routes_are_listed_apart_from_conflicts_naming_the_flag() -> None:
    legacy = dataclasses.replace(a_route("10.244.1.0/24", "i-a", owned=False), adoptable=True, cloud_id="k-1")
    foreign = a_route("10.244.2.0/24", "i-x", owned=False)
    nodes = [a_node("a", "10.244.1.0/24"), a_node("b", "10.244.2.0/24")]
    the_plan = plan(nodes, {TABLE: [legacy, foreign]}, CLUSTER)
    out = io.StringIO()
    render_table(the_plan, out)

    report = as_json(the_plan)
    assert [c["destination"] for c in report["adoptable"]] == ["10.244.1.0/24"]  # type: ignore[attr-defined]
    assert [c["destination"] for c in report["conflicts"]] == ["10.244.2.0/24"]  # type: ignore[attr-defined]
    assert "ADOPTABLE  rtb-main  10.244.1.0/24  a     k-1 via i-a: --adopt-routes adopts it" in out.getvalue()

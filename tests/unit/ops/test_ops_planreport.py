"""`routectl plan`: the plan from the route view and the planner alone — nothing written, nothing rewired,
no executor and no thread pool."""

from __future__ import annotations

import concurrent.futures
import io
from collections.abc import Iterator

import pytest

from routectl.demo.harness import embedded_config
from routectl.engine.executor import Executor
from routectl.ops.planreport import as_json, compute, render_table
from tests.unit.builders import TABLE, World

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

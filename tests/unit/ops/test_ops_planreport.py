"""`routectl plan`: the plan from the route view and the planner alone — nothing written, nothing rewired,
no executor and no thread pool."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator

import pytest

from routectl.demo.harness import embedded_config
from routectl.engine.executor import Executor
from routectl.ops.planreport import compute
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

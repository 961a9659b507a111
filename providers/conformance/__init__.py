"""The conformance kit: `RouteProvider`'s behavioural contract as reusable pytest tests.

An adapter's tests subclass the contract and supply a world (docs/providers.md, "Testing an adapter
with the conformance kit"):

    from providers.conformance import ConformanceWorld, RouteProviderContract, Supports

    @pytest.fixture
    def conformance_world() -> Iterator[ConformanceWorld]:
        ...  # a fresh provider bound to an emulated cloud, plus the hooks of ConformanceWorld

    class TestMyCloudConformance(RouteProviderContract):
        pass

This package imports pytest and is meant to be imported under pytest only; nothing else in `providers`
imports it, so the controller never needs pytest.
"""

from __future__ import annotations

from .contract import RouteProviderContract
from .world import CLUSTER_CIDRS, ConformanceWorld, Probe, Supports

__all__ = ["CLUSTER_CIDRS", "ConformanceWorld", "Probe", "RouteProviderContract", "Supports"]

"""The whole controller (MemoryCluster, leader election, IPAM, planner, executor) on the VPC emulator."""

from __future__ import annotations

from providers.emulators.alibaba import AlibabaVpcEmulator
from routectl.demo.harness import embedded_config, run_until_converged
from routectl.demo.memcluster import MemoryCluster

from .conftest import REGION, VPC, Build


def test_full_controller_converges_100_nodes_across_two_route_tables(
    emulator: AlibabaVpcEmulator, make_provider: Build
) -> None:
    emulator.add_table(VPC, "vtb-a")
    emulator.add_table(VPC, "vtb-b")
    cluster = MemoryCluster()
    for i in range(100):
        emulator.add_instances(VPC, f"i-node{i:03d}")
        cluster.add_node(f"node-{i:03d}", provider_id=f"{REGION}.i-node{i:03d}")
    cfg = embedded_config(
        "alibaba", ["10.64.0.0/16"], cluster_name="demo", extra=[f"--region={REGION}", f"--vpc-id={VPC}"]
    )

    outcome = run_until_converged(cluster, make_provider(cluster_name="demo"), cfg, timeout_s=50)

    assert outcome.violations == ()
    assert outcome.converged
    print(f"alibaba: 100 nodes x 2 tables converged in {outcome.elapsed_s:.2f}s, calls {emulator.calls}")

"""The whole controller (IPAM, leader election, planner, executor) converges 100 nodes on the emulator."""

from __future__ import annotations

from gcp_helpers import CLUSTER, NETWORK, PROJECT, ZONE

from providers.emulators.gce import GceEmulator
from providers.gcp import build
from routectl.demo.harness import embedded_config, run_until_converged
from routectl.demo.memcluster import MemoryCluster

NODES = 100


def test_full_controller_converges_100_nodes_against_the_emulator(emulator: GceEmulator) -> None:
    emulator.operation_delay = 0.05
    cluster = MemoryCluster()
    for i in range(NODES):
        emulator.add_instance(PROJECT, ZONE, f"node-{i}")
        cluster.add_node(f"node-{i}", provider_id=f"gce://{PROJECT}/{ZONE}/node-{i}")
    config = embedded_config(
        "gcp",
        ["10.64.0.0/16"],
        cluster_name=CLUSTER,
        extra=[f"--project={PROJECT}", f"--network={NETWORK}", f"--cloud-endpoint={emulator.endpoint}"],
    )
    assert config.cloud is not None
    provider = build(config.cloud.config)

    outcome = run_until_converged(cluster, provider, config, timeout_s=120)
    provider.close()

    print(f"gcp: {NODES} nodes converged in {outcome.elapsed_s:.2f}s; calls {dict(emulator.calls())}")
    assert outcome.violations == ()
    assert outcome.converged

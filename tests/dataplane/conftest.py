"""Fixtures of the dataplane tier: per provider, a small cluster whose pods really exchange packets.

The tier needs root (network namespaces), a working `ip netns`, flanneld and the CNI plugins
(`make dataplane-bins`), and the e2e tier's kube-apiserver, etcd and helm. Without them it fails under
CI=true and otherwise skips with a notice repeated at the end of the run. Leftover namespaces of a
killed run are removed first; the session ends by checking that none of its own are left.
The figures (reachability matrix, join→first-ping) are printed at the end and, when every provider ran,
written to bench/results/dataplane.json.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import shutil
import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client

from tests.chart.chartlib import Manifest
from tests.dataplane import figures, netns
from tests.dataplane.clouds import cloud_for
from tests.dataplane.flannel import Flannel
from tests.dataplane.router import RouterSync
from tests.dataplane.topology import Fabric
from tests.dataplane.world import BASELINE, CLUSTER_CIDR, LEASE, NODE_MASK, PROVIDERS, RESYNC, World
from tests.support.apiserver import ControlPlane
from tests.support.binaries import (
    Binaries,
    BinariesMissing,
    DataplaneBinaries,
    cache_dir_from_env,
    locate_dataplane_binaries,
)
from tests.support.cluster import Installed, Kube, install_chart_rbac, start_leader
from tests.support.fixtures import (
    admin_api,
    chart_rbac,
    control_plane,
    e2e_binaries,
    missing_e2e_binaries,
    moto_endpoint,
    report_unavailable,
    unavailable,
)
from tests.support.routectl_proc import Setup, denials_checked

# The shared session fixtures, offered to this tier's tests.
__all__ = ["admin_api", "chart_rbac", "control_plane", "e2e_binaries", "moto_endpoint"]

_BLOCKERS = pytest.StashKey[list[str]]()
_CLEARED = pytest.StashKey[list[str]]()
_FIGURES = pytest.StashKey[figures.Figures]()


def host_blockers() -> list[str]:
    """Why this machine cannot run the tier (empty: it can)."""
    reasons: list[str] = []
    if os.geteuid() != 0:
        reasons.append("not root: network namespaces and veth pairs need CAP_SYS_ADMIN and CAP_NET_ADMIN")
    elif shutil.which("ip") is None:
        reasons.append("no `ip` command (iproute2)")
    elif shutil.which("nft") is None:
        reasons.append(
            "no `nft` (nftables), which flanneld runs in each node (`make dataplane-bins` installs it)"
        )
    else:
        probe = f"{netns.run_prefix()}-probe"
        try:
            netns.create(probe)
            netns.delete(probe)
        except (netns.NetnsError, OSError) as err:
            reasons.append(f"`ip netns` does not work here: {err}")
    try:
        locate_dataplane_binaries(cache_dir_from_env())
    except BinariesMissing as missing:
        reasons.append(str(missing))
    return reasons


@pytest.fixture(scope="session")
def tier() -> str:
    return "dataplane"


@pytest.fixture(scope="session")
def dataplane_binaries(request: pytest.FixtureRequest, tier: str) -> Iterator[DataplaneBinaries]:
    """The binaries, once the machine is known to run the tier; leftovers cleared first, none left after."""
    blockers = host_blockers()
    request.config.stash[_BLOCKERS] = blockers
    if blockers:
        unavailable(tier, "; ".join(blockers))
    request.config.stash[_CLEARED] = netns.clear_leftovers()
    yield locate_dataplane_binaries(cache_dir_from_env())
    left = netns.owned_by(os.getpid())
    for name in left:
        netns.delete(name)
    assert not left, f"namespaces left behind by the tier (now removed): {left}"


@pytest.fixture(scope="session")
def installed(
    control_plane: ControlPlane, chart_rbac: list[Manifest], tmp_path_factory: pytest.TempPathFactory
) -> Installed:
    return install_chart_rbac(control_plane, chart_rbac, tmp_path_factory.mktemp("sa"))


@pytest.fixture(scope="session")
def flannel(control_plane: ControlPlane, dataplane_binaries: DataplaneBinaries) -> Flannel:
    return Flannel.install(control_plane, dataplane_binaries, CLUSTER_CIDR)


@pytest.fixture(scope="session")
def measured(
    request: pytest.FixtureRequest, e2e_binaries: Binaries, dataplane_binaries: DataplaneBinaries
) -> Iterator[figures.Figures]:
    found = figures.Figures(
        started=datetime.datetime.now(datetime.UTC),
        versions={
            "flannel": dataplane_binaries.flannel_version,
            "cni_plugins": dataplane_binaries.cni_plugins_version,
            "kubernetes": e2e_binaries.kubernetes_version,
        },
    )
    request.config.stash[_FIGURES] = found
    yield found
    if found.complete(PROVIDERS):
        found.write()


@pytest.fixture(scope="module", params=PROVIDERS)
def world(
    request: pytest.FixtureRequest,
    dataplane_binaries: DataplaneBinaries,
    admin_api: client.ApiClient,
    installed: Installed,
    flannel: Flannel,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[World]:
    """One provider's cluster: routectl leading, nodes n1-n3 up with two pods each (not yet converged)."""
    provider: str = request.param
    moto = str(request.getfixturevalue("moto_endpoint")) if provider == "aws" else ""
    cluster_name = f"dp-{provider}-{uuid.uuid4().hex[:6]}"
    workdir = tmp_path_factory.mktemp(f"dataplane-{provider}")
    (workdir / "routectl").mkdir()
    kube = Kube(admin_api, installed)
    kube.clean()
    with contextlib.ExitStack() as stack:
        cloud = stack.enter_context(cloud_for(provider, cluster_name, moto))
        fabric = stack.enter_context(Fabric(netns.run_prefix(), provider, cloud.subnet))
        sync = RouterSync(fabric, cloud.view())
        stack.callback(sync.stop)
        sync.start()
        runner = stack.enter_context(denials_checked(workdir / "routectl"))
        setup = Setup(
            kubeconfig=installed.kubeconfig,
            lease_namespace=installed.namespace,
            lease_name=installed.lease_name,
            cloud=cloud.flags,
            cluster_name=cluster_name,
            cluster_cidr=CLUSTER_CIDR,
            node_mask=NODE_MASK,
            timings=LEASE,
            resync=RESYNC,
        )
        world = World(provider, cloud, fabric, sync, flannel, kube, runner, setup, workdir)
        stack.callback(world.close)
        stack.callback(kube.clean)  # Nodes go first, while routectl still runs
        world.controllers.append(start_leader(kube, runner, setup))
        nodes = [world.register(name) for name in BASELINE]
        for node in nodes:
            world.attach_pods(node)
        yield world


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    cleared = config.stash.get(_CLEARED, [])
    if cleared:
        terminalreporter.write_line(f"dataplane: removed leftovers of a killed run: {', '.join(cleared)}")
    found = config.stash.get(_FIGURES, None)
    if found is not None:
        for line in found.report():
            terminalreporter.write_line(line)
    blockers = config.stash.get(_BLOCKERS, None)
    if blockers is None:  # the tier's tests did not run: say why they could not, if they could not
        return
    report_unavailable(terminalreporter, "dataplane", [*blockers, *missing_e2e_binaries()])

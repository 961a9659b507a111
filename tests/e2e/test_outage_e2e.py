"""An API outage end to end: kube-apiserver stopped for 60 s and started again (etcd and its data kept),
under a leading `routectl run` restarted the way a Deployment restarts its pod, on a control plane of
this module's own (the shared one stays up for the other scenarios).

What docs/operations.md says of a leader that cannot renew, asserted as written: its fence closes, it
stops its workers, tries to release the lease (which fails: the API is gone) and exits non-zero; the pod
is restarted and comes back as a standby. After the API returns, the controller converges again: no
duplicate podCIDR, no node without its routes, no route left for the node deleted just before the
outage. The time from the API's return to convergence is reported in bench/results/outages.json.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.chart.chartlib import Manifest
from tests.e2e.test_controller_e2e import SHORT_LEASE, Cloud, add_nodes, new_cloud, routed, setup_for
from tests.support.apiserver import ControlPlane
from tests.support.binaries import Binaries
from tests.support.cluster import Installed, Kube, cleaned, install_chart_rbac, leading, start_leader
from tests.support.figures import record
from tests.support.routectl_proc import (
    LogRecord,
    Routectl,
    RoutectlRunner,
    Setup,
    denials_checked,
    eventually,
    logged_at,
)

OUTAGE_S = 60.0
RESTART_DELAY_S = 1.0
"""How long the stand-in kubelet waits before it starts the next pod (the kubelet's own first backoff is
10 s; the scenario is about what routectl does, not about waiting)."""
MAX_PODS = 20
CONVERGE_TIMEOUT_S = 120.0


class Deployment:
    """One replica kept running: whenever the pod's process has exited, a new one starts (a new pod
    name and so a new Lease identity, as a replacement pod has)."""

    def __init__(self, runner: RoutectlRunner, setup: Setup, first: Routectl) -> None:
        self._runner, self._setup = runner, setup
        self.pods = [first]
        self._exited_at: float | None = None

    @property
    def current(self) -> Routectl:
        return self.pods[-1]

    def keep_running(self) -> None:
        if self.current.running():
            return
        now = time.monotonic()
        self._exited_at = self._exited_at or now
        if now - self._exited_at < RESTART_DELAY_S:
            return
        assert len(self.pods) < MAX_PODS, f"{MAX_PODS} pods: routectl keeps exiting"
        self.pods.append(self._runner.start(f"routectl-{len(self.pods)}", self._setup))
        self._exited_at = None

    def wait(self, seconds: float) -> None:
        """Let `seconds` pass, restarting the pod whenever it has exited."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.keep_running()
            time.sleep(0.2)


@pytest.fixture(scope="module")
def plane(e2e_binaries: Binaries) -> Iterator[ControlPlane]:
    with ControlPlane(e2e_binaries) as own:
        yield own


@pytest.fixture
def scene(
    plane: ControlPlane, chart_rbac: list[Manifest], tmp_path: Path, moto_endpoint: str
) -> Iterator[tuple[Kube, Installed, Cloud]]:
    installed = install_chart_rbac(plane, chart_rbac, tmp_path)
    try:
        with plane.admin_api_client() as api, cleaned(Kube(api, installed)) as kube:
            yield kube, installed, new_cloud(moto_endpoint)
    finally:
        if not plane.apiserver_running:
            plane.start_apiserver()


def test_api_server_down_for_a_minute_fences_the_leader_and_the_restarted_controller_converges(
    plane: ControlPlane, scene: tuple[Kube, Installed, Cloud], tmp_path: Path, moto_endpoint: str
) -> None:
    kube, installed, cloud = scene
    cidr = "10.254.0.0/24"
    setup = setup_for(installed, cloud, moto_endpoint, cidr, 28, SHORT_LEASE)
    authorizing: list[float] = []
    """(start, end) epoch seconds of the restarted API server's warm-up: it may answer 403 while its
    RBAC caches fill, which routectl retries like any failed request."""

    def warming_up(record: LogRecord) -> bool:
        return len(authorizing) == 2 and authorizing[0] <= logged_at(record) <= authorizing[1] + 1.0

    with denials_checked(tmp_path, warming_up) as runner:
        leader = start_leader(kube, runner, setup)
        deployment = Deployment(runner, setup, leader)
        add_nodes(kube, cloud, "node-a", "node-b", "node-c", "node-d")
        eventually(
            lambda: routed(kube, cloud, ["node-a", "node-b", "node-c", "node-d"], cidr), 90, "4 routed"
        )
        kept = {table: cloud.routes(table, cidr) for table in cloud.tables}
        # Changes the leader may not finish before the API goes: one node gone, two new ones.
        kube.delete_node("node-b")
        add_nodes(kube, cloud, "node-e", "node-f")

        down_at = time.monotonic()
        plane.stop_apiserver()
        eventually(lambda: not leader.running(), OUTAGE_S - 10, "the leader exits while the API is down")
        exit_code, exited_s = leader.wait(1), time.monotonic() - down_at
        deployment.wait(OUTAGE_S - (time.monotonic() - down_at))
        during = {table: cloud.routes(table, cidr) for table in cloud.tables}
        authorizing.append(time.time())
        plane.start_apiserver()
        up_at = time.monotonic()
        eventually(
            lambda: _authorized(installed), 60, "the restarted API server authorizes the ServiceAccount"
        )
        authorizing.append(time.time())
        names = ["node-a", "node-c", "node-d", "node-e", "node-f"]

        def converged() -> bool:
            deployment.keep_running()
            tables = [cloud.routes(table, cidr) for table in cloud.tables]
            return routed(kube, cloud, names, cidr) and all(len(routes) == len(names) for routes in tables)

        eventually(converged, CONVERGE_TIMEOUT_S, "converged after the API came back")
        converged_s = time.monotonic() - up_at

        # The leader, as documented: fence closed, workers stopped, release tried (and failed), exit 1.
        assert exit_code == 1
        assert len(leader.logged("lost leadership")) == 1
        assert len(leader.logged("could not release lease; it will expire")) == 1
        assert leader.logged("released lease") == []
        # Nothing routed was taken away while the API was down (a route for node-b may be gone
        # already: its deletion was seen before the outage).
        for table, routes in kept.items():
            survived = {d: t for d, t in routes.items() if d != _block_of(routes, cloud, "node-b")}
            assert survived.items() <= during[table].items()
        # Converged with no duplicate podCIDR, no missing and no leaked route.
        nodes = kube.nodes()
        assert sorted(nodes) == names
        pod_cidrs = {name: nodes[name].pod_cidr for name in names}
        assert len(set(pod_cidrs.values())) == len(names)
        expected = {pod_cidrs[name]: cloud.instances[name] for name in names}
        for table in cloud.tables:
            assert cloud.routes(table, cidr) == expected
        leaders = [pod for pod in deployment.pods if leading(kube, pod)]
        assert leaders == [deployment.current]

    record(
        "outages",
        "api_server_outage",
        {
            "stack": "e2e: routectl processes, real kube-apiserver + etcd, moto EC2",
            "outage_s": round(up_at - down_at, 1),
            "lease_timings_s": [SHORT_LEASE.lease_s, SHORT_LEASE.renew_s, SHORT_LEASE.retry_s],
            "resync_period": setup.resync,
            "api_down_to_leader_exit_s": round(exited_s, 3),
            "pods_started": len(deployment.pods),
            "api_back_to_converged_s": round(converged_s, 3),
        },
    )


def _authorized(installed: Installed) -> bool:
    """The chart's ServiceAccount may read its Lease again (not 403; 404 is fine)."""
    with config.new_client_from_config(str(installed.kubeconfig)) as api:  # type: ignore[no-untyped-call]
        try:
            client.CoordinationV1Api(api).read_namespaced_lease(installed.lease_name, installed.namespace)
        except ApiException as err:
            return err.status != 403
    return True


def _block_of(routes: dict[str, str], cloud: Cloud, name: str) -> str:
    """The destination of `name`'s route in one table's routes (by its instance)."""
    return next(d for d, target in routes.items() if target == cloud.instances[name])

"""routectl end to end: the real controller process, as the chart's ServiceAccount, against a real
kube-apiserver + etcd and moto's EC2 server.

The chart's ServiceAccount and RBAC (rendered by helm) are applied, a bound token is minted for the
ServiceAccount, and `routectl` runs as a subprocess with a kubeconfig holding only that token. Each
scenario builds its own VPC with two route tables tagged for its own cluster name, creates Nodes as
admin, and asserts on what the API server and EC2 show; every controller log is checked for RBAC
denials when the scenario ends.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import signal
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from providers.emulators.gce import BASE as GCE_BASE
from providers.emulators.gce import GceEmulator
from providers.registry import DEMO_CLUSTER, discover
from routectl.kube.leader import JITTER_FACTOR
from routectl.reasons import CONDITION_TYPE, ConditionReason, Reason
from tests.chart.chartlib import Manifest
from tests.e2e.adapter_dist import MEMCLOUD, build_and_install
from tests.providers.aws.awsworld import REGION, World, ec2_at, world_on
from tests.support.apiserver import ControlPlane
from tests.support.cluster import (
    ROUTE_CREATED,
    Installed,
    Kube,
    LeaseView,
    cleaned,
    install_chart_rbac,
    leading,
    start_leader,
)
from tests.support.figures import record
from tests.support.routectl_proc import (
    Completed,
    LeaseTimings,
    Routectl,
    RoutectlRunner,
    Setup,
    denials,
    denials_checked,
    eventually,
    logged_at,
)
from tests.support.tcpproxy import CuttableProxy

CONVERGE_TIMEOUT_S = 90.0
SLACK_S = 1.0
"""Scheduling slack on a shared 2-core machine, added to bounds derived from the lease timings."""
SHORT_LEASE = LeaseTimings(lease_s=4, renew_s=3, retry_s=0.5)


# --- the cloud side -------------------------------------------------------------------------------


@dataclass(slots=True)
class Cloud:
    """One scenario's VPC in moto: two route tables tagged as owned by the scenario's cluster, and
    an instance per node name."""

    world: World
    cluster_name: str
    tables: tuple[str, str]
    instances: dict[str, str]

    def provider_id(self, name: str) -> str:
        return f"aws:///{REGION}a/{self.instances[name]}"

    def launch(self, *names: str) -> None:
        for name, instance in zip(names, self.world.instances(len(names)), strict=True):
            self.instances[name] = instance

    def routes(self, table: str, within: str) -> dict[str, str]:
        """destination → target (instance, or the id of whatever else) of the table's routes in `within`."""
        network = ipaddress.IPv4Network(within)
        routes: dict[str, str] = {}
        for destination, raw in self.world.raw_routes(table).items():
            if _subnet_of(destination, network):
                routes[destination] = str(
                    raw.get("InstanceId") or raw.get("VpcPeeringConnectionId") or raw.get("GatewayId")
                )
        return routes

    def snapshot(self) -> list[dict[str, Any]]:
        tables = self.world.ec2.describe_route_tables(RouteTableIds=list(self.tables))["RouteTables"]
        return sorted((t for t in tables), key=lambda t: str(t["RouteTableId"]))


def _subnet_of(destination: str | None, network: ipaddress.IPv4Network) -> bool:
    if not destination or ":" in destination:
        return False
    return ipaddress.IPv4Network(destination).subnet_of(network)


@pytest.fixture
def cloud(moto_endpoint: str) -> Cloud:
    return new_cloud(moto_endpoint)


def new_cloud(moto_endpoint: str) -> Cloud:
    """A fresh VPC in moto with two route tables tagged for a fresh cluster name."""
    world = world_on(ec2_at(moto_endpoint))
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    owned = {f"kubernetes.io/cluster/{name}": "owned"}
    return Cloud(world, name, (world.table(owned), world.table(owned)), {})


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[RoutectlRunner]:
    with denials_checked(tmp_path) as runner:
        yield runner


@pytest.fixture
def kube(admin_api: client.ApiClient, installed: Installed) -> Iterator[Kube]:
    with cleaned(Kube(admin_api, installed)) as kube:
        yield kube


def setup_for(
    installed: Installed,
    cloud: Cloud,
    endpoint: str,
    cluster_cidr: str,
    node_mask: int,
    timings: LeaseTimings = SHORT_LEASE,
) -> Setup:
    return Setup(
        kubeconfig=installed.kubeconfig,
        lease_namespace=installed.namespace,
        lease_name=installed.lease_name,
        cloud=(
            "--provider=aws",
            f"--region={REGION}",
            f"--cloud-endpoint={endpoint}",
            f"--vpc-id={cloud.world.vpc_id}",
            # moto answers the Service Quotas call with AWS's default of 50 routes per table; the
            # scenarios prove wiring, not pacing, so the quota and the write bucket are widened.
            "--route-table-quota=1000",
            "--cloud-write-rate=100",
            "--cloud-write-burst=100",
        ),
        cluster_name=cloud.cluster_name,
        cluster_cidr=cluster_cidr,
        node_mask=node_mask,
        timings=timings,
    )


# --- convergence ----------------------------------------------------------------------------------


def routed(kube: Kube, cloud: Cloud, names: Sequence[str], cluster_cidr: str) -> bool:
    """Every named node has a podCIDR, its route to its instance in both tables, and RouteCreated."""
    nodes = kube.nodes()
    tables = [cloud.routes(table, cluster_cidr) for table in cloud.tables]
    for name in names:
        node = nodes.get(name)
        if node is None or not node.pod_cidr or node.network != ROUTE_CREATED:
            return False
        if any(routes.get(node.pod_cidr) != cloud.instances[name] for routes in tables):
            return False
    return True


def wait_routed(kube: Kube, cloud: Cloud, names: Sequence[str], cluster_cidr: str) -> float:
    return eventually(
        lambda: routed(kube, cloud, names, cluster_cidr),
        CONVERGE_TIMEOUT_S,
        f"{len(names)} node(s) with podCIDR, routes in both tables and RouteCreated",
    )


def add_nodes(kube: Kube, cloud: Cloud, *names: str) -> None:
    cloud.launch(*names)
    for name in names:
        kube.create_node(name, cloud.provider_id(name))


def figure(text: str) -> None:
    """A measured figure, printed for docs/testing.md (run with -s); never asserted."""
    print(f"\ne2e figure: {text}")


# --- scenarios ------------------------------------------------------------------------------------


def test_fifty_nodes_get_distinct_pod_cidrs_and_one_route_each_in_both_tables(
    kube: Kube, cloud: Cloud, runner: RoutectlRunner, installed: Installed, moto_endpoint: str
) -> None:
    cidr = "10.244.0.0/16"
    setup = setup_for(installed, cloud, moto_endpoint, cidr, 24)
    controller = start_leader(kube, runner, setup)
    names = [f"node-{i:02d}" for i in range(50)]

    started = time.monotonic()
    add_nodes(kube, cloud, *names)
    wait_routed(kube, cloud, names, cidr)
    figure(f"50 nodes created -> all routed in 2 tables: {time.monotonic() - started:.1f}s")

    pod_cidrs = {name: node.pod_cidr for name, node in kube.nodes().items()}
    assert len(set(pod_cidrs.values())) == 50
    assert all(_subnet_of(c, ipaddress.IPv4Network(cidr)) for c in pod_cidrs.values())
    expected = {pod_cidrs[name]: cloud.instances[name] for name in names}
    for table in cloud.tables:
        assert cloud.routes(table, cidr) == expected
    for table in cloud.tables:
        eventually(
            lambda t=table: controller.metric("routectl_routes_programmed", table=t) == 50,  # type: ignore[misc]
            30,
            f"routectl_routes_programmed{{table={table}}} == 50",
        )
    assert controller.metric("leader_election_master_status", name=installed.lease_name) == 1
    errors = {k: v for k, v in controller.metrics().items() if k[0] == "routectl_reconcile_errors_total"}
    assert sum(errors.values()) == 0, errors
    assert denials(controller.log()) == []


def test_deleted_node_loses_its_routes_and_its_block_goes_to_a_new_node(
    kube: Kube, cloud: Cloud, runner: RoutectlRunner, installed: Installed, moto_endpoint: str
) -> None:
    cidr = "10.250.0.0/26"  # four /28 blocks: round-robin hands a block out again only after a wrap
    start_leader(kube, runner, setup_for(installed, cloud, moto_endpoint, cidr, 28))
    names = ["node-a", "node-b", "node-c", "node-d"]
    add_nodes(kube, cloud, *names)
    wait_routed(kube, cloud, names, cidr)
    freed = kube.pod_cidr("node-b")

    kube.delete_node("node-b")
    eventually(
        lambda: all(freed not in cloud.routes(t, cidr) for t in cloud.tables),
        CONVERGE_TIMEOUT_S,
        f"the route to {freed} deleted from both tables",
    )
    add_nodes(kube, cloud, "node-e")
    wait_routed(kube, cloud, ["node-a", "node-c", "node-d", "node-e"], cidr)

    assert kube.pod_cidr("node-e") == freed
    for table in cloud.tables:
        assert cloud.routes(table, cidr)[freed] == cloud.instances["node-e"]
        assert len(cloud.routes(table, cidr)) == 4


def test_existing_pod_cidrs_are_kept_and_the_server_refuses_to_change_them(
    kube: Kube, cloud: Cloud, runner: RoutectlRunner, installed: Installed, moto_endpoint: str
) -> None:
    cidr = "10.251.0.0/24"
    preset = {"preset-early": "10.251.0.16/28", "preset-late": "10.251.0.224/28"}
    cloud.launch(*preset, "fresh-1", "fresh-2")
    kube.create_node("preset-early", cloud.provider_id("preset-early"), preset["preset-early"])
    start_leader(kube, runner, setup_for(installed, cloud, moto_endpoint, cidr, 28))
    kube.create_node("preset-late", cloud.provider_id("preset-late"), preset["preset-late"])
    for name in ("fresh-1", "fresh-2"):
        kube.create_node(name, cloud.provider_id(name))
    names = [*preset, "fresh-1", "fresh-2"]
    wait_routed(kube, cloud, names, cidr)

    for name, block in preset.items():
        assert kube.pod_cidr(name) == block
        assert not kube.reasons(name) & {Reason.CIDR_ASSIGNED.value, Reason.CIDR_ASSIGNMENT_FAILED.value}
    fresh = {kube.pod_cidr("fresh-1"), kube.pod_cidr("fresh-2")}
    assert len(fresh) == 2
    assert not fresh & set(preset.values())
    for name in ("preset-early", "fresh-1"):
        before = kube.pod_cidr(name)
        with pytest.raises(ApiException) as refused:
            kube.set_pod_cidr(name, "10.251.0.240/28")
        assert refused.value.status == 422
        assert kube.pod_cidr(name) == before
    assert routed(kube, cloud, names, cidr)


def elect(kube: Kube, runner: RoutectlRunner, setup: Setup) -> tuple[Routectl, Routectl]:
    """Start two controllers at once; return (leader, standby) once exactly one of them leads."""
    first, second = runner.start("first", setup), runner.start("second", setup)
    eventually(lambda: kube.holder() != "" and first.ready() and second.ready(), 60, "a leader, both ready")
    leader, standby = (first, second) if leading(kube, first) else (second, first)
    assert leading(kube, leader)
    time.sleep(4 * setup.timings.retry_s)  # the standby keeps trying, and keeps failing
    assert leading(kube, leader)
    gauge = "leader_election_master_status"
    assert leader.metric(gauge, name=setup.lease_name) == 1
    assert standby.metric(gauge, name=setup.lease_name) == 0
    assert standby.logged("acquired lease") == []
    return leader, standby


def current_lease(kube: Kube) -> LeaseView:
    lease = kube.lease()
    assert lease is not None
    return lease


def test_sigkill_of_the_leader_lets_the_standby_take_over_after_the_lease_expires_and_resume(
    kube: Kube, cloud: Cloud, runner: RoutectlRunner, installed: Installed, moto_endpoint: str
) -> None:
    cidr = "10.252.0.0/24"
    timings = SHORT_LEASE
    leader, standby = elect(kube, runner, setup_for(installed, cloud, moto_endpoint, cidr, 28, timings))
    add_nodes(kube, cloud, "before")
    wait_routed(kube, cloud, ["before"], cidr)

    last_renewal = current_lease(kube).renewed
    killed_at = time.time()
    leader.send(signal.SIGKILL)
    leader.wait(10)
    add_nodes(kube, cloud, "after")
    eventually(lambda: leading(kube, standby), 30, "the standby holds the lease")
    acquired = current_lease(kube).acquired
    wait_routed(kube, cloud, ["before", "after"], cidr)
    resumed_s = time.time() - killed_at
    figure(
        f"SIGKILL -> standby acquires lease: {acquired - killed_at:.2f}s; "
        f"-> new node routed: {resumed_s:.2f}s (lease duration {timings.lease_s:.0f}s)"
    )

    # No second leader while the lease, as last renewed, is live: the standby counts a full lease
    # duration from the moment it first saw the dead leader's last renewal, which is no earlier than
    # the renewal read just before the kill.
    assert acquired >= last_renewal + timings.lease_s
    assert len(standby.logged("acquired lease")) == 1
    assert leader.logged("released lease") == []


def test_sigterm_of_the_leader_releases_the_lease_and_the_standby_takes_over_within_a_retry_period(
    kube: Kube, cloud: Cloud, runner: RoutectlRunner, installed: Installed, moto_endpoint: str
) -> None:
    cidr = "10.253.0.0/24"
    timings = LeaseTimings(lease_s=8, renew_s=6, retry_s=0.5)
    leader, standby = elect(kube, runner, setup_for(installed, cloud, moto_endpoint, cidr, 28, timings))
    add_nodes(kube, cloud, "before")
    wait_routed(kube, cloud, ["before"], cidr)

    terminated_at = time.time()
    leader.send(signal.SIGTERM)
    assert leader.wait(30) == 0
    (released,) = leader.logged("released lease")
    add_nodes(kube, cloud, "after")
    eventually(lambda: leading(kube, standby), 30, "the standby holds the lease")
    acquired = current_lease(kube).acquired
    release_gap_s = acquired - logged_at(released)
    takeover_s = acquired - terminated_at
    wait_routed(kube, cloud, ["before", "after"], cidr)
    figure(
        f"SIGTERM -> standby acquires lease: {takeover_s:.2f}s "
        f"(release -> acquire {release_gap_s:.2f}s; lease duration {timings.lease_s:.0f}s)"
    )

    # One jittered retry period, not a lease duration: the standby took over because of the release.
    assert release_gap_s <= timings.retry_s * (1 + JITTER_FACTOR) + SLACK_S < timings.lease_s


DEFAULT_LEASE = LeaseTimings(lease_s=15, renew_s=10, retry_s=2)
"""The chart's (and client-go's) defaults: the timings the failover goals are stated for."""


def _first_write(process: Routectl, node: str) -> float | None:
    """When `process` assigned `node` its podCIDR (its log), or None."""
    return next((logged_at(r) for r in process.logged("assigned podCIDRs") if r.get("node") == node), None)


def test_with_default_timings_the_watching_standby_takes_over_on_sigterm_and_on_sigkill(
    kube: Kube, cloud: Cloud, runner: RoutectlRunner, installed: Installed, moto_endpoint: str
) -> None:
    """The lease watch on the real API server: a released lease is taken as the release is seen, an
    abandoned one once the standby saw it unchanged for a lease duration. Correctness is asserted; the
    gaps (failure → the standby's first write, a joining node's podCIDR) are figures for
    docs/operations.md, never asserted."""
    cidr = "10.249.0.0/24"
    setup = setup_for(installed, cloud, moto_endpoint, cidr, 28, DEFAULT_LEASE)
    leader, standby = elect(kube, runner, setup)
    add_nodes(kube, cloud, "before")
    wait_routed(kube, cloud, ["before"], cidr)

    terminated_at = time.time()
    leader.send(signal.SIGTERM)
    eventually(lambda: bool(leader.logged("stopping: no write starts from now on")), 10, "fence shut", 0.01)
    add_nodes(kube, cloud, "after-term")  # once the leader's fence is shut: the write is the standby's
    eventually(lambda: _first_write(standby, "after-term") is not None, 30, "the standby assigns a podCIDR")
    assert leader.wait(30) == 0
    term_gap = (_first_write(standby, "after-term") or 0.0) - terminated_at
    assert leading(kube, standby)
    assert _first_write(leader, "after-term") is None

    third = runner.start("third", setup)
    eventually(
        lambda: third.ready() and bool(third.logged("attempting to acquire lease")), 60, "a new standby"
    )
    time.sleep(2 * DEFAULT_LEASE.retry_s)  # it has read the lease and watches it
    last_renewal = current_lease(kube).renewed
    killed_at = time.time()
    standby.send(signal.SIGKILL)
    standby.wait(10)
    add_nodes(kube, cloud, "after-kill")
    eventually(lambda: _first_write(third, "after-kill") is not None, 60, "the new standby assigns a podCIDR")
    kill_gap = (_first_write(third, "after-kill") or 0.0) - killed_at
    wait_routed(kube, cloud, ["before", "after-term", "after-kill"], cidr)

    assert leading(kube, third)
    assert current_lease(kube).acquired >= last_renewal + DEFAULT_LEASE.lease_s  # never two leaders
    assert len(third.logged("acquired lease")) == 1
    record(
        "failover_e2e",
        "default_timings",
        {
            "stack": "e2e: routectl processes, real kube-apiserver + etcd, moto EC2",
            "lease_timings_s": [DEFAULT_LEASE.lease_s, DEFAULT_LEASE.renew_s, DEFAULT_LEASE.retry_s],
            "sigterm_to_standby_first_write_s": round(term_gap, 3),
            "sigkill_to_standby_first_write_s": round(kill_gap, 3),
            "sigkill_since_last_renewal_s": round(killed_at - last_renewal, 3),
        },
    )


@pytest.fixture
def uncached(
    control_plane_without_watch_cache: ControlPlane, chart_rbac: list[Manifest], tmp_path: Path
) -> Iterator[tuple[ControlPlane, CuttableProxy, Kube]]:
    """The control plane without watch cache (a compaction turns an old watch into 410), reached by
    the controller through a proxy the test can cut; the test's own calls go direct."""
    plane = control_plane_without_watch_cache
    apiserver = urlsplit(plane.url)
    with CuttableProxy((str(apiserver.hostname), int(apiserver.port or 443))) as proxy:
        installed = install_chart_rbac(plane, chart_rbac, tmp_path, server=proxy.url)
        with plane.admin_api_client() as api, cleaned(Kube(api, installed)) as kube:
            yield plane, proxy, kube


def test_watch_broken_past_a_compaction_gets_410_relists_and_misses_no_node(
    uncached: tuple[ControlPlane, CuttableProxy, Kube],
    cloud: Cloud,
    runner: RoutectlRunner,
    moto_endpoint: str,
) -> None:
    plane, proxy, kube = uncached
    cidr = "10.254.0.0/24"
    controller = start_leader(kube, runner, setup_for(kube.installed, cloud, moto_endpoint, cidr, 28))
    add_nodes(kube, cloud, "kept", "gone")
    wait_routed(kube, cloud, ["kept", "gone"], cidr)
    gone_cidr = kube.pod_cidr("gone")

    proxy.cut()  # the watch breaks; until `resume` the controller cannot reach the API server
    cloud.launch("late-1", "late-2")
    kube.create_node("late-1", cloud.provider_id("late-1"))
    kube.create_node("late-2", cloud.provider_id("late-2"))
    kube.delete_node("gone")
    compacted = plane.compact_etcd()
    proxy.resume()

    wait_routed(kube, cloud, ["kept", "late-1", "late-2"], cidr)
    eventually(
        lambda: all(gone_cidr not in cloud.routes(t, cidr) for t in cloud.tables),
        CONVERGE_TIMEOUT_S,
        "the route of the node deleted during the cut removed from both tables",
    )
    relists = controller.logged("node watch expired, relisting")
    assert relists, f"no relist after compaction at revision {compacted}:\n{controller.log_tail()}"
    assert all("410" in str(record.get("error")) for record in relists)


def test_foreign_route_on_a_node_cidr_is_left_alone_and_reported_as_route_conflict(
    kube: Kube, cloud: Cloud, runner: RoutectlRunner, installed: Installed, moto_endpoint: str
) -> None:
    cidr = "10.248.0.0/24"
    taken = "10.248.0.32/28"
    world = cloud.world
    peer_vpc = world.ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    peering = world.ec2.create_vpc_peering_connection(VpcId=world.vpc_id, PeerVpcId=peer_vpc)
    peering_id = peering["VpcPeeringConnection"]["VpcPeeringConnectionId"]
    world.add_route(cloud.tables[0], taken, VpcPeeringConnectionId=peering_id)
    foreign = world.raw_routes(cloud.tables[0])[taken]
    cloud.launch("victim", "bystander")
    kube.create_node("victim", cloud.provider_id("victim"), taken)
    kube.create_node("bystander", cloud.provider_id("bystander"))

    start_leader(kube, runner, setup_for(installed, cloud, moto_endpoint, cidr, 28))
    wait_routed(kube, cloud, ["bystander"], cidr)
    eventually(
        lambda: Reason.ROUTE_CONFLICT.value in kube.reasons("victim"),
        CONVERGE_TIMEOUT_S,
        "a RouteConflict Event on the victim",
    )
    eventually(
        lambda: cloud.routes(cloud.tables[1], cidr).get(taken) == cloud.instances["victim"],
        CONVERGE_TIMEOUT_S,
        "the victim's route in the table without a conflict",
    )

    assert world.raw_routes(cloud.tables[0])[taken] == foreign
    (conflict,) = [e for e in kube.events("victim") if e.reason == Reason.ROUTE_CONFLICT.value]
    assert conflict.type == "Warning"
    assert kube.node("victim").network == ("True", ConditionReason.NO_ROUTE_CREATED.value)


def test_plan_changes_nothing_and_run_once_converges_then_exits_0(
    kube: Kube, cloud: Cloud, runner: RoutectlRunner, installed: Installed, moto_endpoint: str
) -> None:
    cidr = "10.247.0.0/24"
    setup = setup_for(installed, cloud, moto_endpoint, cidr, 28)
    cloud.launch("set-1", "set-2", "unset")
    kube.create_node("set-1", cloud.provider_id("set-1"), "10.247.0.0/28")
    kube.create_node("set-2", cloud.provider_id("set-2"), "10.247.0.16/28")
    kube.create_node("unset", cloud.provider_id("unset"))
    tables_before = cloud.snapshot()
    nodes_before = {n: node.resource_version for n, node in kube.nodes().items()}

    plan = runner.command("plan", setup, "plan", "--output=json")

    assert plan.code == 0, plan.log
    printed = json.loads(plan.stdout)
    assert printed["converged"] is False
    assert sorted((c["node"], c["table"], c["target"]) for c in printed["create"]) == sorted(
        (n, t, cloud.instances[n]) for n in ("set-1", "set-2") for t in cloud.tables
    )
    assert cloud.snapshot() == tables_before
    assert {n: node.resource_version for n, node in kube.nodes().items()} == nodes_before
    assert all(kube.events(name) == [] for name in nodes_before)

    once = runner.command("once", setup, "run", "--once")

    assert once.code == 0, once.log
    assert routed(kube, cloud, ["set-1", "set-2", "unset"], cidr)
    again = json.loads(runner.command("plan-again", setup, "plan", "--output=json").stdout)
    assert again["converged"] is True
    assert again["create"] == again["replace"] == again["delete"] == []
    assert again["in_place"] == 6


@pytest.mark.parametrize("provider", ["gcp", "alibaba"])
def test_plan_and_run_once_work_against_the_gcp_and_alibaba_emulators(
    provider: str, kube: Kube, runner: RoutectlRunner, installed: Installed
) -> None:
    names = [f"{provider}-{i}" for i in range(3)]
    factory = discover()[provider].embedded_cloud()
    assert factory is not None
    with factory(len(names)) as embedded:
        setup = Setup(
            kubeconfig=installed.kubeconfig,
            lease_namespace=installed.namespace,
            lease_name=installed.lease_name,
            cloud=(f"--provider={provider}", *embedded.flags),
            cluster_name=DEMO_CLUSTER,
            cluster_cidr="10.248.0.0/24",
            node_mask=26,
        )
        for name, provider_id in zip(names, embedded.provider_ids, strict=True):
            kube.create_node(name, provider_id)

        plan = runner.command("plan", setup, "plan", "--output=json")

        assert plan.code == 0, plan.log
        printed = json.loads(plan.stdout)
        assert printed["converged"] is False
        assert {b["node"] for b in printed["blocked"]} == set(names)  # no podCIDR yet: nothing to write
        assert printed["create"] == printed["replace"] == printed["delete"] == []
        assert all(view.pod_cidr == "" for view in kube.nodes().values())

        once = runner.command("once", setup, "run", "--once")

        assert once.code == 0, once.log
        views = kube.nodes()
        assert len({views[n].pod_cidr for n in names}) == len(names)
        assert all(views[n].network == ("False", ConditionReason.ROUTE_CREATED.value) for n in names)
        again = json.loads(runner.command("plan-again", setup, "plan", "--output=json").stdout)
        assert again["converged"] is True
        tables = 1 if provider == "gcp" else 2
        assert again["in_place"] == len(names) * tables


def test_gcp_legacy_routes_are_adoptable_in_plan_and_adopted_by_run_once_with_the_flag(
    kube: Kube, runner: RoutectlRunner, installed: Installed
) -> None:
    """The switch from the Kubernetes GCE provider through the CLI: `plan` lists its routes as
    adoptable (not conflicts); `run --once` without the flag writes nothing and exits 1; with
    `--adopt-routes` (upsert-only) it adopts them and exits 0."""
    project, zone, network, cluster = "proj-e2e", "us-central1-a", "vpc", "legacy"
    with GceEmulator() as emulator:
        emulator.add_network(project, network)
        names = ["gce-0", "gce-1"]
        for i, name in enumerate(names):
            emulator.add_instance(project, zone, name)
            kube.create_node(name, f"gce://{project}/{zone}/{name}", f"10.249.0.{i * 64}/26")
            uid = kube.core.read_node(name).metadata.uid
            emulator.add_route(
                project,
                {
                    "name": f"{cluster}-{uid}",
                    "description": "k8s-node-route",
                    "network": f"{GCE_BASE}projects/{project}/global/networks/{network}",
                    "destRange": f"10.249.0.{i * 64}/26",
                    "priority": 1000,
                    "nextHopInstance": f"{GCE_BASE}projects/{project}/zones/{zone}/instances/{name}",
                },
            )
        setup = Setup(
            kubeconfig=installed.kubeconfig,
            lease_namespace=installed.namespace,
            lease_name=installed.lease_name,
            cloud=(
                "--provider=gcp",
                f"--project={project}",
                f"--network={network}",
                f"--cloud-endpoint={emulator.endpoint}",
            ),
            cluster_name=cluster,
            cluster_cidr="10.249.0.0/24",
            node_mask=26,
        )
        before = emulator.routes(project)

        printed = json.loads(runner.command("plan", setup, "plan", "--output=json").stdout)
        refused = runner.command("once", setup, "run", "--once")
        untouched = emulator.routes(project)
        adopted = runner.command(
            "adopt", setup, "run", "--once", "--adopt-routes=true", "--route-policy=upsert-only"
        )
        after = emulator.routes(project)
        again = json.loads(runner.command("plan-again", setup, "plan", "--output=json").stdout)

    assert sorted(c["node"] for c in printed["adoptable"]) == names
    assert printed["conflicts"] == []
    assert refused.code == 1, refused.log
    assert untouched == before
    assert adopted.code == 0, adopted.log
    legacy_left = [r["name"] for r in after if r.get("description") == "k8s-node-route"]
    ours = sorted(r["description"] for r in after if r.get("description", "").startswith("routectl:"))
    assert legacy_left == []
    assert ours == [f"routectl: cluster={cluster} node={n}" for n in names]
    assert all(kube.node(n).network == ("False", ConditionReason.ROUTE_CREATED.value) for n in names)
    assert again["converged"] is True
    assert again["adoptable"] == again["adopt"] == []


# --- hostile cluster state (issue 14) -------------------------------------------------------------


def condition_message(kube: Kube, name: str) -> str:
    status = kube.core.read_node_status(name).status
    found = [c for c in (status.conditions if status else None) or () if c.type == CONDITION_TYPE]
    return str(found[0].message) if found else ""


def not_routed_because(kube: Kube, name: str, *words: str) -> bool:
    node = kube.node(name)
    return node.network == ("True", ConditionReason.NO_ROUTE_CREATED.value) and all(
        w in condition_message(kube, name) for w in words
    )


def stays(check: Callable[[], bool], seconds: float, what: str) -> None:
    """`check` holds at every poll for `seconds` (here: across more than one full resync)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert check(), what
        time.sleep(0.5)


def one_line(done: Completed) -> str:
    """The command's single non-log line on stderr (its verdict); fails on none, several, or a traceback."""
    lines = [r["raw"] for r in done.log if "raw" in r and r["raw"].strip()]
    assert len(lines) == 1, lines
    return str(lines[0])


@pytest.mark.parametrize("allocate", [True, False], ids=["allocating", "allocate-node-cidrs=false"])
def test_two_nodes_with_one_podcidr_route_it_to_the_earlier_one_only_and_never_flip(
    allocate: bool, kube: Kube, cloud: Cloud, runner: RoutectlRunner, installed: Installed, moto_endpoint: str
) -> None:
    cidr, block = "10.252.0.0/24", "10.252.0.32/28"
    setup = setup_for(installed, cloud, moto_endpoint, cidr, 28)
    setup = dataclasses.replace(setup, extra=(f"--allocate-node-cidrs={str(allocate).lower()}",))
    cloud.launch("owner", "copy")
    kube.create_node("owner", cloud.provider_id("owner"), block)
    controller = start_leader(kube, runner, setup)
    wait_routed(kube, cloud, ["owner"], cidr)
    time.sleep(1.1)  # creationTimestamp has one-second resolution: the copy is created later
    kube.create_node("copy", cloud.provider_id("copy"), block)  # restored from a backup, set by hand

    eventually(
        lambda: not_routed_because(kube, "copy", "duplicate", "node owner"),
        CONVERGE_TIMEOUT_S,
        "the copy is NetworkUnavailable naming the rule and the owner",
    )
    eventually(lambda: Reason.CIDR_NOT_AVAILABLE.value in kube.reasons("copy"), 30, "CIDRNotAvailable")
    to_owner = {t: {block: cloud.instances["owner"]} for t in cloud.tables}
    stays(
        lambda: (
            {t: cloud.routes(t, cidr) for t in cloud.tables} == to_owner
            and routed(kube, cloud, ["owner"], cidr)
        ),
        12,  # more than two resync periods (5 s)
        "the block stays routed to its owner, which stays RouteCreated",
    )
    assert controller.metric("routectl_node_cidr_conflicts", rule="duplicate") == 1
    replaced = controller.metric(
        "routectl_route_operations_total", provider="aws", op="replace", outcome="ok"
    )
    assert replaced is None
    [event] = [e for e in kube.events("copy") if e.reason == Reason.CIDR_NOT_AVAILABLE.value]
    assert event.type == "Warning"
    assert "node owner" in str(event.message)
    printed = json.loads(runner.command("plan", setup, "plan", "--output=json").stdout)
    assert [(r["node"], r["rule"], r["other_node"]) for r in printed["rejected_pod_cidrs"]] == [
        ("copy", "duplicate", "owner")
    ]

    kube.delete_node("owner")  # the block passes to the copy: one replace, and it is routed
    eventually(
        lambda: (
            {t: cloud.routes(t, cidr) for t in cloud.tables}
            == {t: {block: cloud.instances["copy"]} for t in cloud.tables}
            and kube.node("copy").network == ROUTE_CREATED
        ),
        CONVERGE_TIMEOUT_S,
        "the block routed to the copy, now its owner",
    )


def test_a_wide_podcidr_over_another_nodes_block_gets_no_route_and_no_create_delete_loop(
    kube: Kube, cloud: Cloud, runner: RoutectlRunner, installed: Installed, moto_endpoint: str
) -> None:
    cidr = "10.253.0.0/24"
    setup = setup_for(installed, cloud, moto_endpoint, cidr, 28)
    cloud.launch("small", "wide")
    kube.create_node("small", cloud.provider_id("small"), "10.253.0.16/28")
    kube.create_node("wide", cloud.provider_id("wide"), "10.253.0.0/24")
    controller = start_leader(kube, runner, setup)

    wait_routed(kube, cloud, ["small"], cidr)
    eventually(
        lambda: not_routed_because(kube, "wide", "wrong-size", "node small"),
        CONVERGE_TIMEOUT_S,
        "the wide node is NetworkUnavailable naming the rule and the node it overlaps",
    )

    def writes() -> tuple[float | None, ...]:
        return tuple(
            controller.metric("routectl_route_operations_total", provider="aws", op=op, outcome="ok")
            for op in ("create", "replace", "delete")
        )

    before = writes()
    stays(
        lambda: all(
            cloud.routes(t, cidr) == {"10.253.0.16/28": cloud.instances["small"]} for t in cloud.tables
        ),
        12,
        "only the small node's block is routed",
    )
    assert writes() == before == (2.0, None, None)
    assert controller.metric("routectl_node_cidr_conflicts", rule="wrong-size") == 1


def test_a_node_in_another_vpc_gets_no_route_and_its_instance_is_left_as_it_is(
    kube: Kube, cloud: Cloud, runner: RoutectlRunner, installed: Installed, moto_endpoint: str
) -> None:
    cidr = "10.254.0.0/24"
    ec2 = cloud.world.ec2
    elsewhere = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=elsewhere, CidrBlock="10.8.1.0/24")["Subnet"]["SubnetId"]
    stray = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1, SubnetId=subnet)
    cloud.instances["stray"] = stray["Instances"][0]["InstanceId"]
    kube.create_node("stray", cloud.provider_id("stray"))
    add_nodes(kube, cloud, "home")
    start_leader(kube, runner, setup_for(installed, cloud, moto_endpoint, cidr, 28))

    wait_routed(kube, cloud, ["home"], cidr)
    eventually(
        lambda: not_routed_because(
            kube, "stray", elsewhere, cloud.world.vpc_id, "outside the managed network"
        ),
        CONVERGE_TIMEOUT_S,
        "the stray node is NetworkUnavailable naming both VPCs",
    )
    assert Reason.FAILED_TO_CREATE_ROUTE.value in kube.reasons("stray")
    stray_block = kube.pod_cidr("stray")
    assert stray_block  # it has its block: only the route is refused
    assert all(stray_block not in cloud.routes(t, cidr) for t in cloud.tables)
    attribute = ec2.describe_instance_attribute(
        InstanceId=cloud.instances["stray"], Attribute="sourceDestCheck"
    )
    assert attribute["SourceDestCheck"]["Value"] is True


@pytest.mark.parametrize(
    ("unreachable", "words"),
    [
        ("cloud", "Could not connect to the endpoint URL"),
        ("api-server", "cannot reach the Kubernetes API server (3 attempts)"),
    ],
)
def test_plan_and_run_once_end_with_one_line_when_the_cloud_or_api_server_is_unreachable(
    unreachable: str,
    words: str,
    kube: Kube,
    cloud: Cloud,
    runner: RoutectlRunner,
    installed: Installed,
    moto_endpoint: str,
    tmp_path: Path,
) -> None:
    endpoint = "http://127.0.0.1:1" if unreachable == "cloud" else moto_endpoint
    setup = setup_for(installed, cloud, endpoint, "10.246.0.0/24", 28)
    if unreachable == "api-server":
        closed = tmp_path / "closed-kubeconfig"
        config = yaml.safe_load(installed.kubeconfig.read_text())
        config["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
        closed.write_text(yaml.safe_dump(config))
        setup = dataclasses.replace(setup, kubeconfig=closed)
    for command, extra in (("plan", ()), ("run", ("--once",))):
        began = time.monotonic()
        done = runner.command(f"{command}-{unreachable}", setup, command, *extra)
        assert done.code == 1
        assert words in one_line(done)
        assert time.monotonic() - began < 30


def test_an_adapter_installed_from_its_own_distribution_plans_with_no_change_to_routectl(
    kube: Kube, runner: RoutectlRunner, installed: Installed, tmp_path: Path
) -> None:
    site = build_and_install(MEMCLOUD, tmp_path / "memcloud")
    cluster = "outside"
    state = tmp_path / "memcloud.json"
    state.write_text(
        json.dumps(
            {
                "routes": [
                    {"destination": "0.0.0.0/0", "instance": "igw"},
                    {"destination": "10.249.0.64/26", "instance": "i-foreign"},
                    {
                        "destination": "10.249.0.128/26",
                        "instance": "i-gone",
                        "cluster": cluster,
                        "node": "gone",
                    },
                ]
            }
        )
    )
    before = state.read_bytes()
    for name, instance, cidr in (("mem-a", "i-a", "10.249.0.0/26"), ("mem-b", "i-b", "10.249.0.64/26")):
        spec = client.V1NodeSpec(provider_id=f"memcloud://{instance}", pod_cidr=cidr, pod_cidrs=[cidr])
        kube.core.create_node(client.V1Node(metadata=client.V1ObjectMeta(name=name), spec=spec))
    setup = Setup(
        kubeconfig=installed.kubeconfig,
        lease_namespace=installed.namespace,
        lease_name=installed.lease_name,
        cloud=("--provider=memcloud", f"--memcloud-state={state}"),
        cluster_name=cluster,
        cluster_cidr="10.249.0.0/24",
        node_mask=26,
        env=(("PYTHONPATH", str(site)),),
    )

    plan = runner.command("plan", setup, "plan", "--output=json")

    assert plan.code == 0, plan.log
    printed = json.loads(plan.stdout)
    assert [(c["node"], c["table"], c["destination"], c["target"]) for c in printed["create"]] == [
        ("mem-a", "mem-main", "10.249.0.0/26", "i-a")
    ]
    assert [(c["destination"], c["target"]) for c in printed["delete"]] == [("10.249.0.128/26", "i-gone")]
    assert [(c["node"], c["existing_next_hop"]) for c in printed["conflicts"]] == [("mem-b", "i-foreign")]
    assert printed["converged"] is False
    assert state.read_bytes() == before

    no_state = replace(setup, cloud=("--provider=memcloud",))
    missing = runner.command("plan-no-state", no_state, "plan")
    assert missing.code == 2
    assert [r["raw"] for r in missing.log] == [
        "routectl: invalid configuration: --memcloud-state: required for --provider memcloud "
        "(JSON file holding the route table)"
    ]
    not_installed = runner.command("plan-not-installed", replace(no_state, env=()), "plan")
    assert not_installed.code == 2
    assert "'memcloud' is not an installed provider" in not_installed.log[0]["raw"]


@pytest.mark.parametrize(
    ("file", "flag", "words"),
    [
        ("cluster-name: a\ncluster-name: b\n", "", ":2:1: not valid YAML: duplicate key 'cluster-name'"),
        ("exclude-label: caf\u00e9=1\n", "", "not UTF-8 text"),
        ("", "--route-reconciliation-period=99999999999999999999h", "out of range"),
        ("", "--cloud-write-rate=nan", "finite"),
        ("", "--cloud-endpoint=http://127.0.0.1:99999", "endpoint URL"),
        ("", "--region=us east 1", "region name"),
    ],
)
def test_configuration_errors_through_the_cli_are_exit_2_one_line_and_touch_nothing(
    file: str,
    flag: str,
    words: str,
    kube: Kube,
    cloud: Cloud,
    runner: RoutectlRunner,
    installed: Installed,
    moto_endpoint: str,
    tmp_path: Path,
) -> None:
    extra = [flag] if flag else []
    if file:
        path = tmp_path / "routectl.yaml"
        path.write_bytes(file.encode("latin-1"))
        extra.append(f"--config={path}")
    setup = setup_for(installed, cloud, moto_endpoint, "10.246.0.0/24", 28)
    tables_before = cloud.snapshot()

    done = runner.command("bad-config", setup, "run", "--once", *extra)

    assert done.code == 2
    line = one_line(done)
    assert line.startswith("routectl: invalid configuration: ")
    assert words in line
    assert kube.lease() is None
    assert cloud.snapshot() == tables_before

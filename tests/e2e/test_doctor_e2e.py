"""`routectl doctor` against the real API server (as the chart's ServiceAccount) and moto's EC2: a healthy
setup prints only ✓ lines and exits 0; each broken setup prints its ✗ line and exits 1.

The command runs in-process (`routectl.cli.main`) with the settings file the chart mounts, so it reads
exactly what `kubectl exec deploy/<release> -- routectl doctor` reads. moto answers DryRun on route
writes as EC2 does (`honour_dry_run`) and, for the denied write, enforces an IAM policy.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from moto import mock_aws

from providers.aws import ACTIONS
from routectl.cli import main
from routectl.cluster import Condition
from routectl.kube.client import KubeCluster
from routectl.kube.doctor import FLANNEL_CONFIGMAP, FLANNEL_DAEMONSET
from tests.providers.aws.awsworld import (
    CLUSTER,
    OWNED_TAG,
    REGION,
    World,
    a_world,
    enforce_iam,
    honour_dry_run,
    use_dummy_credentials,
)
from tests.support.apiserver import ControlPlane
from tests.support.cluster import Installed, Kube, cleaned

pytestmark = pytest.mark.usefixtures("no_harness_variables")  # doctor runs in-process, under `make e2e` too

FLANNEL_NS = "kube-flannel"
CIDR = "10.244.0.0/16"
NODES = ("node-a", "node-b")
NET_CONF = {"Network": CIDR, "Backend": {"Type": "alloc"}}
FLANNELD_ARGS = ["--ip-masq", "--kube-subnet-mgr", "--set-node-network-unavailable=false"]


@dataclass
class Scene:
    """One doctor run's world: the cluster as admin, the cloud, and the settings file."""

    kube: Kube
    apps: client.AppsV1Api
    world: World
    table: str
    instances: list[str]
    config: Path
    plane: ControlPlane
    installed: Installed
    undo: list[Callable[[], object]] = field(default_factory=list)
    """Run at teardown, last first: what a broken setup added beyond the scene's own objects."""

    def doctor(self, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, list[str]]:
        capsys.readouterr()
        code = main(["doctor", f"--config={self.config}", *extra])
        return code, capsys.readouterr().out.splitlines()


def flannel_objects(
    net_conf: dict[str, Any], args: list[str]
) -> tuple[client.V1ConfigMap, client.V1DaemonSet]:
    configmap = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=FLANNEL_CONFIGMAP, namespace=FLANNEL_NS),
        data={"net-conf.json": json.dumps(net_conf)},
    )
    labels = {"app": "flannel"}
    container = client.V1Container(
        name="kube-flannel", image="flannel", command=["/opt/bin/flanneld"], args=args
    )
    daemonset = client.V1DaemonSet(
        metadata=client.V1ObjectMeta(name=FLANNEL_DAEMONSET, namespace=FLANNEL_NS),
        spec=client.V1DaemonSetSpec(
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels), spec=client.V1PodSpec(containers=[container])
            ),
        ),
    )
    return configmap, daemonset


def put_flannel(scene: Scene, net_conf: dict[str, Any] = NET_CONF, args: list[str] = FLANNELD_ARGS) -> None:
    configmap, daemonset = flannel_objects(net_conf, args)
    scene.kube.core.replace_namespaced_config_map(FLANNEL_CONFIGMAP, FLANNEL_NS, configmap)
    scene.apps.replace_namespaced_daemon_set(FLANNEL_DAEMONSET, FLANNEL_NS, daemonset)


@pytest.fixture
def scene(
    admin_api: client.ApiClient,
    installed: Installed,
    control_plane: ControlPlane,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Scene]:
    """Healthy: nodes with providerIDs whose podCIDRs and NetworkUnavailable routectl wrote, flannel
    with alloc and the flag, a tagged table the nodes' subnet uses, the check already off."""
    use_dummy_credentials(monkeypatch)
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    honour_dry_run(monkeypatch)
    apps = client.AppsV1Api(admin_api)
    with mock_aws(), cleaned(Kube(admin_api, installed)) as kube:
        world = a_world()
        table = world.table(OWNED_TAG)
        world.ec2.associate_route_table(RouteTableId=table, SubnetId=world.subnet_id)
        instances = world.instances(len(NODES))
        for instance in instances:
            world.ec2.modify_instance_attribute(InstanceId=instance, SourceDestCheck={"Value": False})
        config = tmp_path / "routectl.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "kubeconfig": str(installed.kubeconfig),
                    "cluster-name": CLUSTER,
                    "cluster-cidr": [CIDR],
                    "provider": "aws",
                    "region": REGION,
                    "leader-elect-resource-namespace": installed.namespace,
                    "leader-elect-resource-name": installed.lease_name,
                    "log-format": "text",
                }
            )
        )
        ensure_namespace(kube.core, FLANNEL_NS)
        configmap, daemonset = flannel_objects(NET_CONF, FLANNELD_ARGS)
        kube.core.create_namespaced_config_map(FLANNEL_NS, configmap)
        apps.create_namespaced_daemon_set(FLANNEL_NS, daemonset)
        routectl = KubeCluster.from_kubeconfig(str(installed.kubeconfig))
        scene = Scene(kube, apps, world, table, instances, config, control_plane, installed)
        try:
            for index, (name, instance) in enumerate(zip(NODES, instances, strict=True)):
                kube.create_node(name, f"aws:///{REGION}a/{instance}")
                routectl.set_pod_cidrs(name, [f"10.244.{index}.0/24"])
                routectl.set_network_unavailable(name, Condition("False", "RouteCreated", "routed"))
            yield scene
        finally:
            for undo in reversed(scene.undo):
                undo()
            routectl.close()
            kube.core.delete_namespaced_config_map(FLANNEL_CONFIGMAP, FLANNEL_NS)
            apps.delete_namespaced_daemon_set(FLANNEL_DAEMONSET, FLANNEL_NS)


def ensure_namespace(core: client.CoreV1Api, name: str) -> None:
    try:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    except ApiException as err:
        if err.status != 409:
            raise


def test_a_healthy_setup_is_all_ticks_and_exits_0(scene: Scene, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = scene.doctor(capsys)
    print("\n".join(lines))  # the closing note quotes it
    assert code == 0
    *checks, summary = lines
    assert checks
    assert all(line.startswith("✓ ") for line in checks), lines
    assert summary.startswith("healthy: ")
    for expected in (
        "✓ kubernetes/rbac: all",
        "✓ kubernetes/pod-cidr-writers:",
        "✓ flannel/backend:",
        "✓ flannel/network-unavailable:",
        "✓ aws/dry-run ReplaceRoute:",
        "✓ aws/associations:",
    ):
        assert any(line.startswith(expected) for line in checks), expected


def test_json_output_carries_the_same_verdict(scene: Scene, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = scene.doctor(capsys, "--output=json")
    body = json.loads("\n".join(lines))
    assert (code, body["healthy"], body["summary"]["fail"]) == (0, True, 0)


def _other_allocator(scene: Scene, _: pytest.MonkeyPatch) -> None:
    scene.kube.create_node("node-c", f"aws:///{REGION}a/{scene.instances[0]}", "10.244.9.0/24")


def _flannel_sets_the_condition(scene: Scene, _: pytest.MonkeyPatch) -> None:
    status = {
        "status": {"conditions": [{"type": "NetworkUnavailable", "status": "False", "reason": "FlannelIsUp"}]}
    }
    scene.kube.core.patch_node_status(NODES[0], status, field_manager="flanneld")


def _no_provider_id(scene: Scene, _: pytest.MonkeyPatch) -> None:
    scene.kube.create_node("node-c", "")


def _other_network(scene: Scene, _: pytest.MonkeyPatch) -> None:
    put_flannel(scene, {**NET_CONF, "Network": "10.245.0.0/16"})


def _vxlan(scene: Scene, _: pytest.MonkeyPatch) -> None:
    put_flannel(scene, {**NET_CONF, "Backend": {"Type": "vxlan"}})


def _flag_missing(scene: Scene, _: pytest.MonkeyPatch) -> None:
    put_flannel(scene, args=FLANNELD_ARGS[:2])


def _replace_route_denied(scene: Scene, monkeypatch: pytest.MonkeyPatch) -> None:
    """The documented IAM policy less ec2:ReplaceRoute, enforced by moto; the pod's credentials are that
    user's (the environment, as IRSA or a Secret provides them)."""
    for name, value in enforce_iam(monkeypatch, [a for a in ACTIONS if a != "ec2:ReplaceRoute"]).items():
        monkeypatch.setenv(name, value)


def _subnet_on_main_table(scene: Scene, _: pytest.MonkeyPatch) -> None:
    (association,) = (
        a["RouteTableAssociationId"]
        for t in scene.world.ec2.describe_route_tables(RouteTableIds=[scene.table])["RouteTables"]
        for a in t["Associations"]
    )
    scene.world.ec2.disassociate_route_table(AssociationId=association)


def _status_patch_not_granted(scene: Scene, _: pytest.MonkeyPatch) -> None:
    namespace, name = scene.installed.namespace, "routectl-no-status"
    rules = [
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch", "patch"]},
        {
            "apiGroups": ["authorization.k8s.io"],
            "resources": ["selfsubjectaccessreviews"],
            "verbs": ["create"],
        },
    ]
    scene.plane.apply_manifests(
        [
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": name, "namespace": namespace},
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": name},
                "rules": rules,
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
            },
        ]
    )
    rbac = client.RbacAuthorizationV1Api(scene.kube.core.api_client)
    scene.undo += [
        lambda: scene.kube.core.delete_namespaced_service_account(name, namespace),
        lambda: rbac.delete_cluster_role(name),
        lambda: rbac.delete_cluster_role_binding(name),
    ]
    token = scene.plane.service_account_token(namespace, name)
    kubeconfig = scene.plane.kubeconfig_for_token(token, scene.config.parent / "no-status.kubeconfig")
    settings = yaml.safe_load(scene.config.read_text())
    scene.config.write_text(yaml.safe_dump({**settings, "kubeconfig": str(kubeconfig)}))


BROKEN: dict[str, tuple[Callable[[Scene, pytest.MonkeyPatch], None], str]] = {
    "another-allocator": (_other_allocator, "✗ kubernetes/pod-cidr-writers: "),
    "flannel-writes-network-unavailable": (
        _flannel_sets_the_condition,
        "✗ kubernetes/network-unavailable-writers: 'flanneld' wrote",
    ),
    "node-without-provider-id": (_no_provider_id, "✗ kubernetes/provider-ids: 1 node(s) (node-c)"),
    "flannel-network": (
        _other_network,
        "✗ flannel/network: kube-flannel/kube-flannel-cfg Network/IPv6Network 10.245.0.0/16",
    ),
    "flannel-backend": (_vxlan, "✗ flannel/backend: kube-flannel/kube-flannel-cfg Backend vxlan"),
    "flannel-flag": (
        _flag_missing,
        "✗ flannel/network-unavailable: DaemonSet kube-flannel/kube-flannel-ds: flanneld sets",
    ),
    "rbac-status-patch": (_status_patch_not_granted, "✗ kubernetes/rbac patch nodes/status: denied"),
    "aws-replace-route-denied": (
        _replace_route_denied,
        "✗ aws/dry-run ReplaceRoute: ec2:ReplaceRoute denied",
    ),
    "aws-subnet-on-another-table": (_subnet_on_main_table, "✗ aws/associations: subnet"),
}


@pytest.mark.parametrize("broken", list(BROKEN))
def test_each_broken_setup_is_its_cross_line_and_exits_1(
    scene: Scene, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, broken: str
) -> None:
    breaks, expected = BROKEN[broken]
    breaks(scene, monkeypatch)
    code, lines = scene.doctor(capsys)
    print("\n".join(lines))
    assert code == 1
    assert any(line.startswith(expected) for line in lines), lines
    assert lines[-1].startswith("broken: ")

"""The chart's identity on a control plane, and the Kubernetes side of a scenario as admin.

`install_chart_rbac` applies the chart's rendered ServiceAccount and RBAC and writes a kubeconfig that holds
only that ServiceAccount's token, so a controller started with it has exactly the chart's permissions.
`Kube` is the test's own (admin) view: Nodes, Events and the scenario's Lease.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from routectl.reasons import CONDITION_TYPE, ConditionReason
from tests.chart.chartlib import Manifest
from tests.support.apiserver import ControlPlane
from tests.support.routectl_proc import Routectl, RoutectlRunner, Setup, eventually

EVENT_NAMESPACE = "default"


@dataclass(frozen=True, slots=True)
class Installed:
    """The chart's RBAC applied to one control plane, and a kubeconfig for its ServiceAccount."""

    kubeconfig: Path
    namespace: str
    lease_name: str


def install_chart_rbac(
    plane: ControlPlane, objects: Sequence[Manifest], workdir: Path, server: str = ""
) -> Installed:
    """Apply the rendered objects, mint a token for the ServiceAccount and write its kubeconfig
    (pointing at `server` instead of the API server when given, e.g. a proxy)."""
    (account,) = (o for o in objects if o["kind"] == "ServiceAccount")
    namespace, name = account["metadata"]["namespace"], account["metadata"]["name"]
    (lease_name,) = (
        resource_name
        for o in objects
        if o["kind"] == "Role"
        for rule in o["rules"]
        if "leases" in rule["resources"]
        for resource_name in rule.get("resourceNames", ())
    )
    namespace_object = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    plane.apply_manifests([namespace_object, *objects])
    token = plane.service_account_token(namespace, name)
    path = plane.kubeconfig_for_token(token, workdir / "kubeconfig", server)
    return Installed(path, namespace, lease_name)


class Kube:
    """Admin access to one control plane: Nodes, Events and the Lease of the scenario."""

    def __init__(self, api: client.ApiClient, installed: Installed) -> None:
        self.core = client.CoreV1Api(api)
        self.leases = client.CoordinationV1Api(api)
        self.installed = installed

    def clean(self) -> None:
        """No Node and no Lease: each scenario starts from an empty cluster."""
        self.core.delete_collection_node()
        eventually(lambda: not self.core.list_node().items, 30, "every node deleted")
        try:
            self.leases.delete_namespaced_lease(self.installed.lease_name, self.installed.namespace)
        except ApiException as err:
            if err.status != 404:
                raise

    def create_node(
        self,
        name: str,
        provider_id: str,
        pod_cidr: str = "",
        *,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> None:
        spec = client.V1NodeSpec(provider_id=provider_id)
        if pod_cidr:
            spec.pod_cidr, spec.pod_cidrs = pod_cidr, [pod_cidr]
        meta = client.V1ObjectMeta(name=name, labels=dict(labels or {}), annotations=dict(annotations or {}))
        self.core.create_node(client.V1Node(metadata=meta, spec=spec))

    def delete_node(self, name: str) -> None:
        self.core.delete_node(name)

    def nodes(self) -> dict[str, NodeView]:
        return {view.name: view for view in map(NodeView.of, self.core.list_node().items)}

    def node(self, name: str) -> NodeView:
        return NodeView.of(self.core.read_node(name))

    def pod_cidr(self, name: str) -> str:
        return self.node(name).pod_cidr

    def set_pod_cidr(self, name: str, cidr: str) -> None:
        self.core.patch_node(name, {"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}})

    def events(self, name: str) -> list[client.CoreV1Event]:
        """Events about this Node object (by uid: an earlier Node of the same name is another)."""
        selector = f"involvedObject.kind=Node,involvedObject.uid={self.node(name).uid}"
        items: list[client.CoreV1Event] = self.core.list_namespaced_event(
            EVENT_NAMESPACE, field_selector=selector
        ).items
        return items

    def reasons(self, name: str) -> set[str]:
        return {str(event.reason) for event in self.events(name)}

    def lease(self) -> LeaseView | None:
        try:
            lease = self.leases.read_namespaced_lease(self.installed.lease_name, self.installed.namespace)
        except ApiException as err:
            if err.status == 404:
                return None
            raise
        return LeaseView.of(lease)

    def holder(self) -> str:
        lease = self.lease()
        return lease.holder if lease is not None else ""


@contextmanager
def cleaned(kube: Kube) -> Iterator[Kube]:
    """`kube` with no Node and no Lease before and after (each scenario starts from an empty cluster)."""
    kube.clean()
    try:
        yield kube
    finally:
        kube.clean()


@dataclass(frozen=True, slots=True)
class NodeView:
    """What the scenarios check of a Node."""

    name: str
    uid: str
    resource_version: str
    pod_cidr: str
    network: tuple[str, str] | None
    """NetworkUnavailable (status, reason), if set."""

    @classmethod
    def of(cls, node: client.V1Node) -> NodeView:
        meta, spec, status = node.metadata, node.spec, node.status
        assert meta is not None
        assert spec is not None
        found = [c for c in (status.conditions if status else None) or () if c.type == CONDITION_TYPE]
        return cls(
            name=str(meta.name),
            uid=str(meta.uid),
            resource_version=str(meta.resource_version),
            pod_cidr=str(spec.pod_cidr or ""),
            network=(found[0].status, str(found[0].reason)) if found else None,
        )


@dataclass(frozen=True, slots=True)
class LeaseView:
    holder: str
    acquired: float
    renewed: float
    """acquireTime and renewTime as epoch seconds (every process here shares one clock)."""

    @classmethod
    def of(cls, lease: client.V1Lease) -> LeaseView:
        spec = lease.spec
        assert spec is not None
        assert spec.acquire_time is not None
        assert spec.renew_time is not None
        return cls(
            str(spec.holder_identity or ""), spec.acquire_time.timestamp(), spec.renew_time.timestamp()
        )


ROUTE_CREATED = ("False", ConditionReason.ROUTE_CREATED.value)


def leading(kube: Kube, process: Routectl) -> bool:
    return kube.holder().startswith(process.pod_name + "_")


def start_leader(kube: Kube, runner: RoutectlRunner, setup: Setup) -> Routectl:
    process = runner.start("routectl", setup)

    def leads() -> bool:
        if not process.running():  # a start-up failure: say why, not only that it never led
            raise AssertionError(f"routectl exited {process.wait(1)}:\n{process.log_tail()}")
        return leading(kube, process) and process.ready()

    eventually(leads, 60, "routectl leads and is ready")
    return process

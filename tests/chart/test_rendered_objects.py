"""What the chart renders: least-privilege RBAC, a hardened host-network pod, HA switching, identity."""

from __future__ import annotations

import re

import pytest
from chartlib import (
    EXAMPLES,
    MONITORING_API,
    NAMESPACE,
    REPO,
    Helm,
    Manifest,
    chart_values,
    controller,
    of_kind,
    one,
    pod_spec,
    settings,
)

TOLERATED_TAINTS = {
    "node.kubernetes.io/network-unavailable",
    "node.cloudprovider.kubernetes.io/uninitialized",
    "node-role.kubernetes.io/control-plane",
    "node.kubernetes.io/not-ready",
}
STANDARD_LABELS = {
    "helm.sh/chart",
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
}


def controller_role(objects: list[Manifest]) -> Manifest:
    (role,) = [
        o for o in of_kind(objects, "ClusterRole") if not o["metadata"]["name"].endswith("-metrics-reader")
    ]
    return role


def test_role_grants_lease_create_and_only_the_named_lease(rendered: list[Manifest], example: str) -> None:
    """Which verbs: test_rbac.py (exactly those the code uses); here: the Role covers the Lease the
    Deployment is told to use, in its namespace, and nothing but create is granted without its name."""
    roles = of_kind(rendered, "Role")
    if not chart_values(example)["leaderElection"]["enabled"]:
        assert roles == []
        return
    (role,) = roles
    lease = settings(rendered)["leader-elect-resource-name"]
    assert lease == chart_values(example)["leaderElection"]["leaseName"]
    assert role["metadata"]["namespace"] == settings(rendered)["leader-elect-resource-namespace"]
    assert {tuple(r["resources"]) for r in role["rules"]} == {("leases",)}
    for rule in role["rules"]:
        assert rule.get("resourceNames", [lease]) == [lease] or rule["verbs"] == ["create"]
    assert any(r.get("resourceNames") == [lease] for r in role["rules"])


def test_rbac_has_no_wildcards_and_no_secret_access(rendered: list[Manifest]) -> None:
    rules = [r for o in rendered if o["kind"] in ("ClusterRole", "Role") for r in o["rules"]]
    every_word = {w for r in rules for field in r.values() for w in field}
    assert "*" not in every_word
    assert "secrets" not in every_word


def test_bindings_give_the_roles_to_the_pods_service_account(rendered: list[Manifest]) -> None:
    account = pod_spec(rendered)["serviceAccountName"]
    assert one(rendered, "ServiceAccount")["metadata"]["name"] == account
    own = [
        b
        for b in of_kind(rendered, "ClusterRoleBinding")
        if not b["metadata"]["name"].endswith("-metrics-reader")
    ]
    for binding in own + of_kind(rendered, "RoleBinding"):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}]
        role = controller_role(rendered) if binding["kind"] == "ClusterRoleBinding" else one(rendered, "Role")
        assert binding["roleRef"]["kind"] == role["kind"]
        assert binding["roleRef"]["name"] == role["metadata"]["name"]


def test_scrapers_get_a_role_for_get_metrics_and_the_listed_readers_are_bound_to_it(helm: Helm) -> None:
    objects = helm.template([EXAMPLES["aws"]])
    (reader,) = [
        o for o in of_kind(objects, "ClusterRole") if o["metadata"]["name"].endswith("-metrics-reader")
    ]
    assert reader["rules"] == [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]
    (binding,) = [
        b
        for b in of_kind(objects, "ClusterRoleBinding")
        if b["roleRef"]["name"] == reader["metadata"]["name"]
    ]
    assert binding["subjects"] == chart_values("aws")["metrics"]["readers"]
    unbound = helm.template([EXAMPLES["aws"]], sets={"metrics.readers": []})
    assert all(
        b["roleRef"]["name"] != reader["metadata"]["name"] for b in of_kind(unbound, "ClusterRoleBinding")
    )


def test_rbac_template_holds_all_rbac_and_nothing_else(helm: Helm) -> None:
    """The e2e tier applies `--show-only templates/rbac.yaml` to a real API server."""
    kinds = sorted(o["kind"] for o in helm.template([EXAMPLES["aws"]], show_only="templates/rbac.yaml"))
    assert kinds == [
        "ClusterRole",
        "ClusterRole",
        "ClusterRoleBinding",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
    ]


def test_pod_is_hardened(rendered: list[Manifest], example: str) -> None:
    uid = chart_values(example)["runAsUser"]
    pod = pod_spec(rendered)["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert pod["runAsUser"] == uid != 0
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    container = controller(rendered)["securityContext"]
    assert container["runAsNonRoot"] is True
    assert container["runAsUser"] == uid
    assert container["readOnlyRootFilesystem"] is True
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"] == {"drop": ["ALL"]}
    assert container["seccompProfile"] == {"type": "RuntimeDefault"}


def test_pod_runs_on_host_network_before_pod_networking_works(rendered: list[Manifest]) -> None:
    spec = pod_spec(rendered)
    assert spec["hostNetwork"] is True
    assert spec["priorityClassName"] == "system-cluster-critical"
    assert {t["key"] for t in spec["tolerations"]} >= TOLERATED_TAINTS
    assert all(t["operator"] == "Exists" for t in spec["tolerations"])


def test_names_resolve_through_the_nodes_resolver_not_cluster_dns(rendered: list[Manifest]) -> None:
    """ClusterFirstWithHostNet would send the cloud endpoints' names to CoreDNS, whose pods have no
    network until routectl has programmed it: a bootstrap deadlock."""
    assert pod_spec(rendered)["dnsPolicy"] == "Default"


def test_dns_policy_and_config_can_be_chosen(helm: Helm) -> None:
    dns = {"nameservers": ["10.0.0.2"], "options": [{"name": "ndots", "value": "1"}]}
    spec = pod_spec(helm.template([EXAMPLES["gcp"]], sets={"dnsPolicy": "None", "dnsConfig": dns}))
    assert (spec["dnsPolicy"], spec["dnsConfig"]) == ("None", dns)


def test_probes_hit_healthz_and_readyz_on_loopback(rendered: list[Manifest]) -> None:
    container = controller(rendered)
    host, _, port = settings(rendered)["health-probe-bind-address"].rpartition(":")
    assert host == "127.0.0.1"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["health"] == int(port)
    assert container["livenessProbe"]["httpGet"] == {
        "host": "127.0.0.1",
        "path": "/healthz",
        "port": "health",
    }
    assert container["readinessProbe"]["httpGet"] == {
        "host": "127.0.0.1",
        "path": "/readyz",
        "port": "health",
    }
    assert container["resources"]["requests"]


def test_metrics_are_https_on_every_address_or_plain_http_on_loopback_only(helm: Helm) -> None:
    secure = helm.template([EXAMPLES["aws"]])
    assert settings(secure)["metrics-bind-address"] == ":10290"
    assert settings(secure)["metrics-secure"] is True
    assert one(secure, "Service")["spec"]["ports"][0]["appProtocol"] == "https"
    plain = helm.template([EXAMPLES["aws"]], sets={"metrics.secure": False})
    assert settings(plain)["metrics-bind-address"] == "127.0.0.1:10290"
    assert settings(plain)["metrics-secure"] is False
    assert of_kind(plain, "Service") == []
    reviews = {"tokenreviews", "subjectaccessreviews"}  # which rules exactly: test_rbac.py
    assert reviews <= {r for rule in controller_role(secure)["rules"] for r in rule["resources"]}
    assert reviews.isdisjoint(r for rule in controller_role(plain)["rules"] for r in rule["resources"])
    off = helm.template([EXAMPLES["aws"]], sets={"metrics.enabled": False})
    assert settings(off)["metrics-bind-address"] == "0"


def test_a_mounted_metrics_certificate_is_passed_and_verified_by_the_service_monitor(helm: Helm) -> None:
    objects = helm.template(
        [EXAMPLES["aws"]], sets={"metrics.certSecret": "routectl-metrics-tls"}, api_versions=[MONITORING_API]
    )
    cert_dir = settings(objects)["metrics-cert-dir"]
    (mount,) = [m for m in controller(objects)["volumeMounts"] if m["mountPath"] == cert_dir]
    (volume,) = [v for v in pod_spec(objects)["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"]["secretName"] == "routectl-metrics-tls"
    (endpoint,) = one(objects, "ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["tlsConfig"] == {
        "serverName": f"{one(objects, 'Service')['metadata']['name']}.{NAMESPACE}.svc",
        "ca": {"secret": {"name": "routectl-metrics-tls", "key": "ca.crt"}},
    }


def test_pod_identity_comes_from_the_downward_api(rendered: list[Manifest]) -> None:
    env = {e["name"]: e for e in controller(rendered)["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"


def test_replicas_with_leader_election_get_pdb_and_hostname_anti_affinity(helm: Helm) -> None:
    objects = helm.template([EXAMPLES["aws"]], sets={"replicaCount": 3})
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert one(objects, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    (term,) = pod_spec(objects)["affinity"]["podAntiAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]


def test_single_replica_without_leader_election_recreates_and_has_no_pdb(helm: Helm) -> None:
    objects = helm.template([EXAMPLES["aws"]], sets={"replicaCount": 1, "leaderElection.enabled": False})
    assert one(objects, "Deployment")["spec"]["strategy"] == {"type": "Recreate"}
    assert of_kind(objects, "PodDisruptionBudget") == []
    assert settings(objects)["leader-elect"] is False


def test_service_account_carries_the_cloud_identity_annotations(
    rendered: list[Manifest], example: str
) -> None:
    wanted = chart_values(example)["serviceAccount"]["annotations"]
    annotations = one(rendered, "ServiceAccount")["metadata"].get("annotations", {})
    assert annotations == wanted


@pytest.mark.parametrize(
    "annotation",
    ["eks.amazonaws.com/role-arn", "pod-identity.alibabacloud.com/role-name"],
)
def test_each_workload_identity_annotation_reaches_the_service_account(helm: Helm, annotation: str) -> None:
    objects = helm.template([EXAMPLES["aws"]], sets={"serviceAccount.annotations": {annotation: "x"}})
    assert one(objects, "ServiceAccount")["metadata"]["annotations"][annotation] == "x"


def test_existing_secret_becomes_env_and_no_secret_is_rendered(helm: Helm) -> None:
    objects = helm.template([EXAMPLES["aws"]], sets={"existingSecret": "aws-keys"})
    assert controller(objects)["envFrom"] == [{"secretRef": {"name": "aws-keys"}}]
    assert of_kind(objects, "Secret") == []


def test_without_existing_secret_the_pod_reads_no_secret(helm: Helm) -> None:
    objects = helm.template([EXAMPLES["gcp"]])
    assert "envFrom" not in controller(objects)
    assert all("secret" not in v for v in pod_spec(objects)["volumes"])


def test_every_object_carries_the_standard_labels(rendered: list[Manifest]) -> None:
    for obj in rendered:
        assert set(obj["metadata"]["labels"]) >= STANDARD_LABELS, obj["kind"]


def test_dockerfile_user_is_the_charts_fixed_uid() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\d+)(?::\d+)?\s*$", dockerfile, re.MULTILINE)
    assert users == [str(chart_values("aws")["runAsUser"])]

"""`helm install`, `upgrade` and `uninstall` of each helm/routectl/ci/*-values.yaml against the real API
server, then routectl run from exactly what helm created there.

The pod is started by tests/e2e/kubelet.py from the Deployment as the API server holds it (ConfigMap,
projected ServiceAccount token, env, dnsPolicy). The clouds keep their real endpoint names
(sts.eu-west-1.amazonaws.com, compute.googleapis.com, sts.aliyuncs.com ...): a resolver standing in
for the node's answers them with a local address where tests/e2e/fakenet.py ends TLS and hands each
request to moto (EC2, Service Quotas, STS) or the project's emulators (GCE, Alibaba VPC, and the GCP and
Alibaba token services of providers/emulators/sts.py, which verify the projected token against this API
server's signing key). Each SDK finds its credentials through its own default chain from the env and
files the chart renders; the record of every request shows the exchange and the credentials the first
cloud call carried.

What differs from a node: the pod's volumes live in test directories (paths translated), its Kubernetes
credentials are a kubeconfig with a token of its ServiceAccount, its listeners are moved to free
loopback ports through the chart's own `extraEnv`, and the clouds' CA is mounted through
`extraVolumes` (as one would for a TLS-intercepting egress proxy).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import random
import re
import ssl
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from providers.emulators.alibaba import AlibabaVpcEmulator
from providers.emulators.gce import GceEmulator
from providers.emulators.sts import AlibabaStsEmulator, GcpStsEmulator, Issuer
from routectl.reasons import CONDITION_TYPE, ConditionReason
from tests.chart.chartlib import CHART, EXAMPLES, Helm, HelmMissing, chart_values, locate
from tests.e2e.fakenet import Exchange, LocalClouds, Resolver, TestCA
from tests.e2e.kubelet import Kubelet, NodeDns, Pod, PodProcess, mount_namespaces_work
from tests.providers.aws.awsworld import world_on
from tests.support.apiserver import ControlPlane, free_port
from tests.support.binaries import BinariesMissing, cache_dir_from_env, locate_monitoring_crds
from tests.support.routectl_proc import eventually

CONVERGE_TIMEOUT_S = 90.0
DOCS = "https://github.com/routectl/routectl/blob/main/docs"
CA_MOUNT = "/etc/ssl/local-clouds"
ROUTE_CREATED = ("False", ConditionReason.ROUTE_CREATED.value)


def figure(text: str) -> None:
    """A measured figure, printed for docs (run with -s); never asserted."""
    print(f"\ne2e figure: {text}")


# --- the cluster side: helm, the mini-kubelet, admin reads ------------------------------------------


@dataclass(frozen=True, slots=True)
class Cluster:
    plane: ControlPlane
    api: client.ApiClient
    helm: Helm
    helm_env: dict[str, str]
    kubelet: Kubelet

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.api)

    def helm_run(self, *args: str) -> str:
        return self.helm.run(*args, env=self.helm_env)

    def lease_holder(self, namespace: str, name: str) -> str | None:
        try:
            lease = client.CoordinationV1Api(self.api).read_namespaced_lease(name, namespace)
        except ApiException as err:
            if err.status == 404:
                return None
            raise
        return str(lease.spec.holder_identity or "")


@pytest.fixture(scope="module")
def cluster(
    control_plane: ControlPlane, admin_api: client.ApiClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    why_not = mount_namespaces_work()
    try:
        helm = Helm(locate())
    except HelmMissing as missing:
        why_not = why_not or str(missing)
    if why_not:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and the install tests cannot run: {why_not}", pytrace=False)
        pytest.skip(f"*** INSTALL TESTS SKIPPED: {why_not} ***")
    home = tmp_path_factory.mktemp("helm-home")
    env = {"KUBECONFIG": str(control_plane.admin_kubeconfig(home / "kubeconfig")), "HOME": str(home)}
    dns = NodeDns(node_resolv_conf="", cluster_dns="")  # replaced per test by `Node`
    kubelet = Kubelet(control_plane, admin_api, tmp_path_factory.mktemp("pods"), dns)
    yield Cluster(control_plane, admin_api, helm, env, kubelet)
    kubelet.stop_all()


# --- the node's network: its resolver, the clouds behind their names --------------------------------


@dataclass(slots=True)
class Node:
    """One test's view of the outside: local clouds behind their real names, a resolver for them."""

    clouds: LocalClouds
    resolver: Resolver
    ca: TestCA
    moto: str
    gce: GceEmulator
    gcp_sts: GcpStsEmulator
    alibaba_vpc: AlibabaVpcEmulator
    alibaba_sts: AlibabaStsEmulator


def _loopback() -> str:
    """A loopback address of its own for each test, so listeners never collide across runs."""
    return f"127.{random.randint(100, 250)}.{random.randint(1, 250)}.{random.randint(1, 250)}"


@pytest.fixture
def node(cluster: Cluster, moto_endpoint: str, tmp_path: Path) -> Iterator[Node]:
    issuer = Issuer(
        cluster.plane.service_account_issuer,
        [load_pem_public_key(cluster.plane.service_account_public_key())],  # type: ignore[list-item]
    )
    gcp = chart_values("gcp")["workloadIdentity"]["gcp"]
    alibaba = chart_values("alibaba")["workloadIdentity"]["alibaba"]
    with ExitStack() as stack:
        gce = stack.enter_context(GceEmulator())
        gcp_sts = stack.enter_context(
            GcpStsEmulator(
                issuer,
                provider=gcp["audience"],
                token_audience="https:" + gcp["audience"],
                service_accounts=[gcp["serviceAccount"]],
            )
        )
        vpc = stack.enter_context(AlibabaVpcEmulator(region=chart_values("alibaba")["alibaba"]["region"]))
        alibaba_sts = stack.enter_context(
            AlibabaStsEmulator(
                issuer,
                role_arn=alibaba["roleARN"],
                oidc_provider_arn=alibaba["oidcProviderARN"],
                audience=alibaba["audience"],
            )
        )
        ca = TestCA(tmp_path)
        routes = {
            "*.amazonaws.com": moto_endpoint,
            "sts.googleapis.com": gcp_sts.endpoint,
            "iamcredentials.googleapis.com": gcp_sts.endpoint,
            "compute.googleapis.com": gce.endpoint,
            "sts*.aliyuncs.com": alibaba_sts.endpoint,
            "*.aliyuncs.com": f"http://{vpc.endpoint}",
        }
        clouds = stack.enter_context(LocalClouds(ca, routes))
        front = _loopback()
        clouds.front((front, 443))
        resolver = Resolver(_loopback(), front, clouds)
        stack.callback(resolver.close)
        # The cluster DNS Service address: nothing answers there before the pod network exists.
        cluster.kubelet.dns = NodeDns(resolver.resolv_conf(), cluster_dns=_loopback())
        yield Node(clouds, resolver, ca, moto_endpoint, gce, gcp_sts, vpc, alibaba_sts)


# --- one cloud's world and what the test checks there ------------------------------------------------


@dataclass(slots=True)
class World:
    """Instances and route tables for one example, the values that point the release at them, and how
    to read back the routes routectl made."""

    example: str
    values: dict[str, Any]
    nodes: dict[str, str]
    """Node name -> spec.providerID."""
    routes: Callable[[], dict[str, str]]
    """Every routectl-relevant route: destination -> next-hop instance, across the managed tables."""
    instance_of: dict[str, str] = field(default_factory=dict)
    tables: int = 1


def aws_world(node: Node) -> World:
    region = chart_values("aws")["aws"]["region"]
    ec2 = boto3.client(
        "ec2",
        region_name=region,
        endpoint_url=node.moto,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    world = world_on(ec2)
    tables = [world.table(), world.table()]
    instances = world.instances(3)
    names = [f"aws-{uuid.uuid4().hex[:6]}-{i}" for i in range(3)]

    def routes() -> dict[str, str]:
        found: dict[str, str] = {}
        for table in tables:
            for destination, raw in world.raw_routes(table).items():
                if raw.get("InstanceId"):
                    found[f"{table} {destination}"] = raw["InstanceId"]
        return found

    return World(
        "aws",
        {"routes": {"routeTableIDs": tables}, "aws": {"vpcID": world.vpc_id}},
        {n: f"aws:///{region}a/{i}" for n, i in zip(names, instances, strict=True)},
        routes,
        dict(zip(names, instances, strict=True)),
        tables=2,
    )


def gcp_world(node: Node) -> World:
    values = chart_values("gcp")["gcp"]
    project, network, zone = values["project"], values["network"], "us-central1-a"
    node.gce.add_network(project, network)
    names = [f"gcp-{uuid.uuid4().hex[:6]}-{i}" for i in range(3)]
    for name in names:
        node.gce.add_instance(project, zone, name)

    def routes() -> dict[str, str]:
        return {
            f"{network} {r['destRange']}": str(r.get("nextHopInstance", "")).rsplit("/", 1)[-1]
            for r in node.gce.routes(project)
            if r.get("nextHopInstance")
        }

    return World(
        "gcp", {}, {n: f"gce://{project}/{zone}/{n}" for n in names}, routes, {n: n for n in names}, tables=1
    )


def alibaba_world(node: Node) -> World:
    values = chart_values("alibaba")["alibaba"]
    vpc, region = values["vpcID"], values["region"]
    tables = [node.alibaba_vpc.add_table(vpc), node.alibaba_vpc.add_table(vpc)]
    instances = [f"i-bp{uuid.uuid4().hex[:16]}" for _ in range(3)]
    node.alibaba_vpc.add_instances(vpc, *instances)
    names = [f"ali-{uuid.uuid4().hex[:6]}-{i}" for i in range(3)]

    def routes() -> dict[str, str]:
        return {
            f"{table} {r.destination}": r.next_hop
            for table in tables
            for r in node.alibaba_vpc.routes(table, type_="Custom")
        }

    return World(
        "alibaba",
        {},
        {n: f"{region}.{i}" for n, i in zip(names, instances, strict=True)},
        routes,
        dict(zip(names, instances, strict=True)),
        tables=2,
    )


WORLDS: dict[str, Callable[[Node], World]] = {"aws": aws_world, "gcp": gcp_world, "alibaba": alibaba_world}


# --- a release --------------------------------------------------------------------------------------


@dataclass(slots=True)
class Release:
    name: str
    namespace: str
    example: str
    values_file: Path
    notes: str
    metrics_port: int
    health_port: int

    @property
    def fullname(self) -> str:
        return self.name if "routectl" in self.name else f"{self.name}-routectl"


def install(cluster: Cluster, node: Node, world: World, tmp_path: Path, **extra: Any) -> Release:
    """`helm install` of the example with the overrides only this machine needs (see module docstring)."""
    namespace, name = f"inst-{uuid.uuid4().hex[:6]}", f"rt{uuid.uuid4().hex[:6]}"
    cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    cluster.core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="local-clouds-ca"), data={"ca.crt": node.ca.pem.decode()}
        ),
    )
    metrics_port, health_port = free_port(), free_port()
    bundle = f"{CA_MOUNT}/ca.crt"
    overrides = {
        **world.values,
        "extraEnv": [
            {"name": "ROUTECTL_METRICS_BIND_ADDRESS", "value": f"127.0.0.1:{metrics_port}"},
            {"name": "ROUTECTL_HEALTH_PROBE_BIND_ADDRESS", "value": f"127.0.0.1:{health_port}"},
            *({"name": k, "value": bundle} for k in ("AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")),
        ],
        "extraVolumes": [{"name": "local-clouds-ca", "configMap": {"name": "local-clouds-ca"}}],
        "extraVolumeMounts": [{"name": "local-clouds-ca", "mountPath": CA_MOUNT, "readOnly": True}],
        **extra,
    }
    values_file = tmp_path / f"{name}-overrides.yaml"
    values_file.write_text(yaml.safe_dump(overrides))
    notes = cluster.helm_run(
        "install",
        name,
        str(CHART),
        "-n",
        namespace,
        "-f",
        str(EXAMPLES[world.example]),
        "-f",
        str(values_file),
    )
    return Release(name, namespace, world.example, values_file, notes, metrics_port, health_port)


def create_nodes(cluster: Cluster, world: World) -> None:
    for name, provider_id in world.nodes.items():
        cluster.core.create_node(
            client.V1Node(
                metadata=client.V1ObjectMeta(name=name), spec=client.V1NodeSpec(provider_id=provider_id)
            )
        )


def delete_nodes(cluster: Cluster, world: World) -> None:
    for name in world.nodes:
        try:
            cluster.core.delete_node(name)
        except ApiException as err:
            if err.status != 404:
                raise


def routed(cluster: Cluster, world: World) -> bool:
    """Every node has its podCIDR(s), each routed to its instance in every managed table, and
    NetworkUnavailable=False/RouteCreated."""
    routes = world.routes()
    for name, instance in world.instance_of.items():
        node = cluster.core.read_node(name)
        cidrs = node.spec.pod_cidrs or []
        conditions = [c for c in (node.status.conditions or []) if c.type == CONDITION_TYPE]
        if not cidrs or not conditions or (conditions[0].status, conditions[0].reason) != ROUTE_CREATED:
            return False
        for cidr in cidrs:
            matching = [k for k, v in routes.items() if k.endswith(f" {cidr}") and v == instance]
            if len(matching) != world.tables:
                return False
    return True


def run_pod(cluster: Cluster, release: Release, *extra: str) -> tuple[Pod, PodProcess]:
    pod = cluster.kubelet.pod_of(release.namespace, release.fullname)
    return pod, cluster.kubelet.start(pod, *extra)


def release_objects(cluster: Cluster, release: Release) -> list[str]:
    """kind/name of every object of the release that still exists (what uninstall must remove)."""
    selector = {"label_selector": f"app.kubernetes.io/instance={release.name}"}
    ns = release.namespace
    rbac = client.RbacAuthorizationV1Api(cluster.api)
    listings: dict[str, Callable[[], Any]] = {
        "Deployment": lambda: cluster.apps.list_namespaced_deployment(ns, **selector),
        "ConfigMap": lambda: cluster.core.list_namespaced_config_map(ns, **selector),
        "ServiceAccount": lambda: cluster.core.list_namespaced_service_account(ns, **selector),
        "Service": lambda: cluster.core.list_namespaced_service(ns, **selector),
        "ClusterRole": lambda: rbac.list_cluster_role(**selector),
        "ClusterRoleBinding": lambda: rbac.list_cluster_role_binding(**selector),
        "Role": lambda: rbac.list_namespaced_role(ns, **selector),
        "RoleBinding": lambda: rbac.list_namespaced_role_binding(ns, **selector),
        "PodDisruptionBudget": lambda: client.PolicyV1Api(cluster.api).list_namespaced_pod_disruption_budget(
            ns, **selector
        ),
    }
    found = [f"{kind}/{o.metadata.name}" for kind, listing in listings.items() for o in listing().items]
    custom = client.CustomObjectsApi(cluster.api)
    for plural in ("servicemonitors", "prometheusrules"):
        try:
            listed = custom.list_namespaced_custom_object(
                "monitoring.coreos.com", "v1", ns, plural, **selector
            )
        except ApiException as err:
            if err.status != 404:
                raise
            continue
        found += [f"{plural}/{o['metadata']['name']}" for o in listed["items"]]
    return sorted(found)


# --- what the records show about identity ------------------------------------------------------------


def _jwt_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


def first_cloud_call(node: Node, pattern: str, sts: str) -> Exchange:
    (call, *_) = [e for e in node.clouds.exchanges(pattern) if not re.fullmatch(sts, e.host)]
    return call


def assert_aws_exchanged_the_projected_token(node: Node, release: Release) -> str:
    (exchange,) = node.clouds.exchanges("sts.*.amazonaws.com")
    sent = exchange.query
    assert sent["Action"] == "AssumeRoleWithWebIdentity"
    assert sent["RoleArn"] == chart_values("aws")["workloadIdentity"]["aws"]["roleARN"]
    claims = _jwt_claims(sent["WebIdentityToken"])
    assert claims["aud"] == ["sts.amazonaws.com"]
    assert claims["sub"] == f"system:serviceaccount:{release.namespace}:{release.fullname}"
    (key_id,) = re.findall(rb"<AccessKeyId>([^<]+)</AccessKeyId>", exchange.response)
    call = first_cloud_call(node, "*.amazonaws.com", r"sts\..*")
    assert f"Credential={key_id.decode()}/" in call.headers["authorization"]
    assert call.headers["x-amz-security-token"]
    return f"{exchange.host} -> {call.host} as {key_id.decode()}"


def assert_gcp_exchanged_the_projected_token(node: Node, release: Release) -> str:
    """Each of the adapter's compute clients holds credentials of its own, so each exchanges once."""
    exchanges = node.gcp_sts.exchanges
    federated = [e for e in exchanges if e.api == "sts.token"]
    impersonated = [e for e in exchanges if e.api == "iamcredentials.generateAccessToken"]
    assert federated
    assert len(impersonated) == len(federated)
    assert {e.subject for e in federated} == {f"system:serviceaccount:{release.namespace}:{release.fullname}"}
    account = chart_values("gcp")["workloadIdentity"]["gcp"]["serviceAccount"]
    assert {e.claims["account"] for e in impersonated} == {account}
    calls = node.clouds.exchanges("compute.googleapis.com")
    issued = {f"Bearer {e.issued}" for e in impersonated}
    assert calls[0].headers["authorization"] in issued
    assert {c.headers["authorization"] for c in calls} <= issued
    return f"sts.googleapis.com, iamcredentials.googleapis.com -> {calls[0].host} as {account}"


def assert_alibaba_exchanged_the_projected_token(node: Node, release: Release) -> str:
    (exchange,) = node.alibaba_sts.exchanges
    assert exchange.subject == f"system:serviceaccount:{release.namespace}:{release.fullname}"
    call = first_cloud_call(node, "*.aliyuncs.com", r"sts.*")
    assert call.headers["x-acs-accesskey-id"] == exchange.issued
    assert call.headers["x-acs-security-token"] == exchange.secret
    assert f"Credential={exchange.issued}," in call.headers["authorization"]
    return f"{node.clouds.exchanges('sts*.aliyuncs.com')[0].host} -> {call.host} as {exchange.issued}"


IDENTITY: dict[str, Callable[[Node, Release], str]] = {
    "aws": assert_aws_exchanged_the_projected_token,
    "gcp": assert_gcp_exchanged_the_projected_token,
    "alibaba": assert_alibaba_exchanged_the_projected_token,
}


# --- the tests ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def installed(cluster: Cluster, node: Node, world: World, tmp_path: Path, **extra: Any) -> Iterator[Release]:
    """A release of `world`'s example; afterwards its pods are stopped, it is uninstalled (unless the
    test did) and the world's Nodes are deleted."""
    release = install(cluster, node, world, tmp_path, **extra)
    try:
        yield release
    finally:
        cluster.kubelet.stop_all()
        listed = cluster.helm_run("list", "-n", release.namespace, "-q")
        if release.name in listed.split():
            cluster.helm_run("uninstall", release.name, "-n", release.namespace)
        delete_nodes(cluster, world)


def upgrade(cluster: Cluster, release: Release, *sets: str) -> str:
    """`helm upgrade` with the install's values files, and `--set` for each of `sets`; the NOTES."""
    files = ["-f", str(EXAMPLES[release.example]), "-f", str(release.values_file)]
    changes = [arg for change in sets for arg in ("--set", change)]
    return cluster.helm_run("upgrade", release.name, str(CHART), "-n", release.namespace, *files, *changes)


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_each_example_installs_runs_with_its_exchanged_identity_converges_and_uninstalls(
    cluster: Cluster, node: Node, tmp_path: Path, example: str
) -> None:
    world = WORLDS[example](node)
    with installed(cluster, node, world, tmp_path) as release:
        assert f"{DOCS}/install.md" in release.notes
        create_nodes(cluster, world)
        started = time.monotonic()
        pod, process = run_pod(cluster, release)
        eventually(lambda: routed(cluster, world) or not process.running(), CONVERGE_TIMEOUT_S, "converged")
        assert process.running(), process.log_tail()
        took_s = time.monotonic() - started
        figure(f"{example}: helm-created pod -> {len(world.nodes)} nodes routed: {took_s:.1f}s")
        figure(f"{example}: {IDENTITY[example](node, release)}")

        # `kubectl exec deploy/<release> -- routectl plan`: the live settings, no flag.
        plan = cluster.kubelet.exec(pod, "plan", "--output=json")
        assert plan.code == 0, plan.log
        assert json.loads(plan.stdout)["converged"] is True

        questions = {name for name, _ in node.resolver.questions()}
        assert questions
        assert all(node.clouds.upstream(name) for name in questions), questions
        assert not [n for n in questions if n.endswith("cluster.local")]

        stopped = time.monotonic()
        process.terminate()
        assert process.wait(60) == 0
        figure(f"{example}: SIGTERM -> exit, idle: {time.monotonic() - stopped:.2f}s")

        routes_before = world.routes()
        cidrs_before = {n: cluster.core.read_node(n).spec.pod_cidrs for n in world.nodes}
        cluster.helm_run("uninstall", release.name, "-n", release.namespace)
        assert release_objects(cluster, release) == []
        # Uninstalling leaves the pod network as it is: podCIDRs on the Nodes, routes in the tables.
        assert world.routes() == routes_before
        assert {n: cluster.core.read_node(n).spec.pod_cidrs for n in world.nodes} == cidrs_before


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_upgrade_with_a_changed_value_rolls_the_deployment_and_with_the_same_values_does_not(
    cluster: Cluster, node: Node, tmp_path: Path, example: str
) -> None:
    def template(release: Release) -> dict[str, Any]:
        read = cluster.apps.read_namespaced_deployment(release.fullname, release.namespace)
        spec: dict[str, Any] = client.ApiClient().sanitize_for_serialization(read.spec.template)
        return spec

    with installed(cluster, node, WORLDS[example](node), tmp_path) as release:
        before = template(release)
        upgrade(cluster, release)
        assert template(release) == before
        upgrade(cluster, release, "logLevel=warning")
        checksum = "checksum/config"
        assert (
            template(release)["metadata"]["annotations"][checksum]
            != before["metadata"]["annotations"][checksum]
        )
        config = cluster.core.read_namespaced_config_map(release.fullname, release.namespace)
        assert yaml.safe_load(config.data["config.yaml"])["log-level"] == "warning"
        # The Deployment controller rolls the pods because the template changed (none runs here); a pod
        # started from the new template reads the new setting.
        pod = cluster.kubelet.pod_of(release.namespace, release.fullname)
        assert yaml.safe_load(Path(pod.env["ROUTECTL_CONFIG"]).read_text())["log-level"] == "warning"


def _get(port: int, token: str) -> int:
    """The status of GET /metrics with `token`; 0 while nothing listens yet."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # self-signed, as the chart's default
    request = urllib.request.Request(f"https://127.0.0.1:{port}/metrics")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            body = response.read().decode()
            assert "leader_election_master_status" in body
            return int(response.status)
    except urllib.error.HTTPError as err:
        return err.code
    except urllib.error.URLError:
        return 0


def _service_account(cluster: Cluster, namespace: str, name: str) -> str:
    """A token of the ServiceAccount (namespace and account made when missing)."""
    for create, body in (
        (cluster.core.create_namespace, client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace))),
        (
            lambda b: cluster.core.create_namespaced_service_account(namespace, b),
            client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name)),
        ),
    ):
        try:
            create(body)
        except ApiException as err:
            if err.status != 409:
                raise
    return cluster.plane.service_account_token(namespace, name)


def test_metrics_answer_no_token_401_a_token_without_the_role_403_the_scraper_200(
    cluster: Cluster, node: Node, tmp_path: Path
) -> None:
    (reader,) = chart_values("aws")["metrics"]["readers"]
    with installed(cluster, node, aws_world(node), tmp_path) as release:
        scraper = _service_account(cluster, reader["namespace"], reader["name"])
        stranger = _service_account(cluster, release.namespace, "stranger")
        _, process = run_pod(cluster, release)
        serving = lambda: _get(release.metrics_port, "") == 401 or not process.running()  # noqa: E731
        eventually(serving, 60, "metrics serving")
        assert process.running(), process.log_tail()

        assert _get(release.metrics_port, "") == 401
        assert _get(release.metrics_port, "not-a-token") == 401
        assert _get(release.metrics_port, stranger) == 403
        assert _get(release.metrics_port, scraper) == 200


def test_sigterm_with_a_cloud_write_in_flight_releases_the_lease_and_exits_within_the_grace_period(
    cluster: Cluster, node: Node, tmp_path: Path
) -> None:
    world = aws_world(node)
    lease = chart_values("aws")["leaderElection"]["leaseName"]
    answer = node.clouds.hold("ec2.*.amazonaws.com", b"Action=CreateRoute")
    try:
        with installed(cluster, node, world, tmp_path) as release:
            deployment = cluster.apps.read_namespaced_deployment(release.fullname, release.namespace)
            grace_s = deployment.spec.template.spec.termination_grace_period_seconds
            _, process = run_pod(cluster, release)
            eventually(lambda: bool(cluster.lease_holder(release.namespace, lease)), 60, "routectl leads")
            create_nodes(cluster, world)
            eventually(lambda: node.clouds.holding() > 0, 60, "a CreateRoute in flight")
            terminated = time.monotonic()
            process.terminate()
            code = process.wait(grace_s)
            took_s = time.monotonic() - terminated

            assert code == 0, process.log_tail()
            assert took_s < grace_s
            assert cluster.lease_holder(release.namespace, lease) == ""
            assert process.logged("released lease")
            (drained,) = process.logged("drain window over with work in flight; its writes are fenced off")
            assert drained["count"] >= 1
            figure(f"aws: SIGTERM -> exit with a CreateRoute unanswered: {took_s:.2f}s (grace {grace_s}s)")
    finally:
        answer.set()


def test_with_cluster_dns_routectl_cannot_reach_the_cloud_and_with_the_nodes_resolver_it_needs_no_cluster_dns(
    cluster: Cluster, node: Node, tmp_path: Path
) -> None:
    """ClusterFirstWithHostNet (the chart before) sends the cloud's names to cluster DNS, which is down
    until the pod network routectl programs exists; dnsPolicy Default (the chart now) asks the node's
    resolver, and routectl asks it nothing but the cloud's API names."""
    world = aws_world(node)
    with installed(cluster, node, world, tmp_path, dnsPolicy="ClusterFirstWithHostNet") as release:
        create_nodes(cluster, world)
        _, process = run_pod(cluster, release)
        assert process.wait(60) != 0
        assert node.resolver.questions() == []  # nothing reached the node's resolver
        assert node.clouds.exchanges() == []  # nor any cloud
        assert not routed(cluster, world)

        upgrade(cluster, release, "dnsPolicy=Default")
        _, process = run_pod(cluster, release)
        eventually(lambda: routed(cluster, world) or not process.running(), CONVERGE_TIMEOUT_S, "converged")
        assert process.running(), process.log_tail()
        asked = sorted({name for name, _ in node.resolver.questions()})
        region = chart_values("aws")["aws"]["region"]
        assert set(asked) <= {f"{api}.{region}.amazonaws.com" for api in ("sts", "ec2", "servicequotas")}
        assert f"ec2.{region}.amazonaws.com" in asked
        figure(f"dnsPolicy Default: names routectl resolved: {', '.join(asked)}")


def test_monitoring_objects_appear_once_the_operators_api_exists_and_go_with_the_release(
    cluster: Cluster, node: Node, tmp_path: Path
) -> None:
    try:
        crds = locate_monitoring_crds(cache_dir_from_env())
    except BinariesMissing as missing:
        if os.environ.get("CI") == "true":
            pytest.fail(str(missing), pytrace=False)
        pytest.skip(f"*** MONITORING CRD TEST SKIPPED: {missing} ***")
    names = [yaml.safe_load(path.read_text())["metadata"]["name"] for path in crds]
    extensions = client.ApiextensionsV1Api(cluster.api)
    try:
        with installed(cluster, node, aws_world(node), tmp_path) as release:
            kinds = {name.split("/")[0] for name in release_objects(cluster, release)}
            assert not kinds & {"servicemonitors", "prometheusrules"}
            assert "No ServiceMonitor/PrometheusRule was created" in release.notes

            cluster.plane.apply_manifests(yaml.safe_load(path.read_text()) for path in crds)
            for name in names:
                eventually(lambda n=name: _established(extensions, n), 30, f"CRD {name} established")  # type: ignore[misc]
            notes = upgrade(cluster, release)
            assert "No ServiceMonitor/PrometheusRule was created" not in notes
            kinds = {name.split("/")[0] for name in release_objects(cluster, release)}
            assert {"servicemonitors", "prometheusrules"} <= kinds

            cluster.helm_run("uninstall", release.name, "-n", release.namespace)
            assert release_objects(cluster, release) == []
    finally:
        for name in names:
            try:
                extensions.delete_custom_resource_definition(name)
            except ApiException as err:
                if err.status != 404:
                    raise


def _established(extensions: client.ApiextensionsV1Api, name: str) -> bool:
    conditions = extensions.read_custom_resource_definition(name).status.conditions or []
    return any(c.type == "Established" and c.status == "True" for c in conditions)

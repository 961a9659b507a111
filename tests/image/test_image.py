"""The container image as the chart runs it: its uid, a read-only root, no capabilities.

It reports its version and help, says in one line what a left-out package would bring (the demo's moto, a
cloud SDK of a single-cloud image), runs the demo where nothing is left out, and runs the controller with
exactly the chart's arguments, env and in-cluster identity against the e2e tier's kube-apiserver and moto's
EC2 (host network, everything on 127.0.0.1) until the nodes are converged.
"""

from __future__ import annotations

import base64
import ssl
import subprocess
import tomllib
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from providers.emulators.isolation import METADATA_PROBES_OFF
from routectl.cli import COMMANDS
from tests.chart.chartlib import (
    EXAMPLES,
    Helm,
    Manifest,
    chart_values,
    config_map,
    controller,
    locate,
    pod_env,
    pod_spec,
)
from tests.e2e.kubelet import Kubelet, NodeDns
from tests.e2e.test_controller_e2e import Cloud, add_nodes, routed
from tests.image.imagelib import (
    Images,
    a_kubeconfig,
    env_options,
    one_line,
    readable,
    security_options,
    volume_options,
)
from tests.providers.aws.awsworld import REGION
from tests.support.apiserver import ControlPlane, free_port
from tests.support.cluster import Installed, Kube, install_chart_rbac
from tests.support.routectl_proc import denials, eventually, read_log

REPO = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
CONVERGE_TIMEOUT_S = 120.0
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


@pytest.fixture(scope="module")
def chart() -> list[Manifest]:
    """The chart rendered for the AWS example, as operators install it."""
    return Helm(locate()).template([EXAMPLES["aws"]])


@pytest.fixture(params=["every_cloud", "aws_only"])
def image(request: pytest.FixtureRequest, images: Images) -> str:
    tag: str = getattr(images, request.param)
    return tag


def no_network(chart: Sequence[Manifest]) -> list[str]:
    return [*security_options(chart), "--network=none"]


def test_the_image_runs_as_the_charts_uid_and_says_its_version_and_help_on_a_read_only_root(
    images: Images, image: str, chart: list[Manifest]
) -> None:
    config = images.docker.image(image)["Config"]
    context = controller(chart)["securityContext"]
    assert config["User"] == f"{context['runAsUser']}:{context['runAsGroup']}"
    assert config["Entrypoint"] == ["routectl"]
    whoami = images.docker.run(
        image,
        "-c",
        "import os; print(os.getuid(), os.getgid())",
        options=["--network=none", "--read-only", "--entrypoint=python3"],
    )
    assert whoami.stdout.split() == ["65532", "65532"], whoami.stderr
    version = images.docker.run(image, "version", options=no_network(chart))
    assert (version.code, version.stdout.strip()) == (0, f"routectl {VERSION}"), version.stderr
    usage = images.docker.run(image, "--help", options=no_network(chart))
    assert usage.code == 0, usage.stderr
    assert "{" + ",".join(COMMANDS) + "}" in usage.stdout  # the installed wheel is this checkout's CLI


def test_the_image_carries_oci_labels_and_no_pip(images: Images, image: str) -> None:
    labels = images.docker.image(image)["Config"]["Labels"]
    assert labels["org.opencontainers.image.version"] == VERSION
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    revision = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    )
    assert labels["org.opencontainers.image.revision"] == revision.stdout.strip()
    pip = images.docker.run(
        image, "-m", "pip", "--version", options=["--network=none", "--entrypoint=python3"]
    )
    assert pip.code != 0, "pip was left in the image"


def test_the_demo_in_the_image_names_what_to_install_in_one_line(
    images: Images, chart: list[Manifest]
) -> None:
    """The image ships without moto: `routectl demo` (AWS by default) says so, no traceback."""
    done = images.docker.run(images.every_cloud, "demo", options=no_network(chart))
    line = one_line(done.stderr)
    assert done.code == 2, line
    assert line.startswith("routectl demo: ")
    assert "'moto'" in line
    assert "install routectl[demo]" in line


def test_the_demo_runs_in_the_image_against_the_bundled_gce_emulator(
    images: Images, chart: list[Manifest]
) -> None:
    # As docs/install.md shows it; the demo itself keeps the SDKs off metadata servers.
    done = images.docker.run(
        images.every_cloud, "demo", "--provider=gcp", "--nodes=3", options=no_network(chart)
    )
    assert done.code == 0, done.stderr
    assert "node-002" in done.stdout


def test_the_aws_only_image_names_the_extra_a_gcp_provider_needs_in_one_line_and_exits_2(
    images: Images, chart: list[Manifest], tmp_path: Path
) -> None:
    kubeconfig = a_kubeconfig(tmp_path / "kubeconfig")
    args = ["run", "--kubeconfig=/kubeconfig", "--cluster-name=c", "--cluster-cidr=10.244.0.0/16"]
    args += ["--provider=gcp", "--project=my-project", "--network=n"]
    options = [*no_network(chart), f"--volume={kubeconfig}:/kubeconfig:ro"]
    done = images.docker.run(images.aws_only, *args, options=options)
    line = one_line(done.stderr)
    assert done.code == 2, line
    assert "--provider gcp: providers.gcp needs the Python module 'google'" in line
    assert "install routectl[gcp]" in line


# --- the controller, as the chart's Deployment runs it --------------------------------------------


def service_account_files(plane: ControlPlane, namespace: str, account: str, directory: Path) -> Path:
    """What the kubelet mounts for the Pod's ServiceAccount: a bound token, the API server's CA and the
    namespace, readable by the image's uid."""
    directory.mkdir()
    token = plane.service_account_token(namespace, account)
    kubeconfig = plane.kubeconfig_for_token(token, directory / "kubeconfig")
    cluster = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]
    kubeconfig.unlink()
    (directory / "token").write_text(token)
    (directory / "ca.crt").write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
    (directory / "namespace").write_text(namespace)
    return readable(directory)


@pytest.fixture
def container(images: Images) -> Iterator[str]:
    name = f"routectl-image-test-{uuid.uuid4().hex[:8]}"
    yield name
    images.docker.remove(name)


def deployment_for(cloud: Cloud, endpoint: str, metrics_port: int, health_port: int) -> list[Manifest]:
    """The chart rendered for the AWS example, pointed at this test's VPC in moto. Health listens on
    127.0.0.1 (the chart's default); metrics, HTTPS on every address by default, are moved to loopback
    with the chart's own `extraEnv`: on the host network no server of a test listens beyond it."""
    values: dict[str, Any] = {
        "clusterName": cloud.cluster_name,
        "routes.routeTableIDs": list(cloud.tables),
        "aws.region": REGION,
        "aws.vpcID": cloud.world.vpc_id,
        "cloud.endpoint": endpoint,
        "metrics.port": metrics_port,
        "health.port": health_port,
        "extraEnv": [{"name": "ROUTECTL_METRICS_BIND_ADDRESS", "value": f"127.0.0.1:{metrics_port}"}],
    }
    return Helm(locate()).template([EXAMPLES["aws"]], sets=values)


def pod_volumes(
    objects: Sequence[Manifest], plane: ControlPlane, api: client.ApiClient, namespace: str, workdir: Path
) -> dict[str, Path]:
    """A directory per volume of the pod that is not an emptyDir, laid out as the kubelet would: the
    rendered ConfigMap (config.yaml) applied to the API server and read back, the projected token minted
    for the pod's ServiceAccount with the volume's audience."""
    plane.apply_manifests([config_map(objects)])
    kubelet = Kubelet(plane, api, workdir, NodeDns(node_resolv_conf="", cluster_dns=""))
    spec = pod_spec(objects)
    return {
        volume["name"]: kubelet.volume(volume, namespace, spec, workdir / volume["name"])
        for volume in spec["volumes"]
        if "emptyDir" not in volume
    }


def readiness(objects: Sequence[Manifest], health_port: int) -> str:
    """The URL of the chart's readiness probe (`host: 127.0.0.1`)."""
    probe = controller(objects)["readinessProbe"]["httpGet"]
    ports = {port["name"]: port["containerPort"] for port in controller(objects)["ports"]}
    assert ports[probe["port"]] == health_port
    return f"http://{probe['host']}:{health_port}{probe['path']}"


def status_of(url: str, token: str = "") -> int:
    """The HTTP status of GET `url` (a self-signed certificate accepted, as the chart's default
    ServiceMonitor does); 0 while nothing answers."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return 0


def a_metrics_reader(plane: ControlPlane, api: client.ApiClient) -> str:
    """A token of the example's `metrics.readers` ServiceAccount (made here: the chart only binds it)."""
    (reader,) = chart_values("aws")["metrics"]["readers"]
    core = client.CoreV1Api(api)
    for create in (
        lambda: core.create_namespace(client.V1Namespace(metadata={"name": reader["namespace"]})),
        lambda: core.create_namespaced_service_account(
            reader["namespace"], client.V1ServiceAccount(metadata={"name": reader["name"]})
        ),
    ):
        try:
            create()
        except ApiException as err:
            if err.status != 409:
                raise
    return plane.service_account_token(reader["namespace"], reader["name"])


def test_the_image_runs_the_charts_controller_in_cluster_and_converges(
    images: Images,
    control_plane: ControlPlane,
    admin_api: client.ApiClient,
    chart_rbac: list[Manifest],
    moto_endpoint: str,
    cloud: Cloud,
    container: str,
    tmp_path: Path,
) -> None:
    installed: Installed = install_chart_rbac(control_plane, chart_rbac, tmp_path)
    kube = Kube(admin_api, installed)
    kube.clean()
    metrics_port, health_port = free_port(), free_port()
    objects = deployment_for(cloud, moto_endpoint, metrics_port, health_port)
    spec = pod_spec(objects)
    assert spec["hostNetwork"] is True
    args = controller(objects)["args"]
    assert [arg for arg in args if arg.startswith("--")] == ["--config=/etc/routectl/config.yaml"]
    volumes = pod_volumes(objects, control_plane, admin_api, installed.namespace, tmp_path / "volumes")
    identity = service_account_files(
        control_plane, installed.namespace, spec["serviceAccountName"], tmp_path / "serviceaccount"
    )
    env = {
        **pod_env(controller(objects), f"{container}-pod"),
        # What the kubelet sets for in-cluster config; the API server listens on loopback.
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": control_plane.url.rsplit(":", 1)[1],
        # The example's web identity needs STS; here the chain's env link answers first, with moto's keys.
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        **METADATA_PROBES_OFF,
    }
    options = [
        *security_options(objects),
        *volume_options(objects, volumes),
        "--network=host",
        f"--volume={identity}:{SERVICE_ACCOUNT_DIR}:ro",
        *env_options(env),
    ]
    images.docker.start(container, images.every_cloud, args, options)

    names = ("node-a", "node-b", "node-c")
    try:
        add_nodes(kube, cloud, *names)
        cluster_cidr = chart_values("aws")["clusterCIDRs"][0]
        eventually(
            lambda: routed(kube, cloud, names, cluster_cidr),
            CONVERGE_TIMEOUT_S,
            "every node has a podCIDR, its route in both tables and NetworkUnavailable=False",
        )
        assert status_of(readiness(objects, health_port)) == 200
        assert len({kube.pod_cidr(name) for name in names}) == len(names)
        metrics = f"https://127.0.0.1:{metrics_port}/metrics"
        assert status_of(metrics) == 401
        assert status_of(metrics, a_metrics_reader(control_plane, admin_api)) == 200
        exit_code = images.docker.stop(container, grace_s=15)
        log = tmp_path / "routectl.log"
        log.write_text(images.docker.logs(container))
        assert exit_code == 0, log.read_text()[-3000:]
        records = read_log(log)
        assert denials(records) == []
        assert any(r.get("msg") == "released lease" for r in records), log.read_text()[-3000:]
    finally:
        kube.clean()

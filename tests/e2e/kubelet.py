"""Run a Deployment's container as a local process, the way a kubelet would start its pod: from the
objects helm created in the API server, not from the chart's source.

No kubelet runs in the e2e tier, so this does its part of the work by hand, from the pod template it
reads back from the API server:
- volumes: ConfigMaps and Secrets are read from the API server and written out; a projected
  `serviceAccountToken` is minted with the TokenRequest API for the pod's ServiceAccount, with the
  audience and lifetime the volume asks for; emptyDir is an empty directory;
- env: values, `$(VAR)` references, the downward API (pod name and namespace), secret and ConfigMap
  references, envFrom;
- DNS: the pod's resolv.conf follows its `dnsPolicy` (Default: the node's resolver; ClusterFirstWithHostNet:
  the cluster DNS address, where nothing answers before the pod network exists), and the process runs in
  a mount namespace of its own where that file is /etc/resolv.conf.

Two things differ from a pod, and only these: each volume lives in a directory of the test, so every
mention of a mount path (env, args, mounted ConfigMap files) is translated to that directory; and the
Kubernetes credentials the kubelet would mount at /var/run/secrets/kubernetes.io/serviceaccount are a
kubeconfig holding a token of the same ServiceAccount (`ROUTECTL_KUBECONFIG`).

Invariant: every process started here is reaped by `stop_all()` and dies with the test process.
"""

from __future__ import annotations

import base64
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client

from providers.emulators.isolation import METADATA_PROBES_OFF
from tests.support.apiserver import ControlPlane, dying_with_parent
from tests.support.routectl_proc import ROUTECTL, LoggedProcess, LogRecord, read_log

Json = dict[str, Any]
_COMMAND_TIMEOUT_S = 90.0
_STOP_TIMEOUT_S = 60.0
_REF = re.compile(r"\$\((\w+)\)")


class PodError(Exception):
    """The pod cannot be started as specified (a missing ConfigMap key, an unsupported volume ...)."""


@dataclass(frozen=True, slots=True)
class NodeDns:
    """Where a host-network pod's lookups go: the node's resolver, or the cluster DNS address."""

    node_resolv_conf: str
    """resolv.conf of the node (dnsPolicy Default)."""
    cluster_dns: str
    """The cluster DNS Service address (dnsPolicy ClusterFirstWithHostNet)."""

    def resolv_conf(self, policy: str, namespace: str) -> str:
        if policy in ("Default", "ClusterFirst"):  # ClusterFirst on the host network falls back to Default
            return self.node_resolv_conf
        if policy == "ClusterFirstWithHostNet":
            search = f"{namespace}.svc.cluster.local svc.cluster.local cluster.local"
            return f"nameserver {self.cluster_dns}\nsearch {search}\noptions ndots:5 timeout:1 attempts:1\n"
        raise PodError(f"dnsPolicy {policy}: not modelled")


@dataclass(slots=True)
class Pod:
    """One pod of a Deployment, laid out on disk: the command line, its env and its resolv.conf."""

    name: str
    namespace: str
    argv: list[str]
    env: dict[str, str]
    resolv_conf: Path
    spec: Json = field(repr=False)
    mounts: dict[str, Path] = field(default_factory=dict)
    """mountPath -> the directory standing in for it."""

    def translate(self, text: str) -> str:
        """Every mount path in `text` (as a whole path prefix) replaced by its directory, in one pass."""
        if not self.mounts:
            return text
        paths = "|".join(re.escape(p) for p in sorted(self.mounts, key=len, reverse=True))
        pattern = re.compile(rf"(?<![\w./-])({paths})(?=/|$|[^\w.-])")
        return pattern.sub(lambda m: str(self.mounts[m.group(1)]), text)


class Kubelet:
    """Starts pods of Deployments found in one control plane; see the module docstring."""

    def __init__(self, plane: ControlPlane, api: client.ApiClient, workdir: Path, dns: NodeDns) -> None:
        self._plane = plane
        self._core = client.CoreV1Api(api)
        self._apps = client.AppsV1Api(api)
        self._workdir = workdir
        self.dns = dns
        """The node's DNS setup, written into each pod's resolv.conf by its dnsPolicy."""
        self._started: list[PodProcess] = []

    # -- laying a pod out ----------------------------------------------------------------------------

    def pod_of(self, namespace: str, deployment: str, suffix: str = "x7k2p") -> Pod:
        """The Deployment's pod as the API server holds its template now."""
        read = self._apps.read_namespaced_deployment(deployment, namespace)
        template: Json = client.ApiClient().sanitize_for_serialization(read.spec.template)
        spec: Json = template["spec"]
        name = f"{deployment}-{template['metadata']['annotations']['checksum/config'][:10]}-{suffix}"
        root = self._workdir / name
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        (container,) = spec["containers"]
        pod = Pod(name, namespace, [], {}, root / "resolv.conf", spec)
        volumes = {
            v["name"]: self.volume(v, namespace, spec, root / "volumes" / v["name"]) for v in spec["volumes"]
        }
        for mount in container.get("volumeMounts", ()):
            pod.mounts[mount["mountPath"]] = volumes[mount["name"]]
        for directory in volumes.values():  # mounted files may name other mounts (GCP's token file)
            for file in directory.rglob("*"):
                if file.is_file() and file.suffix in (".json", ".yaml"):
                    file.write_text(pod.translate(file.read_text()))
        pod.env = self._env(pod, container)
        pod.argv = [str(ROUTECTL), *(pod.translate(a) for a in container.get("args", ()))]
        pod.resolv_conf.write_text(self.dns.resolv_conf(spec.get("dnsPolicy", "ClusterFirst"), namespace))
        return pod

    def volume(self, volume: Json, namespace: str, spec: Json, directory: Path) -> Path:
        """`directory`, made and filled with what the pod's `volume` holds (the image tier mounts it)."""
        directory.mkdir(parents=True)
        if "emptyDir" in volume:
            return directory
        if "configMap" in volume:
            data = self._core.read_namespaced_config_map(volume["configMap"]["name"], namespace).data or {}
            files = {key: value.encode() for key, value in data.items()}
        elif "secret" in volume:
            raw = self._core.read_namespaced_secret(volume["secret"]["secretName"], namespace).data or {}
            files = {key: base64.b64decode(value) for key, value in raw.items()}
        elif "projected" in volume:
            files = {}
            for source in volume["projected"]["sources"]:
                token = source.get("serviceAccountToken")
                if token is None:
                    raise PodError(f"volume {volume['name']}: only serviceAccountToken sources are modelled")
                files[token["path"]] = self._plane.service_account_token(
                    namespace,
                    spec.get("serviceAccountName", "default"),
                    expiration_seconds=int(token.get("expirationSeconds", 3600)),
                    audiences=[token["audience"]] if token.get("audience") else [],
                ).encode()
        else:
            raise PodError(f"volume {volume['name']}: kind not modelled: {sorted(volume)}")
        for key, content in files.items():
            (directory / key).write_bytes(content)
        return directory

    def _env(self, pod: Pod, container: Json) -> dict[str, str]:
        env = dict(_host_env())
        for source in container.get("envFrom", ()):
            env.update(self._env_from(source, pod.namespace))
        for var in container.get("env", ()):
            if "value" in var:
                env[var["name"]] = pod.translate(
                    _REF.sub(lambda m: env.get(m.group(1), m.group(0)), var["value"])
                )
            else:
                env[var["name"]] = self._value_from(var["valueFrom"], pod)
        account = pod.spec.get("serviceAccountName", "default")
        token = self._plane.service_account_token(pod.namespace, account)
        env["ROUTECTL_KUBECONFIG"] = str(
            self._plane.kubeconfig_for_token(token, pod.resolv_conf.with_name("kubeconfig"))
        )
        return env

    def _env_from(self, source: Json, namespace: str) -> dict[str, str]:
        if "secretRef" in source:
            raw = self._core.read_namespaced_secret(source["secretRef"]["name"], namespace).data or {}
            return {key: base64.b64decode(value).decode() for key, value in raw.items()}
        if "configMapRef" in source:
            return dict(
                self._core.read_namespaced_config_map(source["configMapRef"]["name"], namespace).data or {}
            )
        raise PodError(f"envFrom {source}: not modelled")

    def _value_from(self, source: Json, pod: Pod) -> str:
        if "fieldRef" in source:
            path = source["fieldRef"]["fieldPath"]
            fields = {"metadata.name": pod.name, "metadata.namespace": pod.namespace}
            if path not in fields:
                raise PodError(f"fieldRef {path}: not modelled")
            return fields[path]
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            raw = self._core.read_namespaced_secret(ref["name"], pod.namespace).data or {}
            return base64.b64decode(raw[ref["key"]]).decode()
        if "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            return str(
                (self._core.read_namespaced_config_map(ref["name"], pod.namespace).data or {})[ref["key"]]
            )
        raise PodError(f"valueFrom {source}: not modelled")

    # -- running it ------------------------------------------------------------------------------------

    def start(self, pod: Pod, *extra: str) -> PodProcess:
        """The container's process, with `extra` appended to its args."""
        process = PodProcess(pod, [*pod.argv, *extra])
        self._started.append(process)
        return process

    def exec(self, pod: Pod, *command: str) -> Completed:
        """`kubectl exec POD -- routectl COMMAND...`: the container's env, nothing of its args."""
        log_path = pod.resolv_conf.with_name(f"exec-{command[0]}-{time.monotonic_ns()}.log")
        with log_path.open("wb") as log:
            done = subprocess.run(
                dying_with_parent(_in_pod(pod, [str(ROUTECTL), *command])),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                env=pod.env,
                timeout=_COMMAND_TIMEOUT_S,
                check=False,
            )
        return Completed(done.returncode, done.stdout.decode(), read_log(log_path))

    def stop_all(self) -> None:
        while self._started:
            self._started.pop().stop()


@dataclass(frozen=True, slots=True)
class Completed:
    code: int
    stdout: str
    log: list[LogRecord]


class PodProcess(LoggedProcess):
    """The container's main process (stdout and stderr in one log, as `kubectl logs` shows them)."""

    def __init__(self, pod: Pod, argv: Sequence[str]) -> None:
        self.pod = pod
        log_path = pod.resolv_conf.with_name(f"{pod.name}.log")
        super().__init__(_in_pod(pod, argv), pod.env, log_path, stop_timeout_s=_STOP_TIMEOUT_S)

    def terminate(self) -> None:
        self.send(signal.SIGTERM)


def _in_pod(pod: Pod, argv: Sequence[str]) -> list[str]:
    """`argv` in a mount namespace of its own whose /etc/resolv.conf is the pod's."""
    bind = f'mount --bind "{pod.resolv_conf}" /etc/resolv.conf && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", bind, "sh", *argv]


def _host_env() -> Mapping[str, str]:
    """What the image's environment gives every container: a PATH, unbuffered Python, and (tests only)
    the switches that keep the SDKs away from instance metadata."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "PYTHONUNBUFFERED": "1",
        "HOME": "/nonexistent",
        **METADATA_PROBES_OFF,
    }


def mount_namespaces_work() -> str:
    """ "" when this machine lets the tests give a process its own /etc/resolv.conf, else why not."""
    if shutil.which("unshare") is None:
        return "no unshare(1) on this machine"
    probe = subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            "mount --bind /etc/resolv.conf /etc/resolv.conf",
        ],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return "" if probe.returncode == 0 else f"cannot make a mount namespace: {probe.stderr.strip()}"

"""flannel on one node, as its DaemonSet pod and the kubelet would run it: flanneld and the CNI plugins.

Everything flannel-specific comes from the pinned release's own kube-flannel.yml: the ServiceAccount and
RBAC (applied to the control plane), flanneld's arguments (the DaemonSet's), and the bridge options the
flannel CNI plugin hands to `bridge` (the ConfigMap's `delegate`). What differs, and why:
- backend `alloc` and `Network` = the cluster CIDR (routectl's job is the routes between nodes);
- `--set-node-network-unavailable=false`: routectl owns that condition (flanneld would set it False on
  start, before any route exists);
- `EnableNFTables`: this machine has `nft` but no `iptables`; the masquerade rules are the same;
- flanneld finds its node from NODE_NAME (not POD_NAME), reaches the API server through a proxy that
  listens on 127.0.0.1 inside the node's namespace, and has no healthz listener.
`Kubelet` restarts flanneld whenever it exits (as the kubelet restarts a DaemonSet container; here after
one second, not CrashLoopBackOff's 10 s and up) and runs `bridge` + `host-local` for each pod.
Invariant: `stop()` leaves no flanneld process and no proxy thread of this node behind.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from tests.dataplane import netns
from tests.dataplane.topology import Fabric, Host
from tests.support.apiserver import ControlPlane, dying_with_parent, stop_process
from tests.support.binaries import DataplaneBinaries
from tests.support.tcpproxy import CuttableProxy

RESTART_DELAY_S = 1.0
_STOP_TIMEOUT_S = 10.0
_CNI_TIMEOUT_S = 30.0
_FLANNEL_RBAC_KINDS = ("Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding")
_HEALTHZ = "--healthz-port"


@dataclass(frozen=True, slots=True)
class FlannelRelease:
    """What the pinned kube-flannel.yml says: RBAC objects, flanneld's args, the CNI bridge options."""

    rbac: tuple[dict[str, Any], ...]
    service_account: tuple[str, str]
    """(namespace, name) of flannel's ServiceAccount."""
    args: tuple[str, ...]
    delegate: Mapping[str, Any]

    @classmethod
    def load(cls, manifest: Path) -> FlannelRelease:
        objects = [o for o in yaml.safe_load_all(manifest.read_text()) if o]
        (account,) = (o for o in objects if o["kind"] == "ServiceAccount")
        (config,) = (o for o in objects if o["kind"] == "ConfigMap")
        (daemonset,) = (o for o in objects if o["kind"] == "DaemonSet")
        (container,) = (
            c for c in daemonset["spec"]["template"]["spec"]["containers"] if c["name"] == "kube-flannel"
        )
        (plugin,) = (
            p for p in json.loads(config["data"]["cni-conf.json"])["plugins"] if p["type"] == "flannel"
        )
        return cls(
            rbac=tuple(o for o in objects if o["kind"] in _FLANNEL_RBAC_KINDS),
            service_account=(account["metadata"]["namespace"], account["metadata"]["name"]),
            args=tuple(a for a in container["args"] if not a.startswith(_HEALTHZ)),
            delegate=plugin.get("delegate", {}),
        )


@dataclass(frozen=True, slots=True)
class Pod:
    name: str
    node: str
    netns: str
    ip: ipaddress.IPv4Address

    @property
    def label(self) -> str:
        return f"{self.node}/{self.name}"


@dataclass(frozen=True, slots=True)
class SubnetEnv:
    """flanneld's subnet file (what the flannel CNI plugin reads)."""

    network: ipaddress.IPv4Network
    subnet: ipaddress.IPv4Interface
    mtu: int
    ipmasq: bool

    @classmethod
    def parse(cls, text: str) -> SubnetEnv:
        values = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
        return cls(
            network=ipaddress.IPv4Network(values["FLANNEL_NETWORK"]),
            subnet=ipaddress.IPv4Interface(values["FLANNEL_SUBNET"]),
            mtu=int(values["FLANNEL_MTU"]),
            ipmasq=values["FLANNEL_IPMASQ"] == "true",
        )


@dataclass(slots=True)
class Flannel:
    """What every node's flannel shares: the release, the control plane, flannel's token, the binaries."""

    release: FlannelRelease
    plane: ControlPlane
    token: str
    binaries: DataplaneBinaries
    cluster_cidr: str

    @classmethod
    def install(cls, plane: ControlPlane, binaries: DataplaneBinaries, cluster_cidr: str) -> Flannel:
        """Apply flannel's ServiceAccount and RBAC and mint its token (the DaemonSet's identity)."""
        release = FlannelRelease.load(binaries.flannel_manifest)
        plane.apply_manifests(release.rbac)
        token = plane.service_account_token(*release.service_account)
        return cls(release, plane, token, binaries, cluster_cidr)


@dataclass(slots=True)
class Kubelet:
    """flanneld (restarted when it exits) and CNI for one node; see the module docstring."""

    host: Host
    fabric: Fabric
    flannel: Flannel
    workdir: Path
    exits: list[int] = field(default_factory=list)
    """Exit codes of every flanneld run that ended by itself."""
    pods: dict[str, Pod] = field(default_factory=dict)
    _proxy: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    _process: subprocess.Popen[bytes] | None = None
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def subnet_file(self) -> Path:
        return self.workdir / "subnet.env"

    @property
    def log_path(self) -> Path:
        return self.workdir / "flanneld.log"

    def start(self) -> None:
        """The API server proxy inside the node's namespace, flanneld's files, and its supervisor."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        upstream = urlsplit(self.flannel.plane.url)
        assert upstream.hostname is not None
        assert upstream.port is not None
        with netns.entered(self.host.netns):
            proxy = CuttableProxy((upstream.hostname, upstream.port))  # listens in the node's namespace
        self._proxy.enter_context(proxy)  # its threads start out here: they connect in the root namespace
        self.flannel.plane.kubeconfig_for_token(self.flannel.token, self.workdir / "kubeconfig", proxy.url)
        net_conf = {
            "Network": self.flannel.cluster_cidr,
            "EnableNFTables": True,
            "Backend": {"Type": "alloc"},
        }
        (self.workdir / "net-conf.json").write_text(json.dumps(net_conf))
        self._thread = threading.Thread(target=self._supervise, name=f"kubelet-{self.host.name}")
        self._thread.start()

    def argv(self) -> list[str]:
        return [
            str(self.flannel.binaries.flanneld),
            *self.flannel.release.args,
            f"--kubeconfig-file={self.workdir / 'kubeconfig'}",
            f"--iface={self.host.uplink}",
            f"--subnet-file={self.subnet_file}",
            f"--net-config-path={self.workdir / 'net-conf.json'}",
            "--set-node-network-unavailable=false",
        ]

    def _supervise(self) -> None:
        env = {"NODE_NAME": self.host.name, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        while not self._stop.is_set():
            with self._lock:
                if self._stop.is_set():
                    return
                with self.log_path.open("ab") as log:
                    self._process = subprocess.Popen(
                        dying_with_parent(netns.in_netns(self.host.netns, self.argv())),
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env=env,
                    )
                process = self._process
            while process.poll() is None and not self._stop.wait(0.1):
                pass
            if not self._stop.is_set():
                self.exits.append(process.wait())
                self._stop.wait(RESTART_DELAY_S)

    def subnet(self) -> SubnetEnv | None:
        try:
            return SubnetEnv.parse(self.subnet_file.read_text())
        except (FileNotFoundError, KeyError):
            return None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def add_pod(self, name: str) -> Pod:
        """A pod namespace attached by `bridge` + `host-local`, configured as flannel's CNI plugin would."""
        env = self.subnet()
        if env is None:
            raise AssertionError(f"{self.host.name}: flanneld has not written {self.subnet_file}")
        pod_netns = self.fabric.namespace(f"{self.host.name}-{name}")
        conf = {
            "cniVersion": "1.0.0",
            "name": f"{self.fabric.run}-pods",
            "type": "bridge",
            "bridge": self.fabric.bridge,
            **self.flannel.release.delegate,
            "mtu": env.mtu,
            "ipMasq": not env.ipmasq,
            "isGateway": True,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": str(env.subnet.network)}]],
                "routes": [{"dst": str(env.network)}],
                "dataDir": str(self.workdir / "ipam"),
            },
        }
        result = self._cni("ADD", pod_netns, conf)
        (address,) = (ipaddress.IPv4Interface(i["address"]) for i in result["ips"])
        pod = Pod(name, self.host.name, pod_netns, address.ip)
        self.pods[name] = pod
        return pod

    def _cni(self, command: str, pod_netns: str, conf: Mapping[str, Any]) -> dict[str, Any]:
        cni_dir = self.flannel.binaries.cni_dir
        env = {
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": pod_netns,
            "CNI_NETNS": str(netns.NETNS_DIR / pod_netns),
            "CNI_IFNAME": "eth0",
            "CNI_PATH": str(cni_dir),
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        }
        done = subprocess.run(
            netns.in_netns(self.host.netns, [str(cni_dir / "bridge")]),
            input=json.dumps(conf).encode(),
            capture_output=True,
            env=env,
            timeout=_CNI_TIMEOUT_S,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"CNI {command} on {self.host.name}: {done.stdout!r} {done.stderr!r}")
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    def stop(self) -> None:
        """Stop the supervisor and flanneld, then the proxy (idempotent)."""
        self._stop.set()
        with self._lock:
            process = self._process
        if process is not None:
            stop_process(process, _STOP_TIMEOUT_S)
        if self._thread is not None:
            self._thread.join(_STOP_TIMEOUT_S)
            self._thread = None
        self._proxy.close()

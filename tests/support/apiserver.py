"""Run a real etcd and kube-apiserver on 127.0.0.1 for the e2e tier, and talk to them.

`ControlPlane` is a context manager: entering starts etcd, then kube-apiserver (RBAC authorization, a
ServiceAccount issuer, generated PKI, run-time ports) and waits for etcd's /health and the apiserver's
/readyz; leaving stops both and removes the temp dir. `stop_apiserver` / `start_apiserver` make an API
outage: kube-apiserver alone goes away and comes back at the same URL, etcd and its data untouched.
Invariant: no process started here outlives the context (terminate, then kill; each child also gets
SIGKILL from the kernel if the test process dies first), and nothing listens beyond 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import yaml
from kubernetes import client, dynamic

from tests.support.binaries import Binaries
from tests.support.pki import Pki, write_pki

FIELD_MANAGER = "routectl-e2e"
_SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
_STARTUP_TIMEOUT_S = 90.0
_STOP_TIMEOUT_S = 10.0


class ControlPlaneError(Exception):
    """etcd or kube-apiserver failed to start; the message carries the tail of its log."""


@dataclass(frozen=True, slots=True)
class ControlPlaneOptions:
    """Knobs for scenarios; the defaults are a production-like apiserver.

    `watch_cache=False` makes every watch go to etcd, so an etcd compaction turns a watch from an old
    resourceVersion into 410 Gone; `watch_cache_sizes` (e.g. ("nodes#0",)) does so per resource.
    """

    watch_cache: bool = True
    watch_cache_sizes: tuple[str, ...] = ()
    extra_apiserver_args: tuple[str, ...] = ()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def stop_process(popen: subprocess.Popen[bytes], grace_s: float) -> int:
    """SIGTERM, then SIGKILL after `grace_s`; always reaps the child. Returns its exit code."""
    if popen.poll() is None:
        popen.terminate()
        try:
            popen.wait(grace_s)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(grace_s)
    return popen.returncode


def dying_with_parent(argv: Sequence[str]) -> list[str]:
    """Prefix `argv` so the kernel SIGKILLs the child if the test process dies without cleaning up.

    util-linux's setpriv sets the parent-death signal and execs; no preexec_fn, which is unsafe with threads.
    """
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--", *argv] if setpriv else list(argv)


class _Process:
    """One child process with its output in a log file."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        with log_path.open("ab") as log:  # a restarted process appends to its predecessor's log
            self._popen = subprocess.Popen(
                dying_with_parent(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        return self._popen.pid

    def check_running(self) -> None:
        if self._popen.poll() is not None:
            raise ControlPlaneError(f"{self.name} exited with {self._popen.returncode}:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        stop_process(self._popen, _STOP_TIMEOUT_S)


class ControlPlane:
    """etcd + kube-apiserver on loopback; see the module docstring."""

    def __init__(self, binaries: Binaries, options: ControlPlaneOptions | None = None) -> None:
        self.binaries = binaries
        self.options = options or ControlPlaneOptions()
        self._processes: list[_Process] = []
        self._workdir: Path | None = None
        self._pki: Pki | None = None
        self.url = ""  # https://127.0.0.1:PORT of kube-apiserver, once started
        self.etcd_client_url = ""  # http://127.0.0.1:PORT of etcd (also its JSON gRPC gateway)

    # -- lifecycle ---------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _start(self) -> None:
        self._workdir = Path(tempfile.mkdtemp(prefix="routectl-e2e-"))
        self._pki = write_pki(self._workdir)
        etcd = self._start_etcd(self._workdir)
        _wait_until(lambda: self._etcd_json("GET", "/health").get("health") == "true", etcd)
        apiserver = self._start_apiserver(self._workdir, self._pki)
        _wait_until(lambda: self._apiserver_get("/readyz") == "ok", apiserver)

    def stop(self) -> None:
        """Stop kube-apiserver, then etcd, and remove the temp dir (idempotent)."""
        while self._processes:
            self._processes.pop().stop()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def stop_apiserver(self) -> None:
        """Stop kube-apiserver alone (an API outage); etcd keeps running with all the data."""
        (apiserver,) = (p for p in self._processes if p.name == "kube-apiserver")
        apiserver.stop()
        self._processes.remove(apiserver)

    @property
    def apiserver_running(self) -> bool:
        return any(p.name == "kube-apiserver" for p in self._processes)

    def start_apiserver(self) -> None:
        """Start kube-apiserver again on its former port (kubeconfigs and tokens stay valid: same
        PKI, same signing key) and return once /readyz answers ok."""
        port = urlsplit(self.url).port
        apiserver = self._start_apiserver(self.workdir, self._require_pki(), port)
        _wait_until(lambda: self._apiserver_get("/readyz") == "ok", apiserver)

    @property
    def workdir(self) -> Path:
        """The temp dir holding PKI, etcd data and logs; removed by `stop()`."""
        if self._workdir is None:
            raise ControlPlaneError("control plane is not running")
        return self._workdir

    @property
    def pids(self) -> tuple[int, ...]:
        return tuple(process.pid for process in self._processes)

    def _spawn(self, name: str, argv: Sequence[str], workdir: Path) -> _Process:
        process = _Process(name, argv, workdir / f"{name}.log")
        self._processes.append(process)
        return process

    def _start_etcd(self, workdir: Path) -> _Process:
        client_url = f"http://127.0.0.1:{free_port()}"
        peer_url = f"http://127.0.0.1:{free_port()}"
        self.etcd_client_url = client_url
        argv = [
            str(self.binaries.etcd),
            "--name=e2e",
            f"--data-dir={workdir / 'etcd'}",
            f"--listen-client-urls={client_url}",
            f"--advertise-client-urls={client_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=e2e={peer_url}",
            "--log-level=warn",
        ]
        if not self.binaries.etcd_is_debian_fallback:
            argv.append("--unsafe-no-fsync")  # the data dies with the test; fsync only costs time
        return self._spawn("etcd", argv, workdir)

    def _start_apiserver(self, workdir: Path, pki: Pki, port: int | None = None) -> _Process:
        port = port or free_port()
        self.url = f"https://127.0.0.1:{port}"
        argv = [
            str(self.binaries.kube_apiserver),
            f"--etcd-servers={self.etcd_client_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            "--endpoint-reconciler-type=none",  # loopback cannot be a kubernetes Service endpoint
            f"--secure-port={port}",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            "--authorization-mode=RBAC",
            f"--service-account-issuer={_SA_ISSUER}",
            f"--service-account-key-file={pki.sa_public_key}",
            f"--service-account-signing-key-file={pki.sa_signing_key}",
            "--service-cluster-ip-range=10.96.0.0/16",
            f"--watch-cache={str(self.options.watch_cache).lower()}",
            "--profiling=false",
            "--v=0",
        ]
        if self.options.watch_cache_sizes:
            argv.append(f"--watch-cache-sizes={','.join(self.options.watch_cache_sizes)}")
        argv.extend(self.options.extra_apiserver_args)
        return self._spawn("kube-apiserver", argv, workdir)

    # -- raw HTTP used while starting and for etcd -------------------------------------------------

    def _require_pki(self) -> Pki:
        if self._pki is None or self._workdir is None:
            raise ControlPlaneError("control plane is not running")
        return self._pki

    def _apiserver_get(self, path: str) -> str:
        pki = self._require_pki()
        context = ssl.create_default_context(cafile=str(pki.ca_cert))
        context.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
        with urllib.request.urlopen(self.url + path, context=context, timeout=5) as response:
            body: bytes = response.read()
            return body.decode()

    def _etcd_json(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.etcd_client_url + path, data=data, method=method)
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())

    # -- helpers for tests -------------------------------------------------------------------------

    def etcd_revision(self) -> int:
        """etcd's current revision (what Kubernetes resourceVersions are made of)."""
        status = self._etcd_json("POST", "/v3/maintenance/status", {})
        return int(status["header"]["revision"])

    def compact_etcd(self) -> int:
        """Compact etcd up to its current revision (physically) and return that revision.

        Afterwards any watch or list at an older resourceVersion that reaches etcd gets 410 Gone.
        """
        revision = self.etcd_revision()
        self._etcd_json("POST", "/v3/kv/compaction", {"revision": str(revision), "physical": True})
        return revision

    def _base_configuration(self) -> client.Configuration:
        pki = self._require_pki()
        configuration = client.Configuration()
        configuration.host = self.url
        configuration.ssl_ca_cert = str(pki.ca_cert)
        return configuration

    def admin_api_client(self) -> client.ApiClient:
        """A client authenticated as system:masters (bypasses RBAC); close it, or use `with`."""
        pki = self._require_pki()
        configuration = self._base_configuration()
        configuration.cert_file = str(pki.admin_cert)
        configuration.key_file = str(pki.admin_key)
        return client.ApiClient(configuration)

    def service_account_token(
        self, namespace: str, name: str, expiration_seconds: int = 3600, audiences: Sequence[str] = ()
    ) -> str:
        """A bound token for an existing ServiceAccount, minted with the TokenRequest API (what the
        kubelet does for a projected `serviceAccountToken` volume); no audience: the API server's own."""
        request = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=list(audiences), expiration_seconds=expiration_seconds)
        )
        with self.admin_api_client() as api:
            response = client.CoreV1Api(api).create_namespaced_service_account_token(name, namespace, request)
        if response.status is None or not response.status.token:
            raise ControlPlaneError(f"TokenRequest for {namespace}/{name} returned no token")
        token: str = response.status.token
        return token

    @property
    def service_account_issuer(self) -> str:
        """The `iss` of the ServiceAccount tokens this API server signs."""
        return _SA_ISSUER

    def service_account_public_key(self) -> bytes:
        """PEM of the key that verifies those tokens (what an STS fetches from the issuer's JWKS)."""
        return self._require_pki().sa_public_key.read_bytes()

    def admin_kubeconfig(self, path: Path) -> Path:
        """A kubeconfig authenticating as system:masters (helm's, in the install tests)."""
        pki = self._require_pki()

        def encode(file: Path) -> str:
            return base64.b64encode(file.read_bytes()).decode()

        cluster = {"server": self.url, "certificate-authority-data": encode(pki.ca_cert)}
        kubeconfig = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "e2e", "cluster": cluster}],
            "users": [
                {
                    "name": "admin",
                    "user": {
                        "client-certificate-data": encode(pki.admin_cert),
                        "client-key-data": encode(pki.admin_key),
                    },
                }
            ],
            "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": "admin"}}],
            "current-context": "e2e",
        }
        path.write_text(yaml.safe_dump(kubeconfig))
        path.chmod(0o600)
        return path

    def kubeconfig_for_token(self, token: str, path: Path, server: str = "") -> Path:
        """Write a self-contained kubeconfig (CA embedded) that authenticates with `token`, for the API
        server or, when given, `server` (a proxy in front of it: the certificate names 127.0.0.1)."""
        ca_data = base64.b64encode(self._require_pki().ca_cert.read_bytes()).decode()
        cluster = {"server": server or self.url, "certificate-authority-data": ca_data}
        kubeconfig = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "e2e", "cluster": cluster}],
            "users": [{"name": "e2e", "user": {"token": token}}],
            "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": "e2e"}}],
            "current-context": "e2e",
        }
        path.write_text(yaml.safe_dump(kubeconfig))
        path.chmod(0o600)
        return path

    def apply_manifests(self, objects: Iterable[Mapping[str, Any]]) -> None:
        """Server-side apply each object (any kind; RBAC, ServiceAccounts, Namespaces ...) as admin.

        Idempotent, so the same rendered chart can be applied by several tests of one session.
        """
        workdir = self._workdir
        if workdir is None:
            raise ControlPlaneError("control plane is not running")
        with self.admin_api_client() as api:
            discovery_cache = str(workdir / "discovery.json")
            resources = dynamic.DynamicClient(api, cache_file=discovery_cache).resources  # type: ignore[no-untyped-call]
            for obj in objects:
                resource = resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
                namespace = obj.get("metadata", {}).get("namespace", "default")
                resource.server_side_apply(
                    body=dict(obj),
                    namespace=namespace if resource.namespaced else None,
                    field_manager=FIELD_MANAGER,
                    force_conflicts=True,
                )


def _wait_until(ready: Callable[[], bool], process: _Process, timeout_s: float = _STARTUP_TIMEOUT_S) -> None:
    """Poll `ready()` until true; fail early if `process` died, or with its log after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        process.check_running()
        try:
            if ready():
                return
        except (OSError, urllib.error.URLError, ValueError):
            pass  # not listening or not ready yet
        time.sleep(0.2)
    raise ControlPlaneError(f"{process.name} not ready after {timeout_s:.0f}s:\n{process.log_tail()}")

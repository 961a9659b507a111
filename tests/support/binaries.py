"""Find the test tiers' binaries in the versioned cache the build scripts fill.

e2e: kube-apiserver and etcd (tests/e2e/VERSIONS, scripts/build-e2e-bins.sh); dataplane: flanneld and the
CNI plugins (tests/dataplane/VERSIONS, scripts/build-dataplane-bins.sh).
Invariant: the binaries returned are exactly the pinned versions, at the paths their build script writes;
anything else is `BinariesMissing`, whose message names the make target that builds them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
E2E_VERSIONS = TESTS / "e2e" / "VERSIONS"
DATAPLANE_VERSIONS = TESTS / "dataplane" / "VERSIONS"
DEFAULT_CACHE = Path.home() / ".cache" / "routectl"


class BinariesMissing(Exception):
    """Pinned binaries are not in the cache; the message names the make target that builds them."""


@dataclass(frozen=True, slots=True)
class Binaries:
    kube_apiserver: Path
    etcd: Path
    kubernetes_version: str
    etcd_version: str
    etcd_source: str  # from the cache's SOURCE file: the Go module, or the Debian fallback

    @property
    def etcd_is_debian_fallback(self) -> bool:
        """Debian's etcd-server is 3.4.x, which lacks some flags (e.g. --unsafe-no-fsync)."""
        return self.etcd_source.startswith("debian")


@dataclass(frozen=True, slots=True)
class DataplaneBinaries:
    flanneld: Path
    flannel_manifest: Path
    """kube-flannel.yml of the same release: flannel's own ServiceAccount and RBAC."""
    cni_dir: Path
    """Holds `bridge` and `host-local` (what CNI_PATH points at)."""
    flannel_version: str
    cni_plugins_version: str


def pinned_versions(versions_file: Path) -> dict[str, str]:
    """KEY=VALUE lines of a versions file (comments and blank lines skipped)."""
    lines = versions_file.read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def cache_dir_from_env() -> Path:
    """`ROUTECTL_BIN_CACHE` (set by the Makefile), else ~/.cache/routectl."""
    return Path(os.environ.get("ROUTECTL_BIN_CACHE") or DEFAULT_CACHE)


def _require(paths: Sequence[Path], what: str, target: str, script: str, cache_dir: Path) -> None:
    missing = [str(path) for path in paths if not os.access(path, os.X_OK)]
    if missing:
        raise BinariesMissing(
            f"{what} not built ({', '.join(missing)}); run `make {target}` (scripts/{script} {cache_dir})"
        )


def locate_binaries(cache_dir: Path) -> Binaries:
    """The pinned kube-apiserver and etcd under `cache_dir`, or `BinariesMissing`."""
    versions = pinned_versions(E2E_VERSIONS)
    k8s, etcd = versions["KUBERNETES_VERSION"], versions["ETCD_VERSION"]
    kube_apiserver = cache_dir / "e2e" / f"k8s-{k8s}" / "kube-apiserver"
    etcd_binary = cache_dir / "e2e" / f"etcd-{etcd}" / "etcd"
    _require((kube_apiserver, etcd_binary), "e2e binaries", "e2e-bins", "build-e2e-bins.sh", cache_dir)
    source = etcd_binary.with_name("SOURCE")
    return Binaries(
        kube_apiserver=kube_apiserver,
        etcd=etcd_binary,
        kubernetes_version=k8s,
        etcd_version=etcd,
        etcd_source=source.read_text().strip() if source.exists() else "unknown",
    )


def locate_dataplane_binaries(cache_dir: Path) -> DataplaneBinaries:
    """The pinned flanneld and CNI plugins (bridge, host-local) under `cache_dir`, or `BinariesMissing`."""
    versions = pinned_versions(DATAPLANE_VERSIONS)
    flannel, plugins = versions["FLANNEL_VERSION"], versions["CNI_PLUGINS_VERSION"]
    flanneld = cache_dir / "dataplane" / f"flannel-{flannel}" / "flanneld"
    manifest = flanneld.with_name("kube-flannel.yml")
    cni_dir = cache_dir / "dataplane" / f"cni-plugins-{plugins}"
    _require(
        (flanneld, cni_dir / "bridge", cni_dir / "host-local"),
        "dataplane binaries",
        "dataplane-bins",
        "build-dataplane-bins.sh",
        cache_dir,
    )
    if not manifest.is_file():
        raise BinariesMissing(f"{manifest} missing; run `make dataplane-bins`")
    return DataplaneBinaries(flanneld, manifest, cni_dir, flannel, plugins)


def locate_monitoring_crds(cache_dir: Path) -> list[Path]:
    """The ServiceMonitor and PrometheusRule CRDs of the pinned prometheus-operator module, as
    scripts/fetch-monitoring-crds.sh puts them in the cache; `BinariesMissing` names `make e2e-bins`."""
    version = pinned_versions(E2E_VERSIONS)["PROMETHEUS_OPERATOR_VERSION"]
    directory = cache_dir / f"monitoring-crds-{version}"
    kinds = ("servicemonitors", "prometheusrules")
    files = [directory / f"monitoring.coreos.com_{kind}.yaml" for kind in kinds]
    missing = [str(path) for path in files if not path.is_file()]
    if missing:
        raise BinariesMissing(
            f"monitoring CRDs not fetched ({', '.join(missing)}); run `make e2e-bins` "
            f"(scripts/fetch-monitoring-crds.sh {cache_dir})"
        )
    return files

"""Find the e2e tier's kube-apiserver and etcd in the versioned binary cache.

Invariant: the binaries returned are exactly the versions pinned in tests/e2e/VERSIONS, at the paths
scripts/build-e2e-bins.sh builds them to; anything else is `BinariesMissing`, whose message names
`make e2e-bins`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

VERSIONS_FILE = Path(__file__).with_name("VERSIONS")
DEFAULT_CACHE = Path.home() / ".cache" / "routectl"


class BinariesMissing(Exception):
    """The pinned binaries are not in the cache; `make e2e-bins` builds them."""


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


def pinned_versions(versions_file: Path = VERSIONS_FILE) -> dict[str, str]:
    """KEY=VALUE lines of the versions file (comments and blank lines skipped)."""
    lines = versions_file.read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def cache_dir_from_env() -> Path:
    """`ROUTECTL_BIN_CACHE` (set by the Makefile), else ~/.cache/routectl."""
    return Path(os.environ.get("ROUTECTL_BIN_CACHE") or DEFAULT_CACHE)


def locate_binaries(cache_dir: Path) -> Binaries:
    """The pinned binaries under `cache_dir`, or `BinariesMissing` saying which one is absent."""
    versions = pinned_versions()
    k8s, etcd = versions["KUBERNETES_VERSION"], versions["ETCD_VERSION"]
    kube_apiserver = cache_dir / "e2e" / f"k8s-{k8s}" / "kube-apiserver"
    etcd_binary = cache_dir / "e2e" / f"etcd-{etcd}" / "etcd"
    missing = [str(path) for path in (kube_apiserver, etcd_binary) if not os.access(path, os.X_OK)]
    if missing:
        raise BinariesMissing(
            f"e2e binaries not built ({', '.join(missing)}); run `make e2e-bins` "
            f"(scripts/build-e2e-bins.sh {cache_dir})"
        )
    source = etcd_binary.with_name("SOURCE")
    return Binaries(
        kube_apiserver=kube_apiserver,
        etcd=etcd_binary,
        kubernetes_version=k8s,
        etcd_version=etcd,
        etcd_source=source.read_text().strip() if source.exists() else "unknown",
    )


def locate_monitoring_crds(cache_dir: Path) -> list[Path]:
    """The ServiceMonitor and PrometheusRule CRDs of the pinned prometheus-operator module, as
    scripts/fetch-monitoring-crds.sh puts them in the cache; `BinariesMissing` names `make e2e-bins`."""
    version = pinned_versions()["PROMETHEUS_OPERATOR_VERSION"]
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

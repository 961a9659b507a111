"""Run the pinned helm binary on the chart (chart tier helpers) and hand back parsed objects.

Invariant: the binary used is exactly the version scripts/build-helm.sh pins (the one place that names
it), at the versioned path that script builds to; anything else is `HelmMissing`, naming `make helm-bin`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "routectl"
EXAMPLES = {p.name.removesuffix("-values.yaml"): p for p in sorted((CHART / "ci").glob("*-values.yaml"))}
BUILD_SCRIPT = REPO / "scripts" / "build-helm.sh"
RELEASE = "routectl"
NAMESPACE = "kube-system"
TIMEOUT_S = 60
MONITORING_API = "monitoring.coreos.com/v1"
"""What the ServiceMonitor and PrometheusRule need the cluster to serve (`--api-versions` in a render)."""

Manifest = dict[str, Any]


class HelmMissing(Exception):
    """The pinned helm is not in the cache; `make helm-bin` builds it."""


class HelmFailed(Exception):
    """helm exited non-zero; the message is its stderr."""


def pinned_version() -> str:
    """HELM_VERSION as assigned in scripts/build-helm.sh."""
    found = re.search(r"^HELM_VERSION=(\S+)$", BUILD_SCRIPT.read_text(), re.MULTILINE)
    if found is None:
        raise AssertionError(f"no HELM_VERSION= line in {BUILD_SCRIPT}")
    return found.group(1)


def locate() -> Path:
    """The pinned helm under `ROUTECTL_BIN_CACHE` (default ~/.cache/routectl)."""
    cache = Path(os.environ.get("ROUTECTL_BIN_CACHE") or Path.home() / ".cache" / "routectl")
    version = pinned_version()
    binary = cache / f"helm-{version}" / "helm"
    if not os.access(binary, os.X_OK):
        raise HelmMissing(f"helm {version} not built at {binary}; run `make helm-bin`")
    return binary


@dataclass(frozen=True, slots=True)
class Helm:
    binary: Path

    def run(self, *args: str, env: Mapping[str, str] = {}) -> str:
        """stdout of `helm ARGS` in a private helm home (plus `env`); HelmFailed with stderr on failure."""
        home = {
            f"HELM_{kind}_HOME": str(Path(os.environ.get("TMPDIR", "/tmp")) / "routectl-helm" / kind)
            for kind in ("CACHE", "CONFIG", "DATA")
        }
        done = subprocess.run(
            [str(self.binary), *args],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            env={**os.environ, **home, **env},
            check=False,
        )
        if done.returncode != 0:
            raise HelmFailed(done.stderr.strip())
        return done.stdout

    def lint(self, values: Path) -> str:
        return self.run("lint", "--strict", str(CHART), "--values", str(values))

    def template(
        self,
        values: Sequence[Path] = (),
        sets: Mapping[str, object] = {},
        kube_version: str | None = None,
        show_only: str | None = None,
        api_versions: Sequence[str] = (),
    ) -> list[Manifest]:
        """Rendered objects of the chart as release `routectl` in kube-system; `sets` go as JSON;
        `api_versions` are served by the pretended cluster (helm's own list otherwise)."""
        args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE]
        for api in api_versions:
            args += ["--api-versions", api]
        for path in values:
            args += ["--values", str(path)]
        for key, value in sets.items():
            args += ["--set-json", f"{key}={json.dumps(value)}"]
        if kube_version is not None:
            args += ["--kube-version", kube_version]
        if show_only is not None:
            args += ["--show-only", show_only]
        return [doc for doc in yaml.safe_load_all(self.run(*args)) if doc]


def chart_values(example: str) -> dict[str, Any]:
    """values.yaml overlaid with one example file, merged the way helm merges maps."""
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    return _merge(defaults, yaml.safe_load(EXAMPLES[example].read_text()))


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        both_maps = isinstance(value, dict) and isinstance(base.get(key), dict)
        merged[key] = _merge(base[key], value) if both_maps else value
    return merged


def of_kind(objects: Sequence[Manifest], kind: str) -> list[Manifest]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: Sequence[Manifest], kind: str) -> Manifest:
    found = of_kind(objects, kind)
    assert len(found) == 1, f"expected one {kind}, rendered {len(found)}"
    return found[0]


def pod_spec(objects: Sequence[Manifest]) -> Manifest:
    spec: Manifest = one(objects, "Deployment")["spec"]["template"]["spec"]
    return spec


def controller(objects: Sequence[Manifest]) -> Manifest:
    """The Deployment's only container."""
    (container,) = pod_spec(objects)["containers"]
    return dict(container)


def config_map(objects: Sequence[Manifest]) -> Manifest:
    """The ConfigMap the Deployment mounts (the release's own: not the dashboard's)."""
    (found,) = [o for o in of_kind(objects, "ConfigMap") if "config.yaml" in o.get("data", {})]
    return found


def settings(objects: Sequence[Manifest]) -> dict[str, Any]:
    """The controller's config file as the chart renders it."""
    parsed: dict[str, Any] = yaml.safe_load(config_map(objects)["data"]["config.yaml"])
    return parsed


def pod_env(container: Manifest, pod_name: str = "routectl-6d4f8b7c9-x2x7k") -> dict[str, str]:
    """The container's plain env as the kubelet resolves it: downward API for the pod's identity and
    `$(VAR)` references to variables defined before (envFrom and secret refs are left out)."""
    downward = {"metadata.name": pod_name, "metadata.namespace": NAMESPACE}
    env: dict[str, str] = {}
    for var in container.get("env", ()):
        if "value" in var:
            env[var["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), var["value"])
        elif "fieldRef" in var.get("valueFrom", {}):
            env[var["name"]] = downward[var["valueFrom"]["fieldRef"]["fieldPath"]]
    return env

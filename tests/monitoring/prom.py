"""Find and run the chart and e2e tiers' Prometheus tools: `promtool`, the `prometheus` server and the
`promql-names` parser helper, all built from one pinned github.com/prometheus/prometheus module.

Invariant: the binaries used are exactly the version pinned in tests/monitoring/VERSIONS, at the path
scripts/build-prometheus.sh builds them to; anything else is `PrometheusMissing`, whose message names
`make prometheus-bin`. `require()` turns that into a failure under CI=true and a loud skip otherwise.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support.fixtures import unavailable

HERE = Path(__file__).resolve().parent
VERSIONS_FILE = HERE / "VERSIONS"
TIMEOUT_S = 120


class PrometheusMissing(Exception):
    """The pinned Prometheus binaries are not in the cache; `make prometheus-bin` builds them."""


@dataclass(frozen=True, slots=True)
class PromTools:
    directory: Path
    version: str

    @property
    def promtool(self) -> Path:
        return self.directory / "promtool"

    @property
    def prometheus(self) -> Path:
        return self.directory / "prometheus"

    def run_promtool(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """`promtool ARGS`, bounded; the caller judges the exit code (promtool reports in its output)."""
        return subprocess.run(
            [str(self.promtool), *args],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            cwd=cwd,
            check=False,
        )

    def parse(self, exprs: Sequence[str]) -> list[dict[str, Any]]:
        """Each expression parsed by Prometheus's own PromQL parser: {"error": ...} or {"selectors":
        [{"metric": name, "matchers": ['job=~"$job"', ...]}, ...]} (every series selector in it)."""
        done = subprocess.run(
            [str(self.directory / "promql-names")],
            input=json.dumps(list(exprs)),
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=True,
        )
        results: list[dict[str, Any]] = json.loads(done.stdout)
        assert len(results) == len(exprs), done.stdout
        return results


def pinned_version() -> str:
    lines = VERSIONS_FILE.read_text().splitlines()
    (version,) = (line.split("=", 1)[1].strip() for line in lines if line.startswith("PROMETHEUS_MODULE="))
    return version


def locate() -> PromTools:
    """The pinned tools under `ROUTECTL_BIN_CACHE` (default ~/.cache/routectl)."""
    cache = Path(os.environ.get("ROUTECTL_BIN_CACHE") or Path.home() / ".cache" / "routectl")
    version = pinned_version()
    tools = PromTools(cache / f"prometheus-{version}", version)
    missing = [
        str(path)
        for path in (tools.prometheus, tools.promtool, tools.directory / "promql-names")
        if not os.access(path, os.X_OK)
    ]
    stamp = tools.directory / "promql-names.sha256"
    source = hashlib.sha256((HERE / "bins" / "promql-names" / "main.go").read_bytes()).hexdigest()
    if not missing and (not stamp.exists() or stamp.read_text().strip() != source):
        missing.append(f"{tools.directory / 'promql-names'} (older than its source)")
    if missing:
        raise PrometheusMissing(
            f"Prometheus {version} tools not built ({', '.join(missing)}); run `make prometheus-bin` "
            f"(scripts/build-prometheus.sh {cache})"
        )
    return tools


def require(tier: str) -> PromTools:
    """The tools, or fail (CI=true) / skip loudly: a tier must never pass without having run."""
    try:
        return locate()
    except PrometheusMissing as missing:
        unavailable(tier, missing)


def missing_tools() -> list[str]:
    """Why the Prometheus tools cannot be used, for a tier's end-of-run notice; [] when they can."""
    try:
        locate()
    except PrometheusMissing as missing:
        return [str(missing)]
    return []


def rule_groups(prometheus_rule: dict[str, Any]) -> dict[str, Any]:
    """A rendered PrometheusRule object as the rules file Prometheus and promtool load."""
    assert prometheus_rule["kind"] == "PrometheusRule"
    return {"groups": prometheus_rule["spec"]["groups"]}


def write_rules(prometheus_rule: dict[str, Any], path: Path) -> Path:
    path.write_text(yaml.safe_dump(rule_groups(prometheus_rule), sort_keys=False))
    return path


def _metrics_docs() -> Any:
    """scripts/metrics-docs.py as a module: its `catalogue()` is the one list of what routectl exports."""
    path = HERE.parents[1] / "scripts" / "metrics-docs.py"
    spec = importlib.util.spec_from_file_location("metrics_docs", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("metrics_docs", module)
    spec.loader.exec_module(module)
    return module


def exported_series() -> set[str]:
    """Every sample name a controller's registry exports (counters' _total, histograms' _bucket …)."""
    return {sample for family in _metrics_docs().catalogue() for sample in family.samples}


def metric_names(parsed: dict[str, Any]) -> set[str]:
    """The metric names the selectors of one parsed expression select."""
    return {selector["metric"] for selector in parsed["selectors"]}

"""Run a real Prometheus server on 127.0.0.1 for the e2e tier: it scrapes static targets every second,
evaluates a rules file every second, and answers the HTTP API the tests query.

The targets get the labels prometheus-operator gives a ServiceMonitor's series (`namespace`, `service`,
and `job` = the service name), so the chart's rules select them as they would in a cluster, and are
scraped as the chart's ServiceMonitor scrapes them: HTTPS (the self-signed certificate not verified)
with a bearer token read from a file.
Invariant: the server listens on 127.0.0.1 only, keeps its TSDB in the given directory, and never
outlives the context (terminate, then kill; SIGKILL from the kernel if the test process dies first).
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import yaml

from tests.monitoring.prom import PromTools
from tests.support.apiserver import dying_with_parent, free_port, stop_process

_STARTUP_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 10.0
INTERVAL = "1s"


class PrometheusServer:
    def __init__(
        self,
        tools: PromTools,
        workdir: Path,
        targets: Sequence[str],
        target_labels: dict[str, str],
        rules_file: Path,
        token_file: Path,
    ) -> None:
        self.port = free_port()
        self._workdir = workdir
        self._log = workdir / "prometheus.log"
        config = {
            "global": {
                "scrape_interval": INTERVAL,
                "scrape_timeout": INTERVAL,
                "evaluation_interval": INTERVAL,
            },
            "rule_files": [str(rules_file)],
            "scrape_configs": [
                {
                    "job_name": target_labels["job"],
                    "scheme": "https",
                    "tls_config": {"insecure_skip_verify": True},
                    "authorization": {"credentials_file": str(token_file)},
                    "static_configs": [
                        {
                            "targets": list(targets),
                            "labels": {k: v for k, v in target_labels.items() if k != "job"},
                        }
                    ],
                }
            ],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        self._argv = [
            str(tools.prometheus),
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
        self._popen: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        with self._log.open("wb") as log:
            self._popen = subprocess.Popen(
                dying_with_parent(self._argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + _STARTUP_TIMEOUT_S
        while not self._ready():
            if self._popen.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"prometheus did not become ready:\n{self.log_tail()}")
            time.sleep(0.2)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self) -> None:
        if self._popen is not None:
            stop_process(self._popen, _STOP_TIMEOUT_S)

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as response:
                return int(response.status) == 200
        except (OSError, urllib.error.URLError):
            return False

    def api(self, path: str, **params: str) -> Any:
        """`data` of a /api/v1 answer; AssertionError with Prometheus's error otherwise."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}{query}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as err:
            body = json.loads(err.read() or b"{}")
        assert body.get("status") == "success", f"{path} {params}: {body}"
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.api("query", query=expr)["result"]
        return result

    def alerts(self, state: str = "firing") -> list[dict[str, Any]]:
        return [a for a in self.api("alerts")["alerts"] if a["state"] == state]

    def firing(self) -> set[str]:
        return {a["labels"]["alertname"] for a in self.alerts()}

    def scrape_errors(self) -> list[str]:
        """The last error of each target that is not up ("" before its first scrape)."""
        targets = self.api("targets")["activeTargets"]
        return [f"{t['scrapeUrl']}: {t['lastError']}" for t in targets if t["health"] != "up"]

    def rules(self) -> list[dict[str, Any]]:
        return [rule for group in self.api("rules")["groups"] for rule in group["rules"]]

"""Run `routectl` as a subprocess, as the chart's Deployment would, and read what it says.

`Routectl` is one `routectl run` process: its JSON log (stderr) and stdout go to files, its /metrics and
/healthz listen on 127.0.0.1 ports chosen at run time. `RoutectlRunner` starts them and runs the
short-lived commands (`plan`, `run --once`), each bounded by a timeout.
Invariant: every process started here is reaped by `RoutectlRunner.stop_all()` (SIGTERM, then SIGKILL),
and dies with the test process even if that is killed (parent-death signal).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.apiserver import dying_with_parent, free_port, stop_process

ROUTECTL = Path(sys.executable).with_name("routectl")
"""The console script of the venv running the tests (`routectl.cli:main`)."""
_STOP_TIMEOUT_S = 15.0
_COMMAND_TIMEOUT_S = 90.0
_DENIAL = re.compile(r"(?<![\w.])403(?![\w.])|ForbiddenError|\bis forbidden\b")
"""How a 403 reads in a log line: the status code, routectl's error type or the API server's message
(`nodes is forbidden: User ... cannot list ...`); not a 422's `Forbidden: node updates may not ...`,
nor "403" inside a hex id (`rtb-0a403f…`) or a number (`0.403`)."""
_TEXT_FIELDS = ("msg", "error", "exc", "raw")

LogRecord = dict[str, Any]


@dataclass(frozen=True, slots=True)
class LeaseTimings:
    """--leader-elect-lease-duration / -renew-deadline / -retry-period, in seconds."""

    lease_s: float = 4.0
    renew_s: float = 3.0
    retry_s: float = 0.5


@dataclass(frozen=True, slots=True)
class Setup:
    """Everything a controller of one scenario is told: who it is (the ServiceAccount's kubeconfig and
    the chart's Lease) and what it manages (cluster name and CIDR, the VPC behind a cloud endpoint)."""

    kubeconfig: Path
    lease_namespace: str
    lease_name: str
    cloud: tuple[str, ...]
    """The provider flags: which cloud, and where its emulator listens."""
    cluster_name: str
    cluster_cidr: str
    node_mask: int
    timings: LeaseTimings = LeaseTimings()
    resync: str = "5s"
    extra: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    """Added to the process environment (e.g. PYTHONPATH of an adapter installed with --target)."""

    def flags(self, command: str) -> list[str]:
        common = [
            f"--kubeconfig={self.kubeconfig}",
            *self.cloud,
            f"--cluster-name={self.cluster_name}",
            f"--cluster-cidr={self.cluster_cidr}",
            f"--node-cidr-mask-size-ipv4={self.node_mask}",
        ]
        if command == "plan":
            return [*common, *self.extra]
        return [
            *common,
            f"--leader-elect-resource-namespace={self.lease_namespace}",
            f"--leader-elect-resource-name={self.lease_name}",
            f"--leader-elect-lease-duration={self.timings.lease_s}s",
            f"--leader-elect-renew-deadline={self.timings.renew_s}s",
            f"--leader-elect-retry-period={self.timings.retry_s}s",
            f"--route-reconciliation-period={self.resync}",
            *self.extra,
        ]


def subprocess_env(pod_name: str, namespace: str, extra: Sequence[tuple[str, str]] = ()) -> dict[str, str]:
    """The Pod's env: downward-API names, dummy AWS credentials through the env link of the chain, and
    `extra`."""
    keep = ("PATH", "HOME", "LANG", "TMPDIR")
    env = {key: os.environ[key] for key in keep if key in os.environ}
    env.update(
        POD_NAME=pod_name,
        POD_NAMESPACE=namespace,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE="/nonexistent",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
        NO_PROXY="127.0.0.1,localhost",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def read_log(path: Path) -> list[LogRecord]:
    """The JSON lines of a log file; a line that is not JSON (a traceback) is kept under "raw"."""
    records: list[LogRecord] = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            parsed = json.loads(line)
        except ValueError:
            parsed = None
        records.append(parsed if isinstance(parsed, dict) else {"raw": line})
    return records


def logged_at(record: LogRecord) -> float:
    """A log record's `ts` as epoch seconds (every process here shares the test's clock)."""
    moment = datetime.datetime.strptime(str(record["ts"]), "%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.replace(tzinfo=datetime.UTC).timestamp()


def denials(records: Sequence[LogRecord]) -> list[LogRecord]:
    """Log records that report an authorization failure (403, Forbidden, ForbiddenError)."""
    return [r for r in records if any(_DENIAL.search(str(r.get(key, ""))) for key in _TEXT_FIELDS)]


@dataclass(frozen=True, slots=True)
class Completed:
    """A finished short-lived command."""

    code: int
    stdout: str
    log: list[LogRecord]


class LoggedProcess:
    """A child process whose JSON log (stderr) is read back from a file; reaped by `stop()` (SIGTERM,
    then SIGKILL after `stop_timeout_s`), and killed with the test process (parent-death signal)."""

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        log_path: Path,
        out_path: Path | None = None,
        stop_timeout_s: float = _STOP_TIMEOUT_S,
    ) -> None:
        """stdout goes to `out_path`, or into the log when None."""
        self.log_path = log_path
        self._stop_timeout_s = stop_timeout_s
        with log_path.open("wb") as log, (out_path or Path(os.devnull)).open("wb") as out:
            self._popen = subprocess.Popen(
                dying_with_parent(argv),
                stdin=subprocess.DEVNULL,
                stdout=out if out_path is not None else log,
                stderr=log,
                env=dict(env),
            )

    @property
    def pid(self) -> int:
        return self._popen.pid

    def running(self) -> bool:
        return self._popen.poll() is None

    def send(self, sig: signal.Signals) -> None:
        self._popen.send_signal(sig)

    def wait(self, timeout_s: float) -> int:
        return self._popen.wait(timeout_s)

    def log(self) -> list[LogRecord]:
        return read_log(self.log_path)

    def logged(self, message: str) -> list[LogRecord]:
        return [r for r in self.log() if r.get("msg") == message]

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> int:
        """SIGTERM, SIGKILL after the grace period; always reaps. Returns the exit code."""
        return stop_process(self._popen, self._stop_timeout_s)


class Routectl(LoggedProcess):
    """One `routectl run` process, with its /metrics and /healthz on 127.0.0.1 ports of its own."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        workdir: Path,
        *,
        metrics_secure: bool = False,
    ) -> None:
        """`metrics_secure`: /metrics over HTTPS for callers the API server lets `get /metrics`, as the
        chart serves it (test_prometheus_e2e.py scrapes it so); otherwise the plain-HTTP opt-in on
        loopback: those scenarios read the metrics, they do not test who may (test_install_e2e.py does)."""
        self.name = name
        self.pod_name = env["POD_NAME"]
        self.metrics_port = free_port()
        self.health_port = free_port()
        full = [
            *argv,
            f"--metrics-secure={str(metrics_secure).lower()}",
            f"--metrics-bind-address=127.0.0.1:{self.metrics_port}",
            f"--health-probe-bind-address=127.0.0.1:{self.health_port}",
        ]
        super().__init__(full, env, workdir / f"{name}.log", workdir / f"{name}.out")

    def _get(self, port: int, path: str) -> tuple[int, str]:
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return int(response.status), response.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def ready(self) -> bool:
        """/readyz answers 200 (the node cache has synced)."""
        try:
            return self._get(self.health_port, "/readyz")[0] == 200
        except OSError:
            return False

    def metrics_text(self) -> str:
        """/metrics as served."""
        return self._get(self.metrics_port, "/metrics")[1]

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of /metrics, keyed by (sample name, sorted labels)."""
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(self.metrics_text())
            for sample in family.samples
        }

    def metric(self, sample: str, /, **labels: str) -> float | None:
        return self.metrics().get((sample, tuple(sorted(labels.items()))))


@dataclass(slots=True)
class RoutectlRunner:
    """Starts controllers and short commands for one test; `stop_all()` reaps every one of them."""

    workdir: Path
    started: list[Routectl] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def start(self, name: str, setup: Setup, *extra: str, metrics_secure: bool = False) -> Routectl:
        process = Routectl(
            name,
            [str(ROUTECTL), "run", *setup.flags("run"), *extra],
            subprocess_env(f"{name}-pod", setup.lease_namespace, setup.env),
            self.workdir,
            metrics_secure=metrics_secure,
        )
        self.started.append(process)
        self.logs.append(process.log_path)
        return process

    def command(self, name: str, setup: Setup, command: str, *extra: str) -> Completed:
        """Run `routectl COMMAND` to completion (bounded), with no probe or metrics listener."""
        log_path = self.workdir / f"{name}.log"
        self.logs.append(log_path)
        argv = [str(ROUTECTL), command, *setup.flags(command), *extra]
        if command == "run":
            argv += ["--metrics-bind-address=0", "--health-probe-bind-address=0"]
        with log_path.open("wb") as log:
            done = subprocess.run(
                dying_with_parent(argv),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                env=subprocess_env(f"{name}-pod", setup.lease_namespace, setup.env),
                timeout=_COMMAND_TIMEOUT_S,
                check=False,
            )
        return Completed(done.returncode, done.stdout.decode(), read_log(log_path))

    def stop_all(self) -> None:
        while self.started:
            self.started.pop().stop()

    def all_records(self) -> Iterator[tuple[Path, LogRecord]]:
        for path in self.logs:
            for record in read_log(path):
                yield path, record


@contextlib.contextmanager
def denials_checked(
    workdir: Path, excused: Callable[[LogRecord], bool] = lambda record: False
) -> Iterator[RoutectlRunner]:
    """A runner whose processes are all reaped on exit; then any RBAC denial they logged fails the test,
    unless `excused` (e.g. one logged while a restarted API server's authorizer was still warming up)."""
    runner = RoutectlRunner(workdir)
    try:
        yield runner
    finally:
        runner.stop_all()
    denied = [
        f"{path.name}: {record}"
        for path, record in runner.all_records()
        if denials([record]) and not excused(record)
    ]
    if denied:
        pytest.fail("routectl was denied by RBAC:\n" + "\n".join(denied))


def eventually(check: Callable[[], bool], timeout_s: float, what: str, poll_s: float = 0.2) -> float:
    """Poll `check` until true; returns the seconds it took, or fails naming `what` after `timeout_s`."""
    started = time.monotonic()
    while True:
        if check():
            return time.monotonic() - started
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"not within {timeout_s:.0f}s: {what}")
        time.sleep(poll_s)

"""`run --once` and `plan` end on their own when the API server is unreachable; `run` keeps trying and
says so on /readyz. Through the real CLI in a subprocess, against a closed port."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.unit.test_cli import a_kubeconfig

NO_CLOUD = ["--cluster-name=c", "--cluster-cidr=10.0.0.0/16", "--configure-cloud-routes=false"]
QUIET = ["--metrics-bind-address=0", "--log-level=error"]
BOUND_S = 3 * 5.0 + 2 * 1.0
"""REACH_ATTEMPTS request timeouts (renew deadline 10 s / 2) and the waits between them."""


def routectl(*argv: str) -> list[str]:
    return [sys.executable, "-m", "routectl.cli", *argv]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_run_once_against_a_closed_port_exits_1_with_one_line(tmp_path: Path) -> None:
    argv = routectl("run", "--once", *NO_CLOUD, *QUIET, "--health-probe-bind-address=0")
    began = time.monotonic()
    done = subprocess.run(
        [*argv, f"--kubeconfig={a_kubeconfig(tmp_path)}"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    elapsed = time.monotonic() - began

    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert "cannot reach the Kubernetes API server (3 attempts)" in line
    assert elapsed < BOUND_S + 10  # interpreter start-up included


def test_run_keeps_retrying_and_reports_not_ready(tmp_path: Path) -> None:
    port = free_port()
    argv = routectl("run", *NO_CLOUD, *QUIET, f"--health-probe-bind-address=127.0.0.1:{port}")
    proc = subprocess.Popen(
        [*argv, f"--kubeconfig={a_kubeconfig(tmp_path)}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        codes = {path: probe(port, path) for path in ("/readyz", "/healthz")}
        time.sleep(3.0)  # several informer and lease retries later it is still running
        assert proc.poll() is None
        assert probe(port, "/readyz") == 503
        assert codes == {"/readyz": 503, "/healthz": 200}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0


def probe(port: int, path: str) -> int:
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
                return int(response.status)
        except urllib.error.HTTPError as err:
            return int(err.code)
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail(f"{path} never answered")
            time.sleep(0.1)

from __future__ import annotations

import io
import json
import logging
import urllib.error
import urllib.request

import pytest

from routectl.metrics import Metrics
from routectl.ops import logs
from routectl.ops.serving import health_endpoint, metrics_endpoint


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_probes_answer_from_their_checks() -> None:
    state = {"healthy": True, "ready": False}
    endpoint = health_endpoint(("127.0.0.1", 0), lambda: state["healthy"], lambda: state["ready"]).start()
    try:
        assert get(endpoint.port, "/healthz")[0] == 200
        assert get(endpoint.port, "/readyz")[0] == 503
        state.update(healthy=False, ready=True)
        assert get(endpoint.port, "/healthz")[0] == 503
        assert get(endpoint.port, "/readyz")[0] == 200
        assert get(endpoint.port, "/metrics")[0] == 404
    finally:
        endpoint.stop()


def test_metrics_endpoint_serves_the_controllers_registry() -> None:
    metrics = Metrics()
    metrics.leader.labels(name="routectl").set(1)
    endpoint = metrics_endpoint(("127.0.0.1", 0), metrics.registry).start()
    try:
        status, body = get(endpoint.port, "/metrics")
    finally:
        endpoint.stop()
    assert status == 200
    assert 'leader_election_master_status{name="routectl"} 1.0' in body
    assert "routectl_route_operations_total" in body
    assert "workqueue_depth" in body


def test_log_lines_are_json_with_the_stable_keys_only(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    logs.setup("info", stream)

    logging.getLogger("routectl.test").info(
        "created %s", "10.244.1.0/24", extra={"node": "n1", "table": "rtb-1", "attempt": 2, "secret": "x"}
    )
    logging.getLogger("routectl.test").debug("hidden")

    [line] = stream.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["msg"] == "created 10.244.1.0/24"
    assert (entry["level"], entry["node"], entry["table"], entry["attempt"]) == ("info", "n1", "rtb-1", 2)
    assert "secret" not in entry


def test_text_log_lines_carry_the_same_keys_for_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    logs.setup("info", stream, fmt="text")

    log = logging.getLogger("routectl.test")
    log.warning("create failed", extra={"node": "n1", "error": 'quota "50" reached', "converged": False})
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("sync failed", extra={"node": "n2", "secret": "x"})

    first, second, *trace = stream.getvalue().splitlines()
    ts, level, logger, rest = first.split(maxsplit=3)
    assert ts.endswith("Z")
    assert (level, logger) == ("WARNING", "routectl.test")
    assert rest == 'create failed node=n1 error="quota \\"50\\" reached" converged=false'
    assert second.split(maxsplit=3)[1:] == ["ERROR", "routectl.test", "sync failed node=n2"]
    assert trace[0] == "Traceback (most recent call last):"
    assert trace[-1] == "ValueError: boom"

from __future__ import annotations

import datetime
import http.client
import io
import json
import logging
import os
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from routectl.access import Verdict
from routectl.metrics import Metrics
from routectl.ops import logs
from routectl.ops.serving import (
    HttpEndpoint,
    ServingCertificate,
    health_endpoint,
    metrics_endpoint,
    self_signed,
)


def get(port: int, path: str, *, token: str = "", tls: ssl.SSLContext | None = None) -> tuple[int, str]:
    scheme = "https" if tls is not None else "http"
    request = urllib.request.Request(f"{scheme}://127.0.0.1:{port}{path}")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5, context=tls) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def trusting_anything() -> ssl.SSLContext:
    """What a scraper with `insecureSkipVerify` does: TLS, no verification of the self-signed cert."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class Gate:
    """Decides by token, and remembers what it was asked."""

    def __init__(self, verdicts: dict[str, Verdict]) -> None:
        self.verdicts = verdicts
        self.asked: list[tuple[str, str, str]] = []

    def admit(self, token: str, verb: str, path: str) -> Verdict:
        self.asked.append((token, verb, path))
        return self.verdicts.get(token, Verdict.UNAUTHENTICATED)


@pytest.fixture
def secured() -> Iterator[tuple[HttpEndpoint, Gate]]:
    metrics = Metrics()
    metrics.leader.labels(name="routectl").set(1)
    gate = Gate({"scraper": Verdict.ALLOWED, "stranger": Verdict.FORBIDDEN, "flaky": Verdict.UNAVAILABLE})
    endpoint = metrics_endpoint(
        ("127.0.0.1", 0), metrics.registry, gate=gate, certificate=ServingCertificate()
    ).start()
    try:
        yield endpoint, gate
    finally:
        endpoint.stop()


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


@pytest.mark.parametrize(
    ("token", "status"),
    [("", 401), ("garbage", 401), ("stranger", 403), ("flaky", 500), ("scraper", 200)],
)
def test_secure_metrics_answer_only_whom_the_gate_admits(
    secured: tuple[HttpEndpoint, Gate], token: str, status: int
) -> None:
    endpoint, gate = secured
    code, body = get(endpoint.port, "/metrics?x=1", token=token, tls=trusting_anything())
    assert code == status
    assert ('leader_election_master_status{name="routectl"} 1.0' in body) is (status == 200)
    if token:
        assert gate.asked == [(token, "get", "/metrics")]
    else:
        assert gate.asked == []  # no token: refused without asking anyone


def test_a_refusal_for_no_token_names_the_bearer_scheme(secured: tuple[HttpEndpoint, Gate]) -> None:
    endpoint, _ = secured
    request = urllib.request.Request(f"https://127.0.0.1:{endpoint.port}/metrics")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5, context=trusting_anything())
    assert refused.value.headers["WWW-Authenticate"].startswith("Bearer")


def test_secure_metrics_speak_no_plain_http(secured: tuple[HttpEndpoint, Gate]) -> None:
    endpoint, gate = secured
    with pytest.raises((ConnectionError, http.client.HTTPException)):  # the server hangs up
        get(endpoint.port, "/metrics", token="scraper")
    assert gate.asked == []
    assert get(endpoint.port, "/metrics", token="scraper", tls=trusting_anything())[0] == 200


def test_a_client_that_connects_and_stalls_does_not_block_the_others(
    secured: tuple[HttpEndpoint, Gate],
) -> None:
    endpoint, _ = secured
    with socket.create_connection(("127.0.0.1", endpoint.port)):  # never sends a ClientHello
        started = time.monotonic()
        assert get(endpoint.port, "/metrics", token="scraper", tls=trusting_anything())[0] == 200
        assert time.monotonic() - started < 5


def test_the_self_signed_certificate_names_this_host() -> None:
    endpoint = metrics_endpoint(("127.0.0.1", 0), Metrics().registry, certificate=ServingCertificate())
    endpoint.start()
    try:
        pem = ssl.get_server_certificate(("127.0.0.1", endpoint.port))
    finally:
        endpoint.stop()
    cert = x509.load_pem_x509_certificate(pem.encode())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert socket.gethostname() in names.get_values_for_type(x509.DNSName)
    assert cert.not_valid_after_utc > datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=300)


def write_certificate(directory: Path, common_name: str) -> None:
    cert, key = self_signed(common_name)
    (directory / "tls.key").write_bytes(key)
    (directory / "tls.crt").write_bytes(cert)


def served_common_name(port: int) -> str:
    pem = ssl.get_server_certificate(("127.0.0.1", port))
    subject = x509.load_pem_x509_certificate(pem.encode()).subject
    return str(subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def test_a_mounted_certificate_is_served_and_a_renewed_one_picked_up(tmp_path: Path) -> None:
    write_certificate(tmp_path, "first")
    endpoint = metrics_endpoint(
        ("127.0.0.1", 0), Metrics().registry, certificate=ServingCertificate(str(tmp_path))
    ).start()
    try:
        assert served_common_name(endpoint.port) == "first"
        write_certificate(tmp_path, "renewed")
        later = time.time() + 2  # a different mtime even on a coarse-grained filesystem
        for name in ("tls.crt", "tls.key"):
            os.utime(tmp_path / name, (later, later))
        assert served_common_name(endpoint.port) == "renewed"
        (tmp_path / "tls.key").write_text("half-written")
        os.utime(tmp_path / "tls.key", (later + 2, later + 2))
        assert served_common_name(endpoint.port) == "renewed"  # mid-rotation: keep the last good one
    finally:
        endpoint.stop()


def test_a_missing_certificate_is_an_error_at_start(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        ServingCertificate(str(tmp_path))


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

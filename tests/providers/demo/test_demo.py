"""`routectl demo` end to end for each provider: the real SDK clients against the embedded clouds."""

from __future__ import annotations

import io
import ipaddress
import json
import subprocess
import sys
import time

import pytest

from routectl.demo import command as demo


@pytest.mark.parametrize("provider", ["aws", "gcp", "alibaba"])
def test_demo_converges_and_reports_the_documented_json(provider: str) -> None:
    out, err = io.StringIO(), io.StringIO()

    code = demo.main(["--provider", provider, "--nodes", "6", "--output", "json"], out, err)

    report = json.loads(out.getvalue())
    assert code == 0, report["violations"]
    assert set(report) >= {
        "provider",
        "cluster_cidrs",
        "converged",
        "elapsed_s",
        "api_calls",
        "nodes",
        "route_tables",
    }
    assert report["provider"] == provider
    assert report["converged"] is True
    cidrs = [ipaddress.ip_network(c) for n in report["nodes"] for c in n["pod_cidrs"]]
    assert len(cidrs) == len(set(cidrs)) == 6
    assert all(c.subnet_of(ipaddress.ip_network("10.244.0.0/16")) for c in cidrs)  # type: ignore[arg-type]
    instances = {n["pod_cidrs"][0]: n["instance"] for n in report["nodes"]}
    for table in report["route_tables"]:
        owned = {r["destination"]: r["target"] for r in table["routes"] if r["owned"]}
        assert owned == instances
    assert all(
        n["network_unavailable"] == {"status": "False", "reason": "RouteCreated"} for n in report["nodes"]
    )
    assert sum(report["api_calls"].values()) > 0
    assert "converging:" in err.getvalue()


def test_demo_dual_stack_gives_each_node_one_block_per_family() -> None:
    out = io.StringIO()

    code = demo.main(
        [
            "--provider",
            "alibaba",
            "--nodes",
            "3",
            "--cluster-cidr",
            "10.244.0.0/16,fd00:10::/56",
            "--output",
            "json",
        ],
        out,
        io.StringIO(),
    )

    report = json.loads(out.getvalue())
    assert code == 0, report["violations"]
    assert all([ipaddress.ip_network(c).version for c in n["pod_cidrs"]] == [4, 6] for n in report["nodes"])


def test_demo_table_output_names_every_node_and_the_verdict() -> None:
    out = io.StringIO()

    code = demo.main(["--provider", "gcp", "--nodes", "3"], out, io.StringIO())

    text = out.getvalue()
    assert code == 0
    assert all(f"node-{i:03d}" in text for i in range(3))
    assert "Converged:" in text
    assert "False/RouteCreated" in text


def test_demo_refuses_a_nonsensical_node_count() -> None:
    err = io.StringIO()
    assert demo.main(["--nodes", "0"], io.StringIO(), err) == 2
    assert "--nodes" in err.getvalue()


@pytest.mark.parametrize(
    ("argv", "capacity"),
    [
        (["--nodes", "10", "--cluster-cidr", "10.244.0.0/22"], "10.244.0.0/22 holds 4 /24 node blocks"),
        (["--nodes", "300"], "10.244.0.0/16 holds 256 /24 node blocks"),
        (["--nodes", "100000", "--timeout", "30"], "10.244.0.0/16 holds 256 /24 node blocks"),
        (
            ["--provider", "alibaba", "--nodes", "201", "--cluster-cidr", "10.0.0.0/8"],
            "route quota: 200 routes per table, 201 needed",
        ),
        (
            ["--provider", "aws", "--nodes", "1001", "--cluster-cidr", "10.0.0.0/8"],
            "route quota: 1000 routes per table per IP family, 1001 needed",
        ),
    ],
)
def test_demo_refuses_at_once_what_cannot_fit_naming_the_capacity(argv: list[str], capacity: str) -> None:
    err = io.StringIO()
    began = time.monotonic()
    assert demo.main(argv, io.StringIO(), err) == 2
    assert time.monotonic() - began < 5  # nothing was set up
    [line] = err.getvalue().strip().splitlines()
    assert capacity in line


def test_demo_timeout_bounds_the_whole_command_report_included() -> None:
    """250 AWS nodes need well over 5 s (the write bucket refills 5/s): the command still ends then."""
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "routectl.cli", "demo", "--nodes", "250", "--timeout", "5"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert time.monotonic() - began < 5 + 10  # interpreter start-up and imports come on top
    assert "--timeout 5s reached while" in done.stderr.strip().splitlines()[-1]


def test_demo_without_moto_names_the_demo_extra_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in the container image, which ships without moto."""
    monkeypatch.setitem(sys.modules, "moto", None)
    err = io.StringIO()

    assert demo.main(["--provider", "aws", "--nodes", "1"], io.StringIO(), err) == 2

    (line,) = err.getvalue().strip().splitlines()
    assert line.startswith("routectl demo: ")
    assert "install routectl[demo]" in line

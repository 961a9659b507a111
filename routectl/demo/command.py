"""`routectl demo`: the whole controller against an in-memory cluster and an embedded cloud.

The cloud is reached through the real SDK clients: moto's EC2 for AWS, the project's GCE and Alibaba VPC
emulators for the others, so the demo exercises the same adapter code a production run does. Exit 0
only when every invariant holds, checked by listing the cloud's tables (see `embedded.violations`).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

import ipam
import providers
from providers.emulators.embedded import ROUTE_QUOTAS, RouteQuota
from providers.emulators.isolation import disable_metadata_probes
from providers.registry import DEMO_CLUSTER, EmbeddedFactory, Registry, RegistryError, discover
from routectl.demo.harness import RunResult, embedded_config, run_until_converged
from routectl.demo.memcluster import MemoryCluster
from routectl.ops import logs
from routectl.ops.columns import columns


def _parser(registry: Registry) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="routectl demo", description=__doc__)
    embedded = [spec.name for spec in registry.specs if spec.embedded]
    parser.add_argument(
        "--provider",
        choices=embedded,
        default="aws" if "aws" in embedded else None,
        help="an installed provider whose spec names an embedded cloud",
    )
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--cluster-cidr", default="10.244.0.0/16")
    parser.add_argument("--output", choices=("table", "json"), default="table")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds the whole demo may take")
    return parser


def main(argv: Sequence[str], out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Exit 2 at once when the nodes cannot fit (pool, embedded route quota); otherwise the report
    within --timeout (set-up, convergence and report included), exit 0 only if converged."""
    try:
        registry = discover()
        args = _parser(registry).parse_args(list(argv))
        embedded = registry[args.provider].embedded_cloud() if args.provider else None
    except RegistryError as error:
        print(f"routectl demo: {error}", file=err)
        return 2
    if embedded is None:
        print("routectl demo: --provider: required (no default: aws is not installed)", file=err)
        return 2
    deadline = time.monotonic() + args.timeout
    cidrs = [c.strip() for c in args.cluster_cidr.split(",") if c.strip()]
    refused = _refusal(args.provider, ROUTE_QUOTAS.get(embedded), args.nodes, cidrs, args.timeout)
    if refused:
        print(f"routectl demo: {refused}", file=err)
        return 2
    logs.setup("error", err)
    # The demo's clouds are all embedded: no SDK may look for credentials on a metadata server.
    disable_metadata_probes(os.environ)
    run = _Run(args.provider, embedded, registry, args.nodes, cidrs, deadline, err)
    # When --timeout passes first, the command reports and the CLI ends the process with this thread.
    worker = threading.Thread(target=run.go, name="demo")
    worker.start()
    worker.join(timeout=max(0.0, deadline - time.monotonic()))
    if run.missing:
        print(f"routectl demo: {run.missing}", file=err)
        return 2
    if run.report is None:
        print(f"\nroutectl demo: --timeout {args.timeout:g}s reached while {run.phase}", file=err)
        return 1
    if args.output == "json":
        json.dump(dataclasses.asdict(run.report), out, indent=2)
        print(file=out)
    else:
        _print_table(run.report, out)
    return 0 if run.report.converged else 1


class _Run:
    """One demo run against its deadline; `phase` says where it is, `report` is set when it is done."""

    def __init__(
        self,
        provider: str,
        embedded: EmbeddedFactory,
        registry: Registry,
        nodes: int,
        cidrs: list[str],
        deadline: float,
        err: TextIO,
    ) -> None:
        self.provider, self.embedded, self.registry = provider, embedded, registry
        self.nodes, self.cidrs, self.deadline, self.err = nodes, cidrs, deadline, err
        self.phase = f"setting up the embedded {provider} cloud ({nodes} instances)"
        self.report: Report | None = None
        self.missing = ""
        """Set when this installation lacks a package the run needs (moto in the container image)."""

    def go(self) -> None:
        try:
            self._go()
        except providers.MissingPackage as missing:
            self.missing = str(missing)
        except Exception as failure:  # one line, like every other way the demo ends
            self.phase = f"{self.phase}: {type(failure).__name__}: {failure}"

    def _go(self) -> None:
        with self.embedded(self.nodes) as cloud:
            cfg = embedded_config(
                self.provider,
                self.cidrs,
                cluster_name=DEMO_CLUSTER,
                extra=cloud.flags,
                registry=self.registry,
            )
            assert cfg.cloud is not None  # routes are on in a `run` config
            cluster = MemoryCluster()
            for i, provider_id in enumerate(cloud.provider_ids):
                cluster.add_node(f"node-{i:03d}", provider_id=provider_id)
            provider = cfg.cloud.build()
            calls: collections.Counter[str] = collections.Counter()
            provider.observe(lambda api, code, seconds: calls.update([api]))
            # What is left of --timeout, less a share kept for stopping the controller and the report.
            left = self.deadline - time.monotonic()
            reserve_s = min(10.0, left / 5)
            self.phase = "converging"
            result = run_until_converged(
                cluster,
                provider,
                cfg,
                timeout_s=max(0.0, left - reserve_s),
                stop_s=reserve_s / 2,
                progress=_progress(self.err),
            )
            print(file=self.err)
            self.phase = "verifying the result against the embedded cloud"
            report = _report(self.provider, self.cidrs, result, cluster, provider, dict(calls))
            provider.close()
        self.report = report


def _refusal(provider: str, quota: RouteQuota | None, nodes: int, cidrs: list[str], timeout_s: float) -> str:
    """Why the demo cannot succeed, said before anything starts ("" when it can); `quota` is the
    embedded cloud's (None: not known, as for a third-party provider's)."""
    if nodes < 1:
        return "--nodes must be at least 1"
    if not timeout_s > 0:
        return f"--timeout {timeout_s}: must be a positive number of seconds"
    try:
        usage = ipam.CIDRPool(cidrs).usage()
    except ipam.IPAMError as problem:
        return f"--cluster-cidr: {problem}"
    for version in sorted({u.cidr.version for u in usage}):
        blocks = sum(u.capacity for u in usage if u.cidr.version == version)
        if nodes > blocks:
            where = ", ".join(str(u.cidr) for u in usage if u.cidr.version == version)
            mask = next(u.node_mask for u in usage if u.cidr.version == version)
            return f"--nodes {nodes} do not fit the pool: {where} holds {blocks} /{mask} node blocks"
    families = len({u.cidr.version for u in usage})
    if quota is not None and not quota.fits(nodes, families):
        per = " per IP family" if quota.per_family else ""
        needed = nodes if quota.per_family else nodes * families
        return (
            f"--nodes {nodes} do not fit the embedded {provider} cloud's route quota: "
            f"{quota.routes} routes per table{per}, {needed} needed"
        )
    return ""


def _progress(err: TextIO) -> Callable[[int, int], None]:
    shown: list[tuple[int, int]] = []

    def show(done: int, total: int) -> None:
        if shown[-1:] != [(done, total)]:
            shown.append((done, total))
            print(f"\rconverging: {done}/{total} nodes have verified routes", end="", file=err, flush=True)

    return show


@dataclass(frozen=True, slots=True)
class NodeRow:
    name: str
    instance: str
    pod_cidrs: list[str]
    network_unavailable: dict[str, str] | None


@dataclass(frozen=True, slots=True)
class RouteRow:
    destination: str
    target: str
    owned: bool


@dataclass(frozen=True, slots=True)
class TableRow:
    id: str
    routes: list[RouteRow]


@dataclass(frozen=True, slots=True)
class Report:
    """The demo's result; its JSON form is docs/architecture.md's "Demo" contract."""

    provider: str
    cluster_cidrs: list[str]
    converged: bool
    elapsed_s: float
    api_calls: dict[str, int]
    nodes: list[NodeRow]
    route_tables: list[TableRow]
    violations: list[str]


def _report(
    provider_name: str,
    cidrs: list[str],
    result: RunResult,
    cluster: MemoryCluster,
    provider: providers.RouteProvider,
    api_calls: dict[str, int],
) -> Report:
    nodes = sorted(cluster.nodes().values(), key=lambda n: n.name)
    return Report(
        provider=provider_name,
        cluster_cidrs=cidrs,
        converged=result.converged,
        elapsed_s=round(result.elapsed_s, 3),
        api_calls=dict(sorted(api_calls.items())),
        nodes=[
            NodeRow(
                name=n.name,
                instance=provider.target_for(n.provider_id).instance,
                pod_cidrs=list(n.pod_cidrs),
                network_unavailable=None
                if n.network_unavailable is None
                else {"status": n.network_unavailable.status, "reason": n.network_unavailable.reason},
            )
            for n in nodes
        ],
        route_tables=[
            TableRow(
                id=table,
                routes=[
                    RouteRow(str(r.destination), r.target.instance if r.target else r.next_hop, r.owned)
                    for r in sorted(
                        provider.list_routes(table),
                        key=lambda r: (
                            r.destination.version,
                            r.destination.network_address,
                            r.destination.prefixlen,
                        ),
                    )
                ],
            )
            for table in provider.tables()
        ],
        violations=list(result.violations),
    )


def _print_table(report: Report, out: TextIO) -> None:
    owned = {t.id: {r.destination: r for r in t.routes if r.owned} for t in report.route_tables}
    header = ["NODE", "INSTANCE", "POD CIDR", *owned, "NetworkUnavailable"]
    rows: list[list[str]] = []
    for node in report.nodes:
        condition = node.network_unavailable
        status = "-" if condition is None else f"{condition['status']}/{condition['reason']}"
        for i, cidr in enumerate(node.pod_cidrs or ["-"]):
            first = i == 0
            routes = [owned[t].get(cidr) for t in owned]
            rows.append(
                [
                    node.name if first else "",
                    node.instance if first else "",
                    cidr,
                    *("-" if r is None else f"-> {r.target}" for r in routes),
                    status if first else "",
                ]
            )
    print(
        f"routectl demo: provider {report.provider}, cluster CIDR {', '.join(report.cluster_cidrs)}, "
        f"{len(report.nodes)} nodes, {len(report.route_tables)} route tables, {report.elapsed_s} s\n",
        file=out,
    )
    for line in columns([header, *rows]):
        print(line, file=out)
    print("\nAPI calls: " + ", ".join(f"{k}={v}" for k, v in report.api_calls.items()), file=out)
    foreign = sum(1 for t in report.route_tables for r in t.routes if not r.owned)
    print(f"Routes not owned by this cluster, left untouched: {foreign}", file=out)
    if report.converged:
        print(
            "Converged: every node has a distinct podCIDR inside the cluster CIDR, one owned route per "
            "table to its instance, and NetworkUnavailable=False/RouteCreated.",
            file=out,
        )
        return
    print("NOT converged:", file=out)
    for problem in report.violations:
        print(f"  - {problem}", file=out)

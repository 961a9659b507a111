"""Where benchmark results go: one JSON per benchmark, PNG plots, and `SUMMARY.md` built from every
JSON present in `bench/results/` (so re-running one benchmark refreshes the summary of all)."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

RESULTS = Path(__file__).parent / "results"


def write(name: str, result: Mapping[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def machine(load: Sequence[float]) -> dict[str, Any]:
    """The machine a run measured: CPUs, CPU model, Python, and the 1-minute load averages sampled
    during the run (`load`) — the benchmarks share the machine with whatever else runs on it."""
    model = next(
        (line.split(":", 1)[1].strip() for line in _cpuinfo().splitlines() if line.startswith("model name")),
        platform.processor() or "unknown",
    )
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "load_1min_min": min(load, default=0.0),
        "load_1min_max": max(load, default=0.0),
    }


def _cpuinfo() -> str:
    path = Path("/proc/cpuinfo")
    return path.read_text() if path.exists() else ""


def read(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def plot_curves(
    file: str,
    title: str,
    curves: Mapping[str, Sequence[Sequence[float]]],
    *,
    lower_bound: tuple[int, float, int],
) -> Path:
    """Routes programmed over time, one line per controller, plus the cloud's limit as a dashed line."""
    burst, rate, total = lower_bound
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for label, points in curves.items():
        ax.plot([p[0] for p in points], [p[1] for p in points], label=label)
    end = (total - burst) / rate
    ax.plot([0, end], [burst, total], "k--", linewidth=1, label="cloud limit (burst, then refill)")
    ax.set(xlabel="seconds since start", ylabel="routes programmed", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, file)


def plot_latencies(file: str, title: str, samples: Mapping[str, Sequence[float]]) -> Path:
    """Empirical CDF of per-node latencies, one line per controller."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for label, values in samples.items():
        ordered = sorted(values)
        ax.step(ordered, [(i + 1) / len(ordered) for i in range(len(ordered))], where="post", label=label)
    ax.set(xscale="log", xlabel="seconds (log)", ylabel="fraction of joins", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, file)


def _save(fig: Any, file: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / file
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --- SUMMARY.md ------------------------------------------------------------------------------------

Row = tuple[str, str, str, str, str]
"""(measure, routectl, baseline, goal, notes)."""


def _calls(calls: Mapping[str, int]) -> str:
    return f"{sum(calls.values())} (" + ", ".join(f"{k} {v}" for k, v in calls.items()) + ")"


def _convergence(r: Mapping[str, Any]) -> list[Row]:
    n = r["nodes"]
    return [
        (f"Convergence, {n} fresh nodes (s)", f"{r['routectl_s']}", f"{r['baseline_s']}",
         f"≈ bound {r['lower_bound_s']} s",
         f"routectl/bound {r['routectl_vs_lower_bound']}; baseline/routectl {r['baseline_vs_routectl']}"),
        (f"API calls to converge {n} nodes", _calls(r["routectl_api_calls"]),
         _calls(r["baseline_api_calls"]), "one create + one prepare per node", "incl. throttled calls"),
        ("Throttled responses while converging", str(r["routectl_throttled"]),
         str(r["baseline_throttled"]), "0", "RequestLimitExceeded"),
    ]  # fmt: skip


def _dual_stack(r: Mapping[str, Any]) -> list[Row]:
    n, t, routes = r["nodes"], r["tables"], r["routes"]
    return [
        (f"Dual-stack, {n} nodes x {t} tables = {routes} routes (s)", str(r["routectl_s"]),
         str(r["baseline_s"]), f"≈ bound {r['lower_bound_s']} s",
         f"routectl/bound {r['routectl_vs_lower_bound']}; baseline/bound {r['baseline_vs_lower_bound']}"),
        (f"Dual-stack: API calls to converge {routes} routes", _calls(r["routectl_api_calls"]),
         _calls(r["baseline_api_calls"]), f"{routes} creates, {n} prepares", "incl. throttled calls"),
        ("Dual-stack: source/dest checks (prepare_target) per instance",
         str(r["routectl_prepare_per_instance"]), str(r["baseline_prepare_per_instance"]), "1", ""),
        ("Dual-stack: throttled responses", str(r["routectl_throttled"]), str(r["baseline_throttled"]),
         "0", "routectl and the baseline ran at the same time, on separate clouds"),
    ]  # fmt: skip


def _shared(r: Mapping[str, Any]) -> list[Row]:
    ours, theirs, goals = r["routectl"], r["baseline"], r["goals"]
    k, n = r["clusters"], r["nodes_per_cluster"]

    def finish(x: Mapping[str, Any]) -> str:
        return " / ".join(f"{s:g}" for s in x["cluster_finish_s"])

    return [
        (f"Shared account, {k} clusters x {n} nodes at once: all converged (s)", str(ours["seconds"]),
         str(theirs["seconds"]), f"≤ {goals['vs_lower_bound']} x bound {r['lower_bound_s']} s",
         f"x bound: {ours['vs_lower_bound']} vs {theirs['vs_lower_bound']}"),
        ("Shared account: throttled share of all calls", f"{ours['throttled_share']:.2%}",
         f"{theirs['throttled_share']:.2%}", f"≤ {goals['throttled_share']:.0%}",
         f"{ours['throttled']} vs {theirs['throttled']} throttled responses"),
        ("Shared account: slowest / fastest cluster finish", str(ours["slowest_vs_fastest"]),
         str(theirs["slowest_vs_fastest"]), f"≤ {goals['slowest_vs_fastest']}",
         f"finish (s): {finish(ours)} vs {finish(theirs)}"),
    ]  # fmt: skip


def _restart(r: Mapping[str, Any]) -> list[Row]:
    n, t, goals = r["nodes"], r["tables"], r["goals"]
    drained = str(r.get("drain_s") or f"≈{r.get('drain_estimate_s')}")
    return [
        (f"Cold restart, {n} dual-stack nodes x {t} tables: time to ready (s)", str(r["ready_s"]), "n/a",
         "", f"first full pass converged; {r['node_syncs_in_window']} node syncs in the next window"),
        ("Cold restart: node syncs drained (s)", drained,
         "n/a", "", f"{r.get('node_syncs_per_s')} node syncs/s, mean {r.get('node_sync_mean_ms')} ms each"),
        ("Cold restart: cloud calls", _calls(r["cloud_calls"]), "n/a",
         f"{goals['lists_per_table']} list per table, {goals['cloud_writes']} writes",
         f"{r['cloud_writes']} cloud writes (incl. prepare_target)"),
        ("Cold restart: Kubernetes writes (nodes, events)", str(r["kube_node_writes"]), "n/a",
         str(goals["kube_node_writes"]), f"plus {r['kube_lease_writes']} Lease writes (leader election)"),
        (f"Cold restart: IPAM rebuild, {n} dual-stack nodes (s)", str(r["ipam_rebuild_s"]), "n/a",
         f"≤ {goals['ipam_rebuild_s']}", "`Allocator.rebuild`, median of 5"),
    ]  # fmt: skip


def _alibaba(r: Mapping[str, Any]) -> list[Row]:
    return [
        (f"Alibaba: write calls for {r['routes']} routes", str(r["write_calls"]),
         f"{r['routes']} (one per route)", f"{-(-r['routes'] // r['max_batch'])}",
         f"batches of ≤ {r['max_batch']}; converged in {r['seconds']} s"),
    ]  # fmt: skip


def _steady(r: Mapping[str, Any]) -> list[Row]:
    ours, theirs = r["routectl"], r["baseline"]
    return [
        (f"Steady state, {r['nodes']} nodes: API calls/hour", str(ours["calls_per_hour"]),
         str(theirs["calls_per_hour"]), "one list per table per period",
         f"full pass every {ours['default_period_s']:g} s vs {theirs['default_period_s']:g} s"),
        ("Out-of-band route deletion → repaired (mean s)", str(ours["repair"]["mean_s"]),
         str(theirs["repair"]["mean_s"]), "≈ period / 2",
         f"max {ours['repair']['max_s']} vs {theirs['repair']['max_s']} s; periods "
         f"{ours['repair_period_s']:g} s vs {theirs['repair_period_s']:g} s"),
    ]  # fmt: skip


def _join(r: Mapping[str, Any]) -> list[Row]:
    ours, theirs = r["routectl"], r["baseline"]
    return [
        ("Node join, podCIDR → verified route, p50 / p99 (s)", f"{ours['p50_s']} / {ours['p99_s']}",
         f"{theirs['p50_s']} / {theirs['p99_s']}", "",
         f"{r['joins']} joins into a {r['nodes']}-node cluster, one every {r['interval_s']} s"),
    ]  # fmt: skip


def _scale(r: Mapping[str, Any]) -> list[Row]:
    n, t = r["nodes"], r["tables"]
    return [
        (f"Scale: peak RSS, {n} nodes x {t} tables (MiB)", str(r["peak_rss_mib"]), "n/a", "",
         f"whole process; {r['world_rss_mib']} MiB before the controller started"),
        (f"Scale: one full plan, {n} nodes x {t} tables (s)", str(r["plan_converged_s"]), "n/a", "",
         f"{r['plan_fresh_s']} s when all {n * t} routes are missing"),
        (f"Scale: IPAM rebuild at startup, {n} nodes (s)", str(r["ipam_rebuild_s"]), "n/a", "",
         f"converged in {r['converge_s']} s with high cloud limits"),
    ]  # fmt: skip


def _failover(r: Mapping[str, Any]) -> list[Row]:
    kill, term = r["kill"], r["term"]
    lease = r["timings_s"]
    return [
        ("Failover: leader killed → standby's first write (s)", f"{kill['mean_s']} (max {kill['max_s']})",
         "n/a", f"max ≤ lease {lease['lease_duration']} s + 0.5 s", f"{kill['samples']} runs"),
        ("Failover: leader SIGTERM → standby's first write (s)", f"{term['mean_s']} (max {term['max_s']})",
         "n/a", "max ≤ 0.5 s", f"release seen by the lease watch; {term['samples']} runs"),
    ]  # fmt: skip


def _ipam(r: Mapping[str, Any]) -> list[Row]:
    alloc, rebuild = r["allocate_65536_slash24"], r["rebuild_5000_dual_stack_nodes"]
    return [
        ("IPAM: allocate all 65,536 /24 of 10.0.0.0/8 (s)", str(alloc["seconds"]), "n/a", "",
         f"{alloc['per_allocation_us']} µs each, peak {alloc['peak_mib']} MiB"),
        ("IPAM: pool rebuild, 5,000 dual-stack nodes (s)", str(rebuild["seconds"]), "n/a", "",
         f"parse + one `occupy_blocks`; peak {rebuild['peak_mib']} MiB"),
    ]  # fmt: skip


SECTIONS: dict[str, Callable[[Mapping[str, Any]], list[Row]]] = {
    "convergence": _convergence,
    "dual_stack": _dual_stack,
    "shared_account": _shared,
    "alibaba_batching": _alibaba,
    "steady_state": _steady,
    "join_latency": _join,
    "scale": _scale,
    "failover": _failover,
    "cold_restart": _restart,
    "ipam": _ipam,
}


def summary() -> Path:
    """`SUMMARY.md`: one table of every result present, then each result's `notes` (how it was measured
    and the arithmetic behind any scaled figure)."""
    rows: list[Row] = []
    notes: list[str] = []
    for name, section in SECTIONS.items():
        result = read(name)
        if result is not None:
            rows += section(result)
            notes += [f"- **{name}**: {note}" for note in result.get("notes", ())]
    host = read("machine")
    where = (
        f"Measured on {host['cpus']} CPUs ({host['cpu_model']}), Python {host['python']}, shared with "
        f"other work: 1-minute load average {host['load_1min_min']:.2f}-{host['load_1min_max']:.2f} "
        "during the run."
        if host
        else ""
    )
    lines = [
        "# routectl benchmark summary",
        "",
        "Produced by `make bench` (`python -m bench`); raw figures in `bench/results/*.json`.",
        where,
        "",
        "| Measure | routectl | baseline (k8s route controller) | Goal | Notes |",
        "|---|---|---|---|---|",
        *(f"| {' | '.join(cell or 'n/a' for cell in row)} |" for row in rows),
        "",
        "![convergence](convergence.png)",
        "",
        "![dual-stack](dual_stack.png)",
        "",
        "How each figure was measured:",
        "",
        *notes,
    ]
    path = RESULTS / "SUMMARY.md"
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path

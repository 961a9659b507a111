"""What the dataplane tier measures, printed at the end of the run and kept in bench/results/dataplane.json.

Figures, never assertions: the reachability matrix per provider (what a pod x pod echo sweep saw once
routectl reported every route created) and the time from a node joining to its pods' first echo reply,
with the steps in between. The JSON is written only when every provider contributed both, so a partial
run (`-k`) never overwrites a full one.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench import report

RESULT = "dataplane"
_MARK = {True: "ok", False: "--", None: " ."}


@dataclass(slots=True)
class Figures:
    started: datetime.datetime
    versions: dict[str, str]
    load_average: float = field(default_factory=lambda: os.getloadavg()[0])
    """The machine is shared: the 1-minute load average when the run started, for reading the times."""
    providers: dict[str, dict[str, Any]] = field(default_factory=dict)

    def record(self, provider: str, key: str, value: Any) -> None:
        self.providers.setdefault(provider, {})[key] = value

    def complete(self, providers: Iterable[str]) -> bool:
        return all({"matrix", "join"} <= set(self.providers.get(p, {})) for p in providers)

    def result(self) -> dict[str, Any]:
        return {
            "generated": self.started.isoformat(timespec="seconds"),
            "cpus": os.cpu_count(),
            "load_average_at_start": round(self.load_average, 2),
            "versions": self.versions,
            "providers": self.providers,
            "notes": [
                "Per provider: 3 nodes (network namespaces cabled to a router namespace whose table is "
                "synced from the emulated cloud every 0.25 s), each running the real flanneld (alloc) "
                "and two pods attached by the CNI bridge + host-local plugins; routectl runs as a process. "
                "Matrix: "
                "ICMP echo from every pod to every other pod, once routectl reported RouteCreated for every "
                "node and the router had mirrored the routes (ok = reply).",
                "Join: a fourth node joins a converged cluster; times from its Node object being created to: "
                "podCIDR assigned, flanneld's subnet file written, pods attached, the route reaching the "
                "router (via the cloud), the first echo reply from a pod on another node.",
            ],
        }

    def write(self) -> None:
        report.write(RESULT, self.result())

    def report(self) -> list[str]:
        lines: list[str] = []
        for provider, found in self.providers.items():
            if "matrix" in found:
                lines += ["", f"dataplane: pod x pod reachability, {provider} (ok = echo reply, -- = none)"]
                lines += render(found["matrix"]["pods"], found["matrix"]["reached"])
            if "join" in found:
                join = found["join"]
                steps = ", ".join(
                    f"{k.removesuffix('_s')} {v:.2f}s" for k, v in join.items() if k.endswith("_s")
                )
                lines.append(
                    f"dataplane: {provider} node join -> first ping {join['first_ping_s']:.2f}s ({steps})"
                )
        return lines


def render(pods: Sequence[str], reached: Sequence[Sequence[bool | None]]) -> list[str]:
    """The matrix as text: rows = from, columns = to."""
    width = max(len(p) for p in pods)
    head = " " * width + "  " + " ".join(p.rjust(width) for p in pods)
    rows = [
        f"{source.rjust(width)}  " + " ".join(_MARK[cell].rjust(width) for cell in row)
        for source, row in zip(pods, reached, strict=True)
    ]
    return [head, *rows]

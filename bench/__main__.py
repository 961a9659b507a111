"""`python -m bench [NAME ...] [--quick]`: run the benchmarks (all by default), print their figures, write
`bench/results/<name>.json`, the plots and `bench/results/SUMMARY.md`.

Every benchmark runs the real code on emulated clouds in this process (scale also in a child process);
a full run takes about 35 minutes, mostly the benchmarks bound by AWS-like rate limits (convergence,
dual_stack, shared_account). The machine and its load during the run go to `machine.json`.
`--quick` shrinks every size and period for a smoke run of a minute or two.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from bench import (
    alibaba_batching,
    cold_restart,
    convergence,
    dual_stack,
    failover,
    ipam_bench,
    join_latency,
    report,
    scale,
    shared_account,
    steady_state,
)
from routectl.ops import logs

BENCHMARKS: dict[str, Callable[[bool], dict[str, Any]]] = {
    "convergence": convergence.run,
    "dual_stack": dual_stack.run,
    "shared_account": shared_account.run,
    "alibaba_batching": alibaba_batching.run,
    "steady_state": steady_state.run,
    "join_latency": join_latency.run,
    "scale": scale.run,
    "failover": failover.run,
    "cold_restart": cold_restart.run,
}


def _show(name: str, result: dict[str, Any]) -> None:
    figures = {k: v for k, v in result.items() if k not in ("notes", "curves")}
    print(f"{name}: {json.dumps(figures)}", flush=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    every = [*BENCHMARKS, "ipam"]
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"default: all of {', '.join(every)}")
    parser.add_argument("--quick", action="store_true", help="small sizes and short periods (smoke run)")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in every]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(every)}")
    logs.setup("error", sys.stderr)
    names = args.names or every
    load = [os.getloadavg()[0]]
    for name in names:
        started = time.monotonic()
        print(f"== {name}{' (quick)' if args.quick else ''}", flush=True)
        if name == "ipam":
            ipam_bench.main()  # fast at full size; it has no quick mode
        else:
            result = BENCHMARKS[name](args.quick)
            report.write(name, result)
            _show(name, result)
        print(f"== {name} took {time.monotonic() - started:.0f} s", flush=True)
        load.append(os.getloadavg()[0])
    report.write("machine", report.machine(load))
    print(f"summary written to {report.summary()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

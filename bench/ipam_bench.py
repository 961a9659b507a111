"""IPAM benchmark: allocation speed and memory, pool rebuild time, IPv6 /32→/64 memory.

Prints the figures and writes them to ``bench/results/ipam.json``. Memory is measured with
``tracemalloc`` (Python allocations only), so figures are comparable run to run, not RSS.
"""

from __future__ import annotations

import json
import random
import time
import tracemalloc
from collections.abc import Callable
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Any

from ipam import CIDRPool, CIDRSet, network

RESULTS = Path(__file__).parent / "results" / "ipam.json"
MIB = 1024 * 1024


def measured(work: Callable[[], Any]) -> tuple[float, int, int, Any]:
    """Run ``work`` twice: (seconds untraced, peak traced bytes, bytes still held, its result).

    Timing runs without tracemalloc, which slows allocation-heavy code several times over.
    """
    start = time.perf_counter()
    work()
    seconds = time.perf_counter() - start
    tracemalloc.start()
    result = work()
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, peak, held, result


def allocate_all_of_10_slash_8() -> dict[str, Any]:
    """65,536 /24 allocations from 10.0.0.0/8, results discarded (the allocator's own cost)."""

    def work() -> CIDRSet:
        cidr_set = CIDRSet("10.0.0.0/8", node_mask=24)
        for _ in range(65_536):
            cidr_set.allocate()
        return cidr_set

    seconds, peak, held, cidr_set = measured(work)
    assert cidr_set.free == 0
    return {
        "blocks": 65_536,
        "seconds": round(seconds, 4),
        "per_allocation_us": round(seconds / 65_536 * 1e6, 2),
        "peak_mib": round(peak / MIB, 3),
        "held_after_kib": round(held / 1024, 1),
    }


def rebuild_from_5000_nodes() -> dict[str, Any]:
    """A new leader occupies 5,000 nodes' dual-stack podCIDRs (strings, scattered order) the way
    `Allocator.rebuild` does: each string parsed once, then every block in one `occupy_blocks`."""
    rng = random.Random(5000)
    indices = rng.sample(range(0xFF00), 5_000)  # 10.0.0.0/24 .. 10.254.255.0/24
    node_cidrs = [
        (
            str(IPv4Network((0x0A000000 + (i << 8), 24))),
            str(IPv6Network(((0xFD00 << 112) + (i << 64), 64))),
        )
        for i in indices
    ]

    def work() -> CIDRPool:
        pool = CIDRPool(["10.0.0.0/8", "fd00::/48"], reserved=["10.255.0.0/16"])
        pool.occupy_blocks([network(cidr) for podcidrs in node_cidrs for cidr in podcidrs])
        return pool

    seconds, peak, _held, pool = measured(work)
    assert sum(u.used for u in pool.usage()) == 10_000
    return {
        "nodes": 5_000,
        "seconds": round(seconds, 4),
        "per_node_us": round(seconds / 5_000 * 1e6, 2),
        "peak_mib": round(peak / MIB, 3),
    }


def ipv6_slash32_after_100k() -> dict[str, Any]:
    """Memory held by an fd00::/32 set of /64s after 100,000 allocations, then after releasing
    every second one (the worst fragmentation that many blocks can produce)."""
    base = int(IPv6Network("fd00::/32").network_address)

    def work() -> CIDRSet:
        cidr_set = CIDRSet("fd00::/32", node_mask=64)
        for _ in range(100_000):
            cidr_set.allocate()
        return cidr_set

    seconds, _peak, contiguous, cidr_set = measured(work)
    tracemalloc.start()
    for index in range(0, 100_000, 2):
        cidr_set.release(IPv6Network((base + (index << 64), 64)))
    fragmented = contiguous + tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert cidr_set.used == 50_000
    return {
        "capacity_blocks": cidr_set.capacity,
        "allocations": 100_000,
        "allocate_seconds": round(seconds, 4),
        "held_kib_after_100k": round(contiguous / 1024, 1),
        "held_kib_every_second_released": round(fragmented / 1024, 1),
    }


def main() -> None:
    results = {
        "allocate_65536_slash24": allocate_all_of_10_slash_8(),
        "rebuild_5000_dual_stack_nodes": rebuild_from_5000_nodes(),
        "ipv6_slash32_slash64_100k": ipv6_slash32_after_100k(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    for name, figures in results.items():
        print(f"ipam {name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
    print(f"ipam results written to {RESULTS}")


if __name__ == "__main__":
    main()

"""Emulated clouds for tests, the demo and benchmarks: a simulated cloud and HTTP emulators of the GCE and
Alibaba VPC APIs. No adapter imports them; product code never does either."""

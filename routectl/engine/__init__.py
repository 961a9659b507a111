"""The engine: allocator, planner (pure), executor, rate limiter, and the route reconciler with its route
view and node status.

It decides and writes through two ports, `routectl.cluster.Cluster` and `providers.RouteProvider`, and
imports neither the Kubernetes layer nor ops (docs/architecture.md, "Layers").
"""

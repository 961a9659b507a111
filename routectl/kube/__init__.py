"""The Kubernetes layer: API client, node informer, work queue, leader election, Event recording.

Only this package knows the API server; the engine sees Kubernetes through the `routectl.cluster.Cluster`
port (docs/architecture.md, "Layers").
"""

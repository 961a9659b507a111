"""`routectl demo` and its harness: the whole controller against an in-memory cluster and an embedded cloud.

Product code never imports this package; only the CLI's `demo` command reaches it.
"""

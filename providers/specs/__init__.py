"""The specs of the adapters shipped with routectl, one module per cloud, registered under the
entry-point group `routectl.providers` in pyproject.toml like any other adapter's.

Kept apart from the adapter modules so that discovering them imports no cloud SDK.
"""

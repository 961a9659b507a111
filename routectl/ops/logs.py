"""JSON-lines logging: one object per line with stable keys, so operators can filter by node or table.

Call sites use stdlib logging with `extra={...}`; only the keys in `FIELDS` are emitted, which keeps the
schema stable and stops stray record attributes from leaking into the output.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import TextIO

FIELDS = (
    "node",
    "table",
    "destination",
    "target",
    "op",
    "outcome",
    "attempt",
    "error",
    "reason",
    "cidr",
    "identity",
    "lease",
    "count",
    "elapsed_s",
    "converged",
    "cidrs",
    "in_doubt_s",
    "nodes",
    "changes",
    "transitions",
    "was_leading",
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in FIELDS:
            value = record.__dict__.get(key)
            if value is not None:
                entry[key] = value if isinstance(value, int | float | bool) else str(value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup(level: str, stream: TextIO = sys.stderr) -> None:
    """Route every routectl log line through one JSON handler on `stream`."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The SDKs log every HTTP request at INFO/DEBUG; keep them out unless they warn.
    for noisy in ("botocore", "boto3", "urllib3", "kubernetes", "google", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

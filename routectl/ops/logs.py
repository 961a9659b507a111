"""Log lines with stable keys, so operators can filter by node or table: JSON lines (the default, for log
pipelines) or text (`--log-format text`: logfmt-style `key=value` pairs, for people reading a terminal).

Call sites use stdlib logging with `extra={...}`; only the keys in `FIELDS` are emitted, which keeps the
schema stable and stops stray record attributes from leaking into the output. Both formats carry the
same entry: `ts`, `level`, `logger`, `msg`, the `FIELDS` present, and `exc` for a traceback.
"""

from __future__ import annotations

import json
import logging
import re
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


FORMATS = ("json", "text")
"""The values of `--log-format`."""

_BARE = re.compile(r"[^\s\"=]+")
"""A text-format value that needs no quotes."""


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(self.entry(record), ensure_ascii=False)

    def entry(self, record: logging.LogRecord) -> dict[str, object]:
        """What one record says, in both formats."""
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
        return entry


class TextFormatter(JsonFormatter):
    """`<ts> <level> <logger> <msg> key=value ...`; a value with spaces or quotes is JSON-quoted, a
    traceback follows on its own lines."""

    def format(self, record: logging.LogRecord) -> str:
        entry = self.entry(record)
        exc = entry.pop("exc", None)
        head = [str(entry.pop(key)) for key in ("ts", "level", "logger")]
        head[1] = head[1].upper().ljust(7)
        line = " ".join([*head, str(entry.pop("msg")), *(f"{k}={_text(v)}" for k, v in entry.items())])
        return f"{line}\n{exc}" if exc else line


def _text(value: object) -> str:
    text = json.dumps(value) if isinstance(value, bool) else str(value)
    return text if _BARE.fullmatch(text) else json.dumps(text, ensure_ascii=False)


def setup(level: str, stream: TextIO = sys.stderr, fmt: str = "json") -> None:
    """Route every routectl log line through one handler on `stream`, in format `fmt` (`FORMATS`)."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(TextFormatter() if fmt == "text" else JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The SDKs log every HTTP request at INFO/DEBUG; keep them out unless they warn.
    for noisy in ("botocore", "boto3", "urllib3", "kubernetes", "google", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

"""Aligned text columns for the human-readable outputs (`routectl plan`, `routectl demo`)."""

from __future__ import annotations

from collections.abc import Sequence


def columns(rows: Sequence[Sequence[str]]) -> list[str]:
    """Each row as one line, every column padded to its widest cell; trailing space trimmed."""
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))] if rows else []
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]

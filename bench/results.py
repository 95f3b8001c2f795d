"""Raw samples of a run, notes on what could not be measured, and their summaries."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Results", "Stat", "percentile", "summarize"]

Stat = Literal["p50", "p99", "min", "max", "mean"]


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0..100) with linear interpolation."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize(values: list[float], stat: Stat) -> float:
    """One number for a list of samples."""
    if stat == "p50":
        return statistics.median(values)
    if stat == "p99":
        return percentile(values, 99)
    if stat == "min":
        return min(values)
    if stat == "max":
        return max(values)
    return statistics.fmean(values)


@dataclass
class Results:
    """Every sample of a run, keyed by series then target; plus notes and errors."""

    samples: dict[str, dict[str, list[float]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )
    notes: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    errors: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    extra: dict[str, dict[str, Any]] = field(default_factory=lambda: defaultdict(dict))

    def add(self, series: str, target: str, *values: float) -> None:
        """Record samples of ``series`` for ``target``."""
        self.samples[series][target].extend(values)

    def values(self, series: str, target: str) -> list[float]:
        """The samples recorded so far (empty when none)."""
        return list(self.samples.get(series, {}).get(target, []))

    def note(self, series: str, target: str, text: str) -> None:
        """Say why ``series`` has no value for ``target`` (shown in the table)."""
        self.notes[series].setdefault(target, text)

    def error(self, series: str, target: str, text: str) -> None:
        """Record a failure that should not have happened (fails the run)."""
        self.errors.append(f"{series} / {target}: {text}")
        self.note(series, target, "ERROR")

    def as_json(self) -> dict[str, Any]:
        """Plain data for the results file."""
        return {
            "samples": {s: dict(t) for s, t in self.samples.items()},
            "notes": {s: dict(t) for s, t in self.notes.items()},
            "errors": self.errors,
            "failures": self.failures,
            "extra": {s: dict(t) for s, t in self.extra.items()},
        }

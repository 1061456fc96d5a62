"""What a load run measured: per kind of request, status counts and latencies.

Latencies are wall-clock seconds from sending a request to having read its whole response
(`time.perf_counter`), one sample per request; percentiles are nearest-rank on all samples.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

# Transport failures (timeout, connection refused or reset) are counted under this "status".
ERROR = "error"


def percentile(sorted_samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted samples (0.0 for none)."""
    if not sorted_samples:
        return 0.0
    rank = max(1, math.ceil(fraction * len(sorted_samples)))
    return sorted_samples[rank - 1]


@dataclass
class Series:
    """Responses of one kind of request (book, retry, confirm, cancel)."""

    statuses: Counter[int | str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)

    def add(self, status: int | str, seconds: float) -> None:
        self.statuses[status] += 1
        self.latencies.append(seconds)

    @property
    def count(self) -> int:
        return len(self.latencies)

    def summary(self) -> dict[str, float]:
        """p50, p95, p99 and max latency in milliseconds."""
        ordered = sorted(self.latencies)
        return {
            "p50": percentile(ordered, 0.50) * 1000,
            "p95": percentile(ordered, 0.95) * 1000,
            "p99": percentile(ordered, 0.99) * 1000,
            "max": (ordered[-1] if ordered else 0.0) * 1000,
        }


@dataclass
class RunStats:
    book: Series = field(default_factory=Series)
    retry: Series = field(default_factory=Series)
    confirm: Series = field(default_factory=Series)
    cancel: Series = field(default_factory=Series)
    elapsed: float = 0.0
    # Bookings answered 201 (CONFIRMED, or HELD for a hold).
    confirmed_ids: set[str] = field(default_factory=set)
    # Holds answered HELD; of them, confirmed (200), confirmed too late (409 HOLD_EXPIRED),
    # released by a cancel before any confirm.
    holds: int = 0
    hold_confirms: int = 0
    hold_expired_answers: int = 0
    holds_released: int = 0

    def series(self) -> dict[str, Series]:
        return {"book": self.book, "retry": self.retry, "confirm": self.confirm, "cancel": self.cancel}

    @property
    def holds_left_to_expire(self) -> int:
        """Holds neither confirmed nor released: they run out (EXPIRED)."""
        return self.holds - self.hold_confirms - self.holds_released

    @property
    def bookings_per_second(self) -> float:
        """POST /bookings answered per second (every status: a 409 is work done too)."""
        return self.book.count / self.elapsed if self.elapsed else 0.0

    def report(self) -> str:
        lines = [
            f"{self.book.count} bookings requested in {self.elapsed:.2f} s: "
            f"{self.bookings_per_second:.1f} bookings/s "
            f"({len(self.confirmed_ids) / self.elapsed if self.elapsed else 0.0:.1f} confirmed/s)"
        ]
        for name, series in self.series().items():
            if not series.count:
                continue
            s = series.summary()
            statuses = ", ".join(f"{k}: {v}" for k, v in sorted(series.statuses.items(), key=lambda kv: str(kv[0])))
            lines.append(
                f"  {name:<7} {series.count:>7} requests  latency ms p50 {s['p50']:.1f}  p95 {s['p95']:.1f}  "
                f"p99 {s['p99']:.1f}  max {s['max']:.1f}   status {statuses}"
            )
        if self.holds:
            lines.append(
                f"  holds: {self.holds} HELD; {self.hold_confirms} confirmed, {self.hold_expired_answers} "
                f"confirmed too late (409 HOLD_EXPIRED), {self.holds_released} released, "
                f"{self.holds_left_to_expire} left to expire"
            )
        return "\n".join(lines)

"""The runbook's Normal / Warning / Critical thresholds, and the one rule that fills its gaps.

The runbook ("Key Metrics to Watch") gives three bands per metric but leaves gaps between
them (queue depth 6-9 and 21-50, completion time 5-10 min, cold start 120-180 s, error rate
5-10 %, worker memory 85-90 %). Our rule, the same for every metric:

* **Normal** up to the runbook's Normal bound;
* **Critical** only strictly beyond the runbook's Critical bound;
* **Warning** everything in between, the runbook's gaps included (warn early, page late).

| metric               | Normal      | Warning        | Critical  | runbook says               |
|----------------------|-------------|----------------|-----------|----------------------------|
| queue depth (jobs)   | 0-5         | 6-50           | > 50      | 0-5 / 10-20 / >50          |
| job completion time  | < 2 min     | 2-10 min       | > 10 min  | <2 min / 2-5 min / >10 min |
| Modal cold start     | < 60 s      | 60-180 s       | > 180 s   | <60s / 60-120s / >180s     |
| error rate           | < 1 %       | 1-10 %         | > 10 %    | <1% / 1-5% / >10%          |
| worker memory        | < 70 %      | 70-90 %        | > 90 %    | <70% / 70-85% / >90%       |

Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Level(StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"
    CRITICAL = "Critical"


@dataclass(frozen=True)
class Band:
    """One row of the table above."""

    label: str
    unit: str
    #: the largest Normal value (inclusive when `normal_inclusive`, else exclusive)
    normal_max: float
    normal_inclusive: bool
    #: values strictly above this are Critical
    critical_above: float
    runbook: str
    #: how `describe` shows the bounds: value / scale, in `shown_unit`
    scale: float = 1.0
    shown_unit: str = ""

    def classify(self, value: float) -> Level:
        """The level of `value` in this band."""
        if value > self.critical_above:
            return Level.CRITICAL
        if value < self.normal_max or (self.normal_inclusive and value == self.normal_max):
            return Level.NORMAL
        return Level.WARNING

    def describe(self) -> str:
        """'Normal 0-5, Warning 6-50, Critical > 50' style summary of the band."""
        normal, critical = self.normal_max / self.scale, self.critical_above / self.scale
        unit = self.shown_unit or self.unit
        if self.normal_inclusive:
            return (
                f"Normal 0-{_num(normal)}, Warning {_num(normal + 1)}-{_num(critical)}, "
                f"Critical over {_num(critical)} {unit}"
            )
        return (
            f"Normal under {_num(normal)}, Warning {_num(normal)}-{_num(critical)}, "
            f"Critical over {_num(critical)} {unit}"
        )


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


QUEUE_DEPTH = "queue_depth"
COMPLETION_TIME_S = "completion_time_s"
MODAL_COLD_START_S = "modal_cold_start_s"
ERROR_RATE_PCT = "error_rate_pct"
WORKER_MEMORY_PCT = "worker_memory_pct"

THRESHOLDS: dict[str, Band] = {
    QUEUE_DEPTH: Band("Queue depth", "jobs", 5, True, 50, "0-5 / 10-20 / >50"),
    COMPLETION_TIME_S: Band(
        "Job completion time", "s", 120, False, 600, "<2 min / 2-5 min / >10 min", 60, "min"
    ),
    MODAL_COLD_START_S: Band("Modal cold start", "s", 60, False, 180, "<60s / 60-120s / >180s"),
    ERROR_RATE_PCT: Band("Error rate", "%", 1, False, 10, "<1% / 1-5% / >10%"),
    WORKER_MEMORY_PCT: Band("Worker memory", "%", 70, False, 90, "<70% / 70-85% / >90%"),
}


def classify(metric: str, value: float | None) -> Level | None:
    """The level of `value` for `metric` (a key of THRESHOLDS); None when there is no value."""
    if value is None:
        return None
    return THRESHOLDS[metric].classify(value)


def worst(levels: list[Level | None]) -> Level | None:
    """The most severe of `levels` (None entries ignored)."""
    order = [Level.NORMAL, Level.WARNING, Level.CRITICAL]
    present = [lvl for lvl in levels if lvl is not None]
    return max(present, key=order.index) if present else None

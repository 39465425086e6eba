"""The global filters every rollup takes (docs/design.md), and the allowed dimensions.

A filter value chosen by a user is always a bound parameter; a dimension (a "group by"
picker) must be one of DIMENSIONS, never free text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ingest.store.vocabulary import SOURCE_TYPES, TASK_STATUSES

# Dimension name -> column of the mirror's task view it groups by.
DIMENSIONS = {
    "provider": "provider",
    "model": "model",
    "endpoint": "endpoint",
    "source_type": "source_type",
    "service": "service",
    "task_name": "task_name",
    "user": "user_id",
    "team": "team",
    "tag": "tag",
    "status": "status",
    "variant": "variant",
}
GRAINS = ("day", "week", "month")


@dataclass(frozen=True)
class Filters:
    """What to look at: a half-open UTC time range [start, end) on task created_at, and
    optional allow-lists; an empty tuple means no restriction on that field. variants: the
    tasks' A/B labels (a task's own, else its run's; docs/quality.md).

    visible_runs: who is looking (docs/access.md). None: every run (an admin, or a trusted
    caller with no viewer); a tuple: only these run ids, the set Postgres's row-level
    security gave the viewer (`ingest.access.viewer.visible_runs`); () sees nothing.
    """

    start: datetime
    end: datetime
    source_types: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    statuses: tuple[str, ...] = field(default=())
    variants: tuple[str, ...] = ()
    visible_runs: tuple[str, ...] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if value.tzinfo is None:
                object.__setattr__(self, name, value.replace(tzinfo=UTC))
        if self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        _check_allowed("source_types", self.source_types, SOURCE_TYPES)
        _check_allowed("statuses", self.statuses, TASK_STATUSES)

    @classmethod
    def last_days(cls, days: int, now: datetime | None = None, **kwargs) -> Filters:
        """The `days` whole UTC days up to and including today."""
        now = now or datetime.now(UTC)
        end = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
        return cls(start=end - timedelta(days=days), end=end, **kwargs)

    def previous_period(self) -> Filters:
        """The period of equal length just before this one, same other filters."""
        length = self.end - self.start
        return type(self)(**{**self.__dict__, "start": self.start - length, "end": self.start})


def _check_allowed(field_name: str, values: tuple[str, ...], allowed: tuple[str, ...]) -> None:
    bad = [v for v in values if v not in allowed]
    if bad:
        raise ValueError(f"{field_name}: {bad} not allowed; allowed values are {list(allowed)}")


def dimension_column(name: str) -> str:
    """The column behind an allowed dimension; ValueError naming the allowed ones."""
    try:
        return DIMENSIONS[name]
    except KeyError:
        raise ValueError(
            f"dimension {name!r} is not allowed; choose one of {sorted(DIMENSIONS)}"
        ) from None

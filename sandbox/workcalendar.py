"""Working days in mainland China, for review deadlines (R4: Wuxi Art.15(3)).

A provider answers an application within 10 *working* days of receipt. A day
is a working day if it is Monday to Friday and not a public holiday, or if it
is a weekend day declared a make-up working day (调休上班).

The holiday schedule is published each year by the State Council's General
Office, usually in November for the following year. The 2026 schedule ships
as data below; the operator adds later years (or corrects any day) through the
settings ``SANDBOX_HOLIDAYS`` and ``SANDBOX_MAKEUP_WORKDAYS`` (JSON lists of
ISO dates). Years with no published schedule count weekends only.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import date, timedelta

from sandbox.errors import ValidationFailed
from sandbox.settings import Settings


def _days(first: date, last: date) -> set[date]:
    return {first + timedelta(days=i) for i in range((last - first).days + 1)}


#: 国务院办公厅关于2026年部分节假日安排的通知 (4 November 2025): days off.
HOLIDAYS_2026: frozenset[date] = frozenset(
    _days(date(2026, 1, 1), date(2026, 1, 3))  # 元旦
    | _days(date(2026, 2, 15), date(2026, 2, 23))  # 春节
    | _days(date(2026, 4, 4), date(2026, 4, 6))  # 清明节
    | _days(date(2026, 5, 1), date(2026, 5, 5))  # 劳动节
    | _days(date(2026, 6, 19), date(2026, 6, 21))  # 端午节
    | _days(date(2026, 9, 25), date(2026, 9, 27))  # 中秋节
    | _days(date(2026, 10, 1), date(2026, 10, 7))  # 国庆节
)

#: The same notice: weekend days worked in exchange (调休上班).
MAKEUP_WORKDAYS_2026: frozenset[date] = frozenset(
    {
        date(2026, 1, 4),
        date(2026, 2, 14),
        date(2026, 2, 28),
        date(2026, 5, 9),
        date(2026, 9, 20),
        date(2026, 10, 10),
    }
)


@dataclass(frozen=True)
class WorkCalendar:
    """Which days are working days: weekdays, minus holidays, plus make-up working days."""

    holidays: AbstractSet[date] = frozenset()
    makeup_workdays: AbstractSet[date] = frozenset()

    def __post_init__(self) -> None:
        both = sorted(self.holidays & self.makeup_workdays)
        if both:
            raise ValidationFailed(
                f"{', '.join(map(str, both))} cannot be both a holiday and a make-up working day",
                rule="work-calendar",
            )
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        object.__setattr__(self, "makeup_workdays", frozenset(self.makeup_workdays))

    def is_working_day(self, day: date) -> bool:
        if day in self.makeup_workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def add_working_days(self, start: date, n: int) -> date:
        """The n-th working day after ``start``: the deadline for something received on ``start``.

        The day of receipt is not counted, whether or not it is a working day.
        """
        if n < 0:
            raise ValueError("n must be zero or more working days")
        day = start
        while n:
            day += timedelta(days=1)
            n -= self.is_working_day(day)
        return day

    def working_days_between(self, a: date, b: date) -> int:
        """Working days after ``a`` up to and including ``b`` (negative when b is before a).

        So ``working_days_between(d, add_working_days(d, n)) == n``.
        """
        if b < a:
            return -self.working_days_between(b, a)
        return sum(self.is_working_day(a + timedelta(days=i)) for i in range(1, (b - a).days + 1))


def _iso_dates(values: list[str], setting: str) -> set[date]:
    try:
        return {date.fromisoformat(v) for v in values}
    except ValueError as exc:
        raise ValidationFailed(
            f"{setting}: every entry must be an ISO date such as 2027-01-01",
            rule="work-calendar",
        ) from exc


def calendar_from_settings(settings: Settings) -> WorkCalendar:
    """The shipped schedule, with the operator's settings taking precedence day by day."""
    extra_off = _iso_dates(settings.holidays, "SANDBOX_HOLIDAYS")
    extra_on = _iso_dates(settings.makeup_workdays, "SANDBOX_MAKEUP_WORKDAYS")
    return WorkCalendar(
        holidays=(HOLIDAYS_2026 - extra_on) | extra_off,
        makeup_workdays=(MAKEUP_WORKDAYS_2026 - extra_off) | extra_on,
    )

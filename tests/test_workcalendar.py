"""Working days for the 10-working-day review deadline (R4: Wuxi Art.15(3))."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.errors import ValidationFailed
from sandbox.settings import Settings
from sandbox.workcalendar import (
    HOLIDAYS_2026,
    MAKEUP_WORKDAYS_2026,
    WorkCalendar,
    calendar_from_settings,
)

CAL = WorkCalendar(HOLIDAYS_2026, MAKEUP_WORKDAYS_2026)


def test_2026_schedule_as_published() -> None:
    assert not CAL.is_working_day(date(2026, 2, 17))  # 春节, a Tuesday
    assert CAL.is_working_day(date(2026, 2, 14))  # Saturday worked (调休)
    assert CAL.is_working_day(date(2026, 1, 4))  # Sunday worked
    assert not CAL.is_working_day(date(2026, 3, 7))  # ordinary Saturday
    assert CAL.is_working_day(date(2026, 3, 4))  # ordinary Wednesday
    assert all(d.weekday() >= 5 for d in MAKEUP_WORKDAYS_2026)
    assert len(HOLIDAYS_2026) == 3 + 9 + 3 + 5 + 3 + 3 + 7


def test_2026_has_248_working_days() -> None:
    # 365 days - 104 weekend days - 19 holidays on weekdays + 6 weekend days worked.
    assert CAL.working_days_between(date(2025, 12, 31), date(2026, 12, 31)) == 248


@pytest.mark.parametrize(
    ("received", "deadline"),
    [
        (date(2026, 3, 2), date(2026, 3, 16)),  # Monday: two plain weeks
        (date(2026, 3, 7), date(2026, 3, 20)),  # received on a Saturday
        (date(2026, 2, 13), date(2026, 3, 5)),  # over the Spring Festival, both 调休 Saturdays
        (date(2026, 9, 30), date(2026, 10, 20)),  # over National Day and the 10 October Saturday
    ],
)
def test_ten_working_day_deadlines(received: date, deadline: date) -> None:
    assert CAL.add_working_days(received, 10) == deadline


def test_receipt_day_is_not_counted() -> None:
    assert CAL.add_working_days(date(2026, 3, 2), 1) == date(2026, 3, 3)
    assert CAL.add_working_days(date(2026, 3, 2), 0) == date(2026, 3, 2)
    with pytest.raises(ValueError):
        CAL.add_working_days(date(2026, 3, 2), -1)


@settings(deadline=None)
@given(st.dates(date(2025, 11, 1), date(2027, 2, 1)), st.integers(0, 40))
def test_between_inverts_add(start: date, n: int) -> None:
    end = CAL.add_working_days(start, n)
    assert CAL.working_days_between(start, end) == n
    assert CAL.working_days_between(end, start) == -n
    if n:
        assert CAL.is_working_day(end)
        assert CAL.working_days_between(start, end - timedelta(days=1)) == n - 1


def test_settings_add_and_override_days() -> None:
    cal = calendar_from_settings(
        Settings(holidays=["2027-01-01", "2026-10-10"], makeup_workdays=["2026-10-07"])
    )
    assert not cal.is_working_day(date(2027, 1, 1))  # a later year, added by the operator
    assert not cal.is_working_day(date(2026, 10, 10))  # shipped makeup day overridden
    assert cal.is_working_day(date(2026, 10, 7))  # shipped holiday overridden
    assert calendar_from_settings(Settings()) == CAL


def test_bad_settings_are_refused_by_name() -> None:
    with pytest.raises(ValidationFailed, match="SANDBOX_HOLIDAYS: every entry must be an ISO date"):
        calendar_from_settings(Settings(holidays=["1 Jan 2027"]))
    with pytest.raises(ValidationFailed, match="2027-01-02 cannot be both"):
        calendar_from_settings(Settings(holidays=["2027-01-02"], makeup_workdays=["2027-01-02"]))

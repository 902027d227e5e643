"""Today's date in the platform's time zone: agreement dates are Asia/Shanghai calendar days."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sandbox.settings import get_settings


def today() -> date:
    return datetime.now(ZoneInfo(get_settings().timezone)).date()

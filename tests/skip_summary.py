"""One line per real part at the end of a run: how many of its tests were skipped, and why.

A skip belongs to a part when tests/resources.py gave it (``"<part> unavailable: …"``) or
when the test carries the part's marker. ``-ra`` lists every skip; these lines say what
the run could not use, so a missing server is not lost among 1,000 passes.
"""

from __future__ import annotations

from collections import Counter

import pytest

PARTS = ("postgres", "docker", "browser")


def _reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")


def part_of(reason: str, keywords: object) -> str | None:
    """The part a skip is for: the one its reason names, else the one its markers name."""
    for part in PARTS:
        if reason.startswith(f"{part} unavailable:"):
            return part
    return next((part for part in PARTS if part in keywords), None)  # type: ignore[operator]


def skips_by_part(skipped: list[pytest.TestReport]) -> dict[str, Counter[str]]:
    """Each part's skip reasons and how many tests each stopped."""
    found: dict[str, Counter[str]] = {part: Counter() for part in PARTS}
    for report in skipped:
        reason = _reason(report)
        part = part_of(reason, report.keywords)
        if part is not None:
            found[part][reason] += 1
    return found


def lines(
    skipped: list[pytest.TestReport], *, ran_on: dict[str, str], why: dict[str, str]
) -> list[str]:
    """The summary, one line per part. ``ran_on`` says what a part used (shown when none of
    its tests skipped); ``why`` replaces a part's skip reason (the local PostgreSQL search
    says where it looked)."""
    out = []
    for part, reasons in skips_by_part(skipped).items():
        count = sum(reasons.values())
        if not count:
            used = f" (ran on {ran_on[part]})" if part in ran_on else ""
            out.append(f"{part}: no test skipped{used}")
            continue
        [(reason, _)] = reasons.most_common(1)
        others = f" (and {len(reasons) - 1} other reasons)" if len(reasons) > 1 else ""
        tests = "1 test" if count == 1 else f"{count} tests"
        out.append(f"{part}: {tests} skipped — {why.get(part, reason)}{others}")
    return out

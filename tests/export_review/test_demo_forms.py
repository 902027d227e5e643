"""The demo agreements let every output form leave somewhere (issue 13, item 3), and a figure
only where its table's form may leave too, so `make run` can show each form end to end."""

from __future__ import annotations

from export_review.forms import FORMS, check_form_allowed
from sandbox.contracts import load_agreement
from sandbox.demo import DEMO_AGREEMENTS_DIR

DEMO = [load_agreement(p) for p in sorted(DEMO_AGREEMENTS_DIR.glob("*.yaml"))]


def test_each_form_but_report_can_leave_in_the_demo() -> None:
    shown = {f for a in DEMO for f in a.outputs}
    assert {"dp_table", "table", "figure", "code"} <= shown <= set(FORMS)


def test_a_demo_figure_can_leave_with_its_table() -> None:
    for agreement in (a for a in DEMO if "figure" in a.outputs):
        dp = "dp_table" in agreement.outputs
        check_form_allowed(agreement, "figure", dp=dp)  # raises when its table could not leave

"""The output forms an agreement lets leave (its clause ``outputs``): what each one is, in one
sentence, and which kinds of file each holds.

One table, read by the automatic checks, the researcher's export page, the query service
and the welcome notebook, so that what is offered, what is explained and what is checked
cannot drift apart. A form the agreement does not name is refused with the clause named
(Shanghai Art.15: the agreement fixes the conditions of use).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath

from export_review.file_gate import EXTENSIONS
from sandbox.contracts.agreement import Agreement
from sandbox.errors import PolicyViolation, ValidationFailed

CLAUSE = "agreement clause outputs"


@dataclass(frozen=True)
class OutputForm:
    """One output form: its one-sentence explanation (Chinese, English) and its file kinds."""

    name: str
    zh: str
    en: str
    #: File kinds (``export_review.file_gate.EXTENSIONS`` values) a request of this form holds.
    file_kinds: tuple[str, ...]


FORMS: dict[str, OutputForm] = {
    f.name: f
    for f in (
        OutputForm(
            "dp_table",
            "差分隐私统计表：平台以差分隐私发布查询结果并计入隐私预算，在工作空间中用 "
            "`db.dp(sql, epsilon, purpose=...)` 提交。",
            "A table of statistics the platform releases with differential privacy, charged "
            "to the privacy budget; submitted from the workspace with "
            "`db.dp(sql, epsilon, purpose=...)`.",
            (),
        ),
        OutputForm(
            "table",
            "经检查的统计表：CSV（或 JSON）表格，平台按协议的阈值从底层记录复核每个单元格。",
            "A table of statistics as CSV (or JSON) whose every cell the platform re-checks "
            "from the rows behind it under the agreement's thresholds.",
            ("csv", "json"),
        ),
        OutputForm(
            "figure",
            "图表：一份图表说明（种类、横轴、纵轴、分组、标题）加上其数据表（经检查的表格或差分隐私发布），"
            "由平台绘制；研究者自己的图片文件不能离开。",
            "A chart specification (kind, x, y, series, title) with its table (a checked table "
            "or a DP release), drawn by the platform; the researcher's own image files never "
            "leave.",
            ("csv",),
        ),
        OutputForm(
            "report",
            "报告：TXT 或 Markdown 文本，不得含有标识符。",
            "A report as plain text or Markdown, holding no identifiers.",
            ("text",),
        ),
        OutputForm(
            "code",
            "代码：不含输出的笔记本（.ipynb）或脚本（.py、.sql、.R），供发表时公开分析方法。",
            "Code for publication: a notebook without outputs (.ipynb) or scripts (.py, .sql, .R).",
            ("notebook", "code"),
        ),
    )
}


def allowed_forms(agreement: Agreement) -> list[OutputForm]:
    """The forms this agreement lets leave, in the agreement's order."""
    return [FORMS[name] for name in agreement.outputs]


def known_form(form: str) -> OutputForm:
    """The named form, or a refusal listing the forms there are (bad input, nothing stored)."""
    if form not in FORMS:
        raise ValidationFailed(
            f"unknown output form {form!r}; the forms are: {', '.join(FORMS)}",
            rule="export-output-form",
            article=CLAUSE,
        )
    return FORMS[form]


def form_of_files(names: Sequence[str]) -> str:
    """The form files name by their kinds when a request omits it (requests made before
    forms were named): the one form other than a figure, which needs its chart, that
    holds them all; otherwise a refusal asking for the form."""
    kinds = {EXTENSIONS.get(PurePath(n).suffix.lower()) for n in names} - {None}
    fits = [f.name for f in FORMS.values() if f.name != "figure" and kinds <= set(f.file_kinds)]
    if not kinds or len(fits) != 1:
        raise ValidationFailed(
            "name the output form of this request; the forms are: " + ", ".join(FORMS),
            rule="export-output-form",
            article=CLAUSE,
        )
    return fits[0]


def check_form_allowed(agreement: Agreement, form: str, *, dp: bool) -> None:
    """Raise unless ``agreement`` lets ``form`` leave; a figure leaves with its table, so the
    table's own form (``dp_table`` for a DP release, ``table`` for a checked one) must be
    allowed too."""
    known_form(form)
    allowed = ", ".join(agreement.outputs)
    if form not in agreement.outputs:
        hint = " (tables of statistics leave as DP releases)" if form == "table" else ""
        raise PolicyViolation(
            "export-output-form",
            CLAUSE,
            f"agreement {agreement.id} lets {allowed} leave, not {form}{hint}",
        )
    table_form = "dp_table" if dp else "table"
    if form == "figure" and table_form not in agreement.outputs:
        source = "a checked table" if table_form == "table" else "a DP release"
        other = "a DP release (db.dp)" if table_form == "table" else "a checked table"
        raise PolicyViolation(
            "export-output-form",
            CLAUSE,
            f"a figure leaves with the table it is drawn from, and agreement {agreement.id} "
            f"lets {allowed} leave, not {table_form}: draw it from {other}, not from {source}",
        )
    if dp and form not in ("dp_table", "figure"):
        raise PolicyViolation(
            "export-output-form", CLAUSE, f"a DP release leaves as dp_table or figure, not {form}"
        )
    if form == "dp_table" and not dp:
        raise PolicyViolation(
            "export-output-form",
            CLAUSE,
            "a dp_table is a DP release made by the platform (db.dp(sql, epsilon, purpose=...) "
            "in the workspace), not an uploaded file",
        )

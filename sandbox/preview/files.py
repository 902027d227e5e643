"""The files people download, each saying in Chinese and English that it is synthetic.

The label is carried three ways, so it survives whichever one a tool drops:
the file name ends ``_SYNTHETIC_PREVIEW``, the CSV's first line is a ``#``
comment (read it with ``pandas.read_csv(path, comment="#")``), and every row
has a ``SYNTHETIC_PREVIEW`` column. The zip adds a bilingual README and the
released marginals (``marginals.json``), which are the DP release itself.
CSV is written as UTF-8 with a byte-order mark so that spreadsheet software
shows the Chinese text correctly.
"""

from __future__ import annotations

import io
import json
import zipfile

from export_review.ledger import DELTA_UNIT, EPSILON_UNIT
from sandbox.preview.models import SyntheticPreview

README_NAME = "README_SYNTHETIC_PREVIEW.txt"
MARGINALS_NAME = "marginals.json"


def file_stem(preview: SyntheticPreview) -> str:
    return f"{preview.dataset}_v{preview.dataset_version}_SYNTHETIC_PREVIEW"


def _cost(preview: SyntheticPreview) -> str:
    return f"ε={preview.epsilon / EPSILON_UNIT:g}, δ={preview.delta / DELTA_UNIT:.3g}"


def comment_line(preview: SyntheticPreview) -> str:
    return (
        f"# 合成预览数据，非真实数据 SYNTHETIC PREVIEW, NOT REAL DATA: {preview.dataset} "
        f"v{preview.dataset_version}. 由差分隐私单变量边际分布随机生成，任何一行都不对应真实的"
        "个人或组织 / drawn at random from differentially private one-way marginals "
        f"({_cost(preview)}); no row describes a real person or organisation."
    )


def labelled_csv(preview: SyntheticPreview) -> bytes:
    """The sample as a CSV file: the comment line, then the header and the rows."""
    return (comment_line(preview) + "\n" + preview.sample_csv).encode("utf-8-sig")


def _column_lines(preview: SyntheticPreview) -> list[str]:
    return [f"  - {c['name']} ({c['type']}): {c['reason']}" for c in preview.marginals["columns"]]


def readme(preview: SyntheticPreview, title: str, conditions: str) -> str:
    """The bilingual README: what the preview is, how it was made, what it is not."""
    columns = "\n".join(_column_lines(preview))
    return f"""\
合成预览数据（非真实数据） / SYNTHETIC PREVIEW (NOT REAL DATA)
=================================================================

数据集 Dataset: {preview.dataset} — {title}, 版本 version {preview.dataset_version}
生成时间 Generated: {preview.created_at:%Y-%m-%d %H:%M} UTC; {preview.rows} 行 rows

【中文】
本文件是有条件开放数据集的合成预览（《上海市公共数据开放暂行办法》第十八条：数据查询、预览和获取）。
文件中的每一行都是随机生成的，不是真实记录，也不对应任何真实的个人或组织。
生成方法：平台先用 OpenDP 对每一列计算满足差分隐私的单变量边际分布（有公开取值的列按取值计数；
有公开上下界的数值列按等宽分箱计数；日期列按月计数，月份经噪声阈值筛选），再从这些带噪声的分布中
逐列独立抽样。因此，各列之间的关系（相关性）没有保留，不能用于任何分析结论。
身份标识列（身份证号码、统一社会信用代码等）填入的是行政区划代码 99（不存在的地区）的占位值，
校验位有效但不含任何信息。没有公开取值或上下界的列（如自由文本）不予提供，留空。
隐私保护单位：数据集的主体（{preview.max_contributions} 行/主体为上限）；本次预览消耗的隐私预算：
{_cost(preview)}，由数据开放主体设定的预览预算支付。
如需真实数据，请按目录公布的开放条件提出申请：{conditions}

[English]
This file is a synthetic preview of a conditional-access dataset (Shanghai Measures Art.18:
the platform offers data query, preview and access). Every row was generated at random; none is
a real record or describes a real person or organisation.
How it was made: for each column the platform released a differentially private one-way marginal
with OpenDP (noisy counts per public value; for numeric columns with public bounds, a noisy
histogram over equal-width bins; for dates, a noisy histogram by month, months chosen by a noisy
threshold), then drew each column independently from those noisy distributions. Relationships
between columns are NOT preserved: do not draw conclusions from this file.
Identifier columns (resident ID numbers, unified social credit codes) hold placeholders from
administrative region 99, which does not exist; their check characters are valid but they carry
no information. Columns without a public domain or bounds (such as free text) are withheld (empty).
Privacy unit: the dataset's entity (at most {preview.max_contributions} rows per entity counted).
Privacy budget spent by this preview: {_cost(preview)}, paid from the preview budget the data
provider set.
For the real data, apply under the published access conditions: {conditions}

列 Columns:
{columns}

文件 Files: {file_stem(preview)}.csv (第一行为注释 the first line is a comment: read with
pandas.read_csv(path, comment="#")), {MARGINALS_NAME} (released marginals 已发布的边际分布).
"""


def preview_zip(preview: SyntheticPreview, title: str, conditions: str) -> bytes:
    """A zip of the labelled CSV, the README and the released marginals."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"{file_stem(preview)}.csv", labelled_csv(preview))
        z.writestr(README_NAME, readme(preview, title, conditions))
        z.writestr(MARGINALS_NAME, json.dumps(preview.marginals, ensure_ascii=False, indent=2))
    return out.getvalue()

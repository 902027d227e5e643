# ruff: noqa: E501  (bilingual prose reads best one sentence per line)
"""The welcome notebook a new workspace starts with, generated from its agreement.

A researcher meets the agreement's rules in the workspace, not only in its YAML: which
views and columns there are (with their Chinese labels and the types the views hold),
what the mode lets a query do, the privacy budget, three queries that the guard lets
through as written, a DP release, and the export checks with what each refusal means.
The examples are chosen per agreement and kept only when the guard and the DP planner
accept them, so every example in the notebook runs. Pure: the agreement and the
catalogue in, nbformat 4 JSON out; ``query_guard/service`` serves it to the workspace
(``GET /qs/welcome.ipynb``) and the workspace's start writes it into a new home.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from export_review.dp_export import plan_release
from export_review.forms import allowed_forms
from query_guard.compile import column_types
from query_guard.context import GuardContext
from query_guard.guard import check_query
from sandbox.contracts.agreement import Agreement
from sandbox.contracts.catalog_entry import CatalogEntry, Column, Sensitivity
from sandbox.errors import SandboxError
from sandbox.workspaces.limits import ShownLimits
from sandbox.workspaces.rule_meanings import REFUSALS

NOTEBOOK_NAME = "welcome.ipynb"
#: Code cells tagged so that a runner (or a test) knows what each one needs.
BUDGET_TAG = "spends-budget"
SUBMIT_TAG = "submits-export"
TABLE_FILE = "welcome_table.csv"
_NUMERIC = ("BIGINT", "INTEGER", "DOUBLE", "DECIMAL")
_DATES = ("DATE", "TIMESTAMP")
_RECORD_ROWS = 20


@dataclass(frozen=True)
class Example:
    """One example query and what it shows, in both languages."""

    zh: str
    en: str
    sql: str


@dataclass(frozen=True)
class _Offer:
    """What one dataset of the agreement offers an example query."""

    dataset: str
    keys: list[Column]
    dates: list[Column]
    numbers: list[Column]
    entity: str | None
    shown: list[str]
    row_filter: str


def _label(column: Column) -> str:
    return column.label or column.name


def _offer(agreement: Agreement, entry: CatalogEntry) -> _Offer:
    allowed = agreement.datasets[entry.name]
    cols = [entry.column(c) for c in allowed.columns]
    plain = [c for c in cols if c.sensitivity != Sensitivity.identifier]
    keys = [c for c in plain if c.type in ("VARCHAR", "BOOLEAN")]
    keys.sort(key=lambda c: c.values is None)  # public values first
    numbers = [c for c in plain if c.type in _NUMERIC]
    numbers.sort(key=lambda c: c.bounds is None)
    entity = entry.entity if entry.entity in allowed.columns else None
    return _Offer(
        dataset=entry.name,
        keys=keys,
        dates=[c for c in plain if c.type in _DATES],
        numbers=numbers,
        entity=entity,
        shown=[c.name for c in plain] or list(allowed.columns),
        row_filter=allowed.row_filter or "",
    )


def _round_width(bounds: tuple[float, float] | None) -> int | float | None:
    """A bin width with one significant digit, about a tenth of the public range."""
    if bounds is None or bounds[1] <= bounds[0]:
        return None
    raw = (bounds[1] - bounds[0]) / 10
    power = 10 ** math.floor(math.log10(raw))
    digit = 5 if raw / power >= 5 else 2 if raw / power >= 2 else 1
    width = digit * power
    return int(width) if width >= 1 else width


def _round_bound(bounds: tuple[float, float] | None) -> int | float | None:
    """A range bound with one significant digit (as aggregate mode requires) near the
    middle of the public range."""
    if bounds is None or bounds[1] <= bounds[0]:
        return None
    middle = (bounds[0] + bounds[1]) / 2
    if middle <= 0:
        return None
    power = 10 ** math.floor(math.log10(middle))
    bound = math.floor(middle / power) * power
    return int(bound) if bound >= 1 else bound


def _literal(value: str | int) -> str:
    return str(value) if isinstance(value, int) else "'" + str(value).replace("'", "''") + "'"


def _condition(offer: _Offer) -> tuple[str, str, str] | None:
    """``column = value`` on a key with public values the row filter does not already fix."""
    for key in offer.keys:
        if key.values and key.name not in offer.row_filter:
            value = key.values[0]
            return (
                f"{key.name} = {_literal(value)}",
                f"{_label(key)}为{value}",
                f"{key.name} = {value}",
            )
    return None


def _by_key(offer: _Offer) -> Example | None:
    if not offer.keys:
        return None
    key = offer.keys[0]
    extra, zh, en = "", "", ""
    if offer.numbers:
        num = offer.numbers[0]
        extra, zh, en = (
            f", avg({num.name}) AS avg_{num.name}",
            f"和{_label(num)}均值",
            f" and mean {num.name}",
        )
    sql = (
        f"SELECT {key.name}, count(*) AS n{extra}\nFROM {offer.dataset}\n"
        f"GROUP BY {key.name}\nORDER BY {key.name}"
    )
    return Example(f"按{_label(key)}统计记录数{zh}", f"rows{en} by {key.name}", sql)


def _over_time(offer: _Offer, aggregate: bool) -> Example | None:
    entities = ""
    if aggregate and offer.entity:
        entities = f", count(DISTINCT {offer.entity}) AS entities"
    if offer.dates:
        d = offer.dates[0]
        sql = (
            f"SELECT date_trunc('month', {d.name}) AS month, count(*) AS n{entities}\n"
            f"FROM {offer.dataset}\nGROUP BY month\nORDER BY month"
        )
        return Example(f"按{_label(d)}的月份统计", f"by month of {d.name}", sql)
    for num in offer.numbers:
        width = _round_width(num.bounds)
        if width is not None:
            band = f"{num.name}_band"
            sql = (
                f"SELECT floor({num.name} / {width}) * {width} AS {band}, count(*) AS n{entities}\n"
                f"FROM {offer.dataset}\nGROUP BY {band}\nORDER BY {band}"
            )
            return Example(
                f"按{_label(num)}分组（每组宽 {width}）",
                f"by bands of {num.name} ({width} wide)",
                sql,
            )
    return None


def _filtered(offer: _Offer) -> Example | None:
    cond = _condition(offer)
    if cond is None:
        return None
    where, zh_cond, en_cond = cond
    for num in offer.numbers:
        bound = _round_bound(num.bounds)
        if bound is not None:
            where += f" AND {num.name} < {bound}"
            zh_cond += f"且{_label(num)}小于 {bound}"
            en_cond += f" and {num.name} < {bound}"
            break
    others = [k for k in offer.keys if k.name not in where]
    if offer.dates:
        d = offer.dates[0]
        select, group, zh_group = f"year({d.name}) AS {d.name}_year", f"{d.name}_year", "按年份"
    elif others:
        select = group = others[0].name
        zh_group = f"按{_label(others[0])}"
    else:
        select = group = zh_group = ""
    mean = f", avg({offer.numbers[0].name}) AS avg_{offer.numbers[0].name}" if offer.numbers else ""
    if group:
        sql = (
            f"SELECT {select}, count(*) AS n{mean}\nFROM {offer.dataset}\n"
            f"WHERE {where}\nGROUP BY {group}\nORDER BY {group}"
        )
        return Example(f"{zh_cond}，{zh_group}统计", f"where {en_cond}, by {group}", sql)
    sql = f"SELECT count(*) AS n{mean}\nFROM {offer.dataset}\nWHERE {where}"
    return Example(f"{zh_cond}时的统计", f"where {en_cond}", sql)


def _rows(offer: _Offer) -> Example:
    order = f"\nORDER BY {offer.dates[0].name}" if offer.dates else ""
    sql = f"SELECT {', '.join(offer.shown)}\nFROM {offer.dataset}{order}\nLIMIT {_RECORD_ROWS}"
    return Example(f"前 {_RECORD_ROWS} 行记录", f"the first {_RECORD_ROWS} rows", sql)


def _candidates(agreement: Agreement, catalog: Mapping[str, CatalogEntry]) -> list[Example]:
    aggregate = agreement.mode == "aggregate"
    found: list[Example | None] = []
    for name in agreement.datasets:
        offer = _offer(agreement, catalog[name])
        if aggregate:
            found += [_by_key(offer), _over_time(offer, aggregate), _filtered(offer)]
        else:
            found += [_rows(offer), _by_key(offer), _filtered(offer), _over_time(offer, False)]
        found.append(Example("记录总数", "how many rows", f"SELECT count(*) AS n FROM {name}"))
    return [e for e in found if e is not None]


def example_queries(
    agreement: Agreement, catalog: Mapping[str, CatalogEntry], count: int = 3
) -> list[Example]:
    """Up to ``count`` example queries the guard lets through under ``agreement``, as written."""
    ctx = GuardContext(agreement, catalog)
    chosen: list[Example] = []
    for example in _candidates(agreement, catalog):
        if len(chosen) == count:
            break
        fresh = example.sql not in {c.sql for c in chosen}
        if fresh and check_query(example.sql, ctx).action != "block":
            chosen.append(example)
    return chosen


def dp_example(agreement: Agreement, catalog: Mapping[str, CatalogEntry]) -> str | None:
    """A query the DP planner releases without spending δ (group keys with public values)."""
    for name in agreement.datasets:
        offer = _offer(agreement, catalog[name])
        keyed = [k for k in offer.keys if k.values]
        candidates = [
            f"SELECT {k.name}, count(*) AS n FROM {name} GROUP BY {k.name}" for k in keyed
        ]
        candidates.append(f"SELECT count(*) AS n FROM {name}")
        for sql in candidates:
            try:
                plan_release(sql, agreement, catalog)
            except SandboxError:
                continue
            return sql
    return None


# --- Cells ---------------------------------------------------------------------------------


def _md(*lines: str) -> dict[str, Any]:
    return {"cell_type": "markdown", "metadata": {}, "source": "\n".join(lines)}


def _code(source: str, *tags: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {"tags": list(tags)} if tags else {}
    return {
        "cell_type": "code",
        "execution_count": None,
        "metadata": metadata,
        "outputs": [],
        "source": source,
    }


def _py_string(text: str) -> str:
    """``text`` as a Python literal, triple-quoted when that is exact (SQL reads better)."""
    if '"""' in text or "\\" in text or text.endswith('"'):
        return repr(text)
    return '"""' + text + '"""'


def _cell_text(text: str) -> str:
    """Free text in a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _intro(agreement: Agreement) -> dict[str, Any]:
    return _md(
        "# 欢迎使用数据沙箱 · Welcome to the data sandbox",
        "",
        f"**协议 Agreement** `{agreement.id}`：{agreement.title}",
        "",
        f"- 用途 Purpose：{agreement.purpose}",
        *([f"- 应用场景 Scenario：{agreement.scenario}"] if agreement.scenario else []),
        f"- 有效期 Period：{agreement.valid_from} – {agreement.valid_until}",
        f"- 模式 Mode：`{agreement.mode}`",
        f"- 可导出的成果形式 Outputs that may leave：{', '.join(agreement.outputs)}",
        "",
        "本笔记本由平台根据协议生成。数据只能在本工作空间中通过查询服务使用，每次查询都记入全程记录；"
        "成果只能经导出审核后离开平台。依次运行各单元格不会花费隐私预算，也不会提交导出，"
        "除非把下方的开关改为 `True`。",
        "",
        "The platform generated this notebook from the agreement. The data is used only here, "
        "through the query service, and every query is recorded; results leave only through "
        "export review. Running the cells spends no privacy budget and submits nothing unless "
        "you set the switches below to `True`.",
    )


def _views(agreement: Agreement, catalog: Mapping[str, CatalogEntry]) -> list[dict[str, Any]]:
    cells = [
        _md(
            "## 可用的视图和字段 · Views and columns",
            "",
            "每个数据集是一个同名视图，只含协议允许的字段和行。标识符字段保存为假名（BIGINT），"
            "在本协议内稳定、跨协议不可关联。",
            "",
            "Each dataset is a view of the same name holding only the agreed columns and rows. "
            "Identifier columns hold pseudonyms (BIGINT), stable within this agreement and "
            "unlinkable across agreements.",
        )
    ]
    for name, allowed in agreement.datasets.items():
        entry = catalog[name]
        types = column_types(agreement, entry)
        lines = [
            f"### `{name}` — {entry.title}",
            "",
            "| 字段 column | 中文名 label | 类型 type | 敏感性 sensitivity | 说明 description |",
            "|---|---|---|---|---|",
        ]
        for col in allowed.columns:
            c = entry.column(col)
            note = " (假名 pseudonym)" if c.sensitivity == Sensitivity.identifier else ""
            lines.append(
                f"| `{col}` | {_cell_text(c.label) or '—'} | {types[col]}{note} | "
                f"{c.sensitivity.value} | {_cell_text(c.description)} |"
            )
        if allowed.row_filter:
            lines += ["", f"行范围 Rows：`{allowed.row_filter}`"]
        cells.append(_md(*lines))
    if agreement.joins:
        pairs = ", ".join(f"`{a}` = `{b}`" for a, b in agreement.joins)
        cells.append(_md(f"允许的连接 Joins allowed：{pairs}"))
    return cells


def _mode_rules(agreement: Agreement) -> dict[str, Any]:
    d = agreement.disclosure
    if agreement.mode == "aggregate":
        return _md(
            "## 汇总模式的规则 · Aggregate mode (可用不可见)",
            "",
            f"- **k = {d.min_group_size}**：每个值至少来自 {d.min_group_size} 个实际有贡献的主体"
            f"（门槛另加标准差 {d.threshold_sd:g} 的半正态噪声）；不足的分组不显示，不足的值为空。",
            f"- **拉平 Flattening**：最大的 {d.outliers[0]}–{d.outliers[1]} 个贡献被拉到其后 "
            f"{d.top_group[0]}–{d.top_group[1]} 个的均值，直到 dominance ({d.dominance[0]}, "
            f"{d.dominance[1]:g}) 规则成立。",
            f"- **扰动 Perturbation**：每个条件、每个分组键值、每个字段各一层噪声（标准差 "
            f"{d.noise_sd:g}，以被拉平后的最大贡献为单位），由内容决定：同一问题总得同一答案，"
            "重复提问不能平均掉噪声。",
            "- 只排除极少数主体的 WHERE 条件会被忽略（低影响检测）。",
            f"- 结果最多 **{d.max_result_rows}** 行（QG-103）。",
            "- 可用：`count`、`sum`、`avg`、`stddev`、`variance`、`median`、`percentile_cont`、"
            "`count(DISTINCT 标识符)`；条件只能是 `字段 = 值`、整值边界的范围（一位有效数字或月初）、"
            "`IS NULL`，用 AND 连接；分组键是字段或其粗化（日期部分、`floor(x / 10) * 10`）。",
            "- 不允许：IN 列表、OR、`<>`、NOT、min/max 等取值、聚合内的 CASE/FILTER、行级窗口、条件中的子查询。",
            "- 汇总之后（HAVING、ORDER BY、对汇总结果的窗口和外层查询）不受限制。",
            "",
            f"Every value comes from at least k = {d.min_group_size} contributing entities "
            "(a noisy threshold); smaller groups are left out and smaller values are empty. The "
            "largest contributions are flattened, and every value carries sticky noise: asking "
            "again gives the same answer. Conditions are `column = value`, ranges with round "
            "bounds, `IS NULL`, joined by AND; group keys are a column or a coarsening of it; no "
            f"IN, OR, `<>`, NOT, min or max. At most {d.max_result_rows} rows. Each result says "
            'what was suppressed: `df.attrs["disclosure"]` and a line under the cell.',
        )
    return _md(
        "## 记录模式的规则 · Record mode",
        "",
        f"- 可以查询协议字段的行级记录；每个结果最多 **{d.max_result_rows}** 行"
        "（超出时查询被加上 LIMIT，QG-103）。",
        "- 标识符字段是假名：可以输出、计数（count(DISTINCT …)）和用于协议允许的连接，不能筛选或排序；"
        "导出的文件不得含标识符（export-file-identifier）。",
        f"- 导出的统计表按 k = {d.min_group_size}、dominance ({d.dominance[0]}, "
        f"{d.dominance[1]:g}) 和 p% = {d.p_percent:g} 检查，从表格背后的记录重新计算。",
        "",
        f"Row-level records of the agreed columns; at most {d.max_result_rows} rows per result "
        "(QG-103 adds a LIMIT). Identifier columns are pseudonyms: shown, counted and "
        "joined as declared, never filtered on or sorted by; no exported file may hold one. "
        f"Exported tables are checked against k = {d.min_group_size}, dominance "
        f"({d.dominance[0]}, {d.dominance[1]:g}) and p% = {d.p_percent:g}, recomputed from "
        "the rows behind them.",
    )


def _budget(agreement: Agreement, dp_epsilon: float) -> dict[str, Any]:
    p = agreement.privacy
    return _md(
        "## 隐私预算 · The privacy budget",
        "",
        f"- ε 总额 total：**{p.epsilon:g}**，δ 总额 total：{p.delta:g}",
        f"- 每个主体在一次发布中最多计入 {p.max_contributions} 行 · "
        f"rows one entity may add to one release: {p.max_contributions}",
        "",
        "差分隐私发布在显示任何结果之前就从预算中扣除，已用部分不退回；仅凭查询文本就能拒绝的请求不扣预算。"
        "分组键若有公开取值（目录中的 values）则不花费 δ。",
        "",
        "A DP release is charged before anything is shown, and what is spent stays spent; a "
        "request refused from its text alone costs nothing. Group keys with public values "
        f"spend no δ. The example below spends ε = {dp_epsilon:g} when you switch it on.",
    )


def _limits(limits: ShownLimits) -> dict[str, Any]:
    return _md(
        "## 工作空间资源 · Workspace limits",
        "",
        *(f"- {zh} · {en}" for _key, zh, en in limits.rows()),
    )


def _setup(agreement: Agreement) -> list[dict[str, Any]]:
    meanings = ",\n".join(
        f"    {rule!r}: {zh + ' · ' + en!r}" for rule, (zh, en) in REFUSALS.items()
    )
    return [
        _md(
            "## 连接查询服务 · Connect",
            "",
            "`db.tables()` 列出视图，`db.describe(视图)` 列出字段、中文名和类型，`db.scope()` 给出完整协议范围。",
            "",
            "`db.tables()` lists the views, `db.describe(view)` their columns with labels and "
            "types, `db.scope()` the agreement's whole scope.",
        ),
        _code(
            "# 运行全部单元格不会花费预算，也不会提交导出；改为 True 才会。\n"
            "# Running every cell spends no budget and submits nothing; True does.\n"
            "SPEND_BUDGET = False  # 执行差分隐私发布 · run the DP release (charges ε)\n"
            "SUBMIT_EXPORTS = False  # 提交导出审核 · submit exports for the provider's review\n"
            "\n"
            "import pandas as pd\n"
            "from IPython.display import display\n"
            "from query_guard.client import QueryBlocked, QueryRefused, connect\n"
            "\n"
            "#: 拒绝规则的含义 · what each refusal's rule means\n"
            f"MEANINGS = {{\n{meanings},\n}}\n"
            "\n"
            "\n"
            "def explain(rule, message=''):\n"
            "    print(f'[{rule}] {MEANINGS.get(rule, \"\")}')\n"
            "    if message:\n"
            "        print('   ', message)\n"
            "\n"
            "\n"
            "def show_verdict(verdict):\n"
            "    if verdict['ok']:\n"
            "        print('检查通过 checks passed:', verdict['checks'])\n"
            "    else:\n"
            "        explain(verdict['refused']['rule'], verdict['refused']['error'])\n"
            "\n"
            "\n"
            "db = connect()\n"
            "db.tables()"
        ),
        _code(f"db.describe({next(iter(agreement.datasets))!r})"),
    ]


def _examples(examples: list[Example]) -> list[dict[str, Any]]:
    cells = [
        _md(
            "## 示例查询 · Example queries",
            "",
            "以下查询按原样通过本协议的查询规则。结果是 pandas DataFrame；被拒绝的查询抛出 "
            "`QueryBlocked`，列出每条规则及其替代写法。",
            "",
            "These queries pass this agreement's guard as written. Results are pandas "
            "DataFrames; a refused query raises `QueryBlocked` with every rule and what to "
            "write instead.",
        )
    ]
    for i, example in enumerate(examples, start=1):
        cells.append(_md(f"### {i}. {example.zh} · {example.en}"))
        cells.append(_code(f"SQL_{i} = {_py_string(example.sql)}\ndf{i} = db.sql(SQL_{i})\ndf{i}"))
    return cells


def refused_example(agreement: Agreement, catalog: Mapping[str, CatalogEntry]) -> str:
    """A query the guard refuses under ``agreement``, to show what a refusal says: in
    aggregate mode an IN list (write ``column = value`` instead), else a file reader."""
    name = next(iter(agreement.datasets))
    keyed = [k for k in _offer(agreement, catalog[name]).keys if k.values and len(k.values) > 1]
    if agreement.mode == "aggregate" and keyed:
        key = keyed[0]
        values = ", ".join(_literal(v) for v in key.values[:2])  # type: ignore[index]
        sql = f"SELECT count(*) AS n FROM {name} WHERE {key.name} IN ({values})"
        if check_query(sql, GuardContext(agreement, catalog)).action == "block":
            return sql
    return "SELECT * FROM read_csv('/etc/passwd')"


def _refusal_demo(sql: str) -> list[dict[str, Any]]:
    return [
        _md(
            "### 被拒绝的查询 · A refused query",
            "",
            "被拒绝的查询同样记入全程记录；连续多次被拒会触发预警。",
            "A refused query is recorded too; many refusals in a row raise an early warning.",
        ),
        _code(
            "try:\n"
            f"    db.sql({sql!r})\n"
            "except QueryBlocked as blocked:\n"
            "    for reason in blocked.reasons:\n"
            "        explain(reason.rule, reason.message)"
        ),
    ]


def _dp(dp_sql: str | None, dp_epsilon: float, agreement: Agreement) -> list[dict[str, Any]]:
    if dp_sql is None:
        return [
            _md(
                "## 差分隐私发布 · A DP release",
                "",
                "本协议的数据集没有可用于差分隐私发布的主体或公开取值，因此没有示例。",
                "This agreement's datasets offer no entity or public values a DP release "
                "needs, so there is no example.",
            )
        ]
    submit = "dp_table" in agreement.outputs
    purpose = (
        "'欢迎笔记本示例 · welcome notebook example' if SUBMIT_EXPORTS else None"
        if submit
        else "None  # 本协议不允许 DP 表格离开 · this agreement lets no DP table leave"
    )
    return [
        _md(
            "## 差分隐私发布 · A DP release (`db.dp`)",
            "",
            "支持的形式：`SELECT 0–2 个分组键, count(*) | count(DISTINCT 字段) | sum(字段) | avg(字段) "
            "FROM 一个数据集 [WHERE …] [GROUP BY …]`。带 `purpose` 时结果同时作为导出申请提交审核"
            "（dp_table 形式）。",
            "",
            "The shape released: 0–2 group keys and count(*), count(DISTINCT column), "
            "sum(column) or avg(column) from one dataset, with an optional WHERE and GROUP BY. "
            "With a `purpose` the result is also submitted for review as a `dp_table` export.",
        ),
        _code(
            f"DP_SQL = {_py_string(dp_sql)}\n"
            f"DP_EPSILON = {dp_epsilon!r}\n"
            f"purpose = {purpose}\n"
            "if SPEND_BUDGET:\n"
            "    try:\n"
            "        answer = db.dp(DP_SQL, epsilon=DP_EPSILON, purpose=purpose)\n"
            "    except QueryRefused as refused:\n"
            "        explain(refused.rule, refused.message)\n"
            "    else:\n"
            "        released = answer.get('release', answer)\n"
            "        print('ε spent', released['epsilon_spent'], '· left', "
            "released['epsilon_remaining'])\n"
            "        if 'export' in answer:\n"
            "            print('export request', answer['export']['id'], answer['export']['status'])\n"
            "        display(pd.DataFrame(released['rows'], columns=released['columns']))",
            BUDGET_TAG,
        ),
        *_dp_figure(dp_sql, agreement),
    ]


def _dp_figure(dp_sql: str, agreement: Agreement) -> list[dict[str, Any]]:
    """A figure the platform draws from a DP release, where the agreement lets both leave."""
    if not {"dp_table", "figure"} <= set(agreement.outputs) or " GROUP BY " not in dp_sql:
        return []
    key = dp_sql.split(" GROUP BY ")[-1]
    return [
        _md(
            "### 差分隐私发布的图 · A figure of a DP release",
            "",
            "带 `chart` 时，发布结果作为 `figure` 提交：平台按图表说明从发布的数据表绘图（再次计入预算）。",
            "With a `chart` the release is submitted as a `figure` the platform draws from the "
            "released table (this is a second release, charged again).",
        ),
        _code(
            f"DP_CHART = {{'kind': 'bar', 'x': {key!r}, 'y': 'n', "
            "'title': '差分隐私发布 · DP release'}\n"
            "if SPEND_BUDGET and SUBMIT_EXPORTS:\n"
            "    try:\n"
            "        answer = db.dp(DP_SQL, epsilon=DP_EPSILON, purpose='欢迎笔记本示例 · welcome "
            "notebook example', chart=DP_CHART)\n"
            "    except QueryRefused as refused:\n"
            "        explain(refused.rule, refused.message)\n"
            "    else:\n"
            "        print('export request', answer['export']['id'], answer['export']['form'])",
            BUDGET_TAG,
            SUBMIT_TAG,
        ),
    ]


def _exported(examples: list[Example]) -> int | None:
    """The number of the first example that counts by groups: the one worth exporting."""
    for i, example in enumerate(examples, start=1):
        if "count(*) AS n" in example.sql and "GROUP BY" in example.sql:
            return i
    return None


def _exports(agreement: Agreement, examples: list[Example]) -> list[dict[str, Any]]:
    allowed = [f"- `{f.name}`：{f.zh}  \n  {f.en}" for f in allowed_forms(agreement)]
    cells = [
        _md(
            "## 导出成果 · Exports",
            "",
            "本协议允许离开平台的成果形式（每份导出申请选择其中一种）· Output forms this agreement "
            "lets leave (each export request is one of them):",
            "",
            *allowed,
            "",
            "`db.check_export(files, form, ...)` 只运行平台的自动检查，不保存、不提交；"
            "`db.export(files, purpose, form, ...)` 先检查，通过后提交给数据提供方审核，审核通过后才生成"
            "可下载的签名成果包。协议未列出的形式会被拒绝（规则 `export-output-form`）。拒绝时给出规则编号，含义见下表。",
            "",
            "`db.check_export(files, form, ...)` runs the platform's automatic checks and stores "
            "nothing; `db.export(files, purpose, form, ...)` checks, then submits for the "
            "provider's review; only an approved request becomes a signed release bundle. A form "
            "the agreement does not name is refused (`export-output-form`). A refusal names its "
            "rule (table below).",
        ),
        _code("db.output_forms()"),
    ]
    number = _exported(examples)
    if number is None:
        return cells
    first, frame = f"SQL_{number}", f"df{number}"
    cells += [
        _md("### 表格 · A table (`table`)"),
        _code(
            f"{frame}.to_csv({TABLE_FILE!r}, index=False)\n"
            f"show_verdict(db.check_export([{TABLE_FILE!r}], 'table', queries=[{first}]))"
        ),
        _md(
            "### 图 · A figure (`figure`)",
            "",
            "图由平台绘制：提交图表说明（种类 bar/line/scatter/histogram、横轴 x、纵轴 y、分组 series、"
            "标题与轴标题）和它的数据表，平台检查数据表后用 matplotlib 画成 PNG 和 SVG 放入成果包。"
            "自己画的图片文件不能离开平台（审核人无法检查像素里藏了什么）。",
            "",
            "The platform draws figures: submit a chart specification (kind bar/line/scatter/"
            "histogram, x, y, series, title, axis labels) with its table; the platform checks the "
            "table and draws it with matplotlib into the bundle as PNG and SVG. Images made here "
            "never leave (a reviewer cannot check what pixels hold).",
        ),
        _code(
            f"CHART = {{'kind': 'bar', 'x': {frame}.columns[0], 'y': 'n',\n"
            "         'title': '欢迎笔记本示例 · welcome example', 'y_label': 'n'}\n"
            f"show_verdict(db.check_export([{TABLE_FILE!r}], 'figure', queries=[{first}], "
            "chart=CHART))"
        ),
        _md(
            "### 提交审核 · Submit for review",
            "",
            "`SUBMIT_EXPORTS = True` 时提交；未通过自动检查的文件不会提交（`ExportRefused`）。",
            "Submitted when `SUBMIT_EXPORTS = True`; files that fail the checks are not "
            "submitted (`ExportRefused`).",
        ),
        _code(
            "if SUBMIT_EXPORTS:\n"
            "    for form, chart in (('table', None), ('figure', CHART)):\n"
            "        try:\n"
            f"            request = db.export([{TABLE_FILE!r}], purpose='欢迎笔记本示例 · welcome "
            f"notebook example', form=form, queries=[{first}], chart=chart)\n"
            "        except QueryRefused as refused:\n"
            "            explain(refused.rule, refused.message)\n"
            "        else:\n"
            "            print('export request', request['id'], request['form'], request['status'])",
            SUBMIT_TAG,
        ),
    ]
    return cells


def _refusal_table() -> dict[str, Any]:
    rows = [f"| `{rule}` | {zh} | {en} |" for rule, (zh, en) in REFUSALS.items()]
    return _md(
        "## 规则编号的含义 · What each rule means",
        "",
        "| 规则 rule | 含义 | meaning |",
        "|---|---|---|",
        *rows,
    )


def _closing(agreement: Agreement) -> dict[str, Any]:
    due = agreement.usage_reports or "—"
    return _md(
        "## 使用情况反馈 · Usage reports",
        "",
        f"本协议的反馈频率：`{due}`。在协议页面提交，或在此处："
        "`db.usage_report('YYYY-MM-DD', summary='…', outputs='…')`。凡基于本数据的成果须注明数据来源"
        "（上海条例第二十五条）。",
        "",
        f"Reports are due `{due}`: on the agreement's page, or here with "
        "`db.usage_report(period_end, summary, outputs)`. Every product built on the data "
        "names its source (Shanghai Art.25).",
    )


def welcome_notebook(
    agreement: Agreement,
    catalog: Mapping[str, CatalogEntry],
    *,
    limits: ShownLimits | None = None,
) -> dict[str, Any]:
    """The welcome notebook of ``agreement``'s workspaces, as nbformat 4 JSON."""
    examples = example_queries(agreement, catalog)
    dp_epsilon = round(min(0.1, agreement.privacy.epsilon / 10), 6)
    cells = [
        _intro(agreement),
        *_views(agreement, catalog),
        _mode_rules(agreement),
        _budget(agreement, dp_epsilon),
        *([_limits(limits)] if limits is not None else []),
        *_setup(agreement),
        *_examples(examples),
        *_refusal_demo(refused_example(agreement, catalog)),
        *_dp(dp_example(agreement, catalog), dp_epsilon, agreement),
        *_exports(agreement, examples),
        _refusal_table(),
        _closing(agreement),
    ]
    for i, cell in enumerate(cells):
        cell["id"] = f"welcome-{i:02d}"
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {
                "display_name": "Python 3 (ipykernel)",
                "language": "python",
                "name": "python3",
            },
            "language_info": {"name": "python"},
            "sandbox": {"agreement": agreement.id, "mode": agreement.mode},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }

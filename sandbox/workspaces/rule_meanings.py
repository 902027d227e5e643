# ruff: noqa: E501  (a catalogue of meanings reads best one rule per line)
"""What each rule id a researcher can meet means, in Chinese and English.

Refusals carry a rule id and a message (what was wrong, what to write instead); this
catalogue says in one line what the rule is about, so the welcome notebook can explain a
refusal by its id. Rules of the query guard (QG-*), of DP releases (dp-*) and of the
export checks (export-*), plus the query service's own.
"""

from __future__ import annotations

#: rule -> (Chinese, English): what a refusal (or a rewrite note) with this rule means.
REFUSALS: dict[str, tuple[str, str]] = {
    "QG-001": ("只能执行一条只读查询（SELECT / WITH）", "only one read-only query (SELECT, WITH)"),
    "QG-002": ("用了未被允许的 SQL 写法", "an SQL construct that is not allowed"),
    "QG-003": ("用了未被允许的函数（读文件、系统设置、随机数等）",
               "a function that is not allowed (file readers, settings, random …)"),
    "QG-004": ("只能查询协议中的视图", "only the agreement's views may be queried"),
    "QG-005": ("该数据集因权益投诉已中止开放", "the dataset's opening is suspended after a complaint"),
    "QG-006": ("字段不在协议范围内或有歧义", "a column outside the agreement, or ambiguous"),
    "QG-007": ("标识符字段只能用于 count(DISTINCT …)、协议声明的连接或按主体预汇总的分组，记录模式下还可输出其假名", "identifier columns only inside count(DISTINCT …), as declared join keys or per-entity pre-aggregation keys, and in record mode shown as pseudonyms"),
    "QG-008": ("只允许协议声明的连接，不允许笛卡尔积", "only the joins the agreement declares; no cross joins"),
    "QG-009": ("汇总模式下结果只能是汇总值和分组键", "in aggregate mode a result holds only aggregates and group keys"),
    "QG-010": ("会泄露个体取值的统计（如 min、max）", "a disclosive statistic (such as min or max)"),
    "QG-011": ("条件中的子查询须不相关且（汇总模式下）已汇总", "subqueries in conditions must be uncorrelated and, in aggregate mode, aggregated"),
    "QG-012": ("改写后的查询未能保持不变，请简化", "the rewritten query did not check out unchanged; simplify it"),
    "QG-013": ("查询超时被停止", "the query ran past its time limit and was stopped"),
    "QG-014": ("引擎无法完成查询（原因不显示，以免泄露数据）", "the engine could not complete the query (the reason is withheld, it could reveal data)"),
    "QG-015": ("不允许由引擎自行展开的 * 写法", "star patterns the engine expands by itself are not allowed"),
    "QG-016": ("字符串无限增长", "unbounded string growth"),
    "QG-017": ("连接估计行数过大，未执行", "a join estimated too large to run"),
    "QG-018": ("同一 SELECT 列表中重复引用输出名", "an output name reused in the SELECT list that defines it"),
    "QG-020": ("汇总模式下此位置不允许该写法（提示说明替代写法）", "not allowed in this position in aggregate mode (the message says what to write instead)"),
    "QG-021": ("范围条件的边界须为整值（一位有效数字或月初）", "range bounds must be round (one significant digit, or the first of a month)"),
    "QG-022": ("（说明）结果已匿名化：贡献者门槛、拉平和扰动", "(note) the result is anonymised: contributor threshold, flattening and noise"),
    "QG-101": ("（说明）可能出错的表达式改为返回 NULL", "(note) expressions that could fail return NULL instead"),
    "QG-103": ("（说明）结果行数已限制在协议上限内", "(note) the result is capped at the agreement's row limit"),
    "QG-104": ("（说明）汇总值上的表达式不会出错", "(note) expressions over aggregates cannot fail"),
    "unknown-view": ("协议中没有这个视图（db.tables() 列出全部视图）", "no such view in this agreement (db.tables() lists them)"),
    "sql-nesting": ("括号嵌套过深，请用 WITH 拆分", "brackets nest too deep; name inner queries in WITH"),
    "workspace-token": ("工作空间令牌无效或已过期", "the workspace token is missing, expired or revoked"),
    "agreement-not-active": ("协议不在生效状态（中止、终止或待整改）", "the agreement is not active (suspended, terminated or to be rectified)"),
    "agreement-not-in-period": ("不在协议有效期内", "outside the agreement's period"),
    "dp-budget-exhausted": ("隐私预算不足", "not enough privacy budget left"),
    "dp-unsupported": ("差分隐私发布只支持一种查询形式", "a DP release supports one query shape only"),
    "dp-out-of-scope": ("查询超出协议范围", "the query is outside the agreement"),
    "dp-no-bounds": ("该数值字段没有公开的取值范围，无法求和或均值", "the numeric column has no public bounds to sum or average"),
    "dp-no-privacy-unit": ("数据集没有可保护的主体（entity）", "the dataset has no entity to protect"),
    "dp-epsilon": ("ε 须为有限正数", "epsilon must be a finite positive number"),
    "export-output-form": ("协议不允许这种成果形式", "the agreement does not let this output form leave"),
    "export-file-type": ("文件类型或内容不被接受（CSV、TXT/Markdown、JSON、笔记本、脚本；图片不接受，图由平台绘制）", "file type or content not accepted (CSV, TXT/Markdown, JSON, notebooks, scripts; no images: the platform draws figures)"),
    "export-file-form": ("文件不属于所选的成果形式", "the file is not part of the chosen output form"),
    "export-chart": ("图表说明无效或与数据表不符", "the chart specification is invalid or does not fit its table"),
    "export-notebook-outputs": ("笔记本仍含输出，须先清除", "the notebook still holds outputs; clear them first"),
    "export-file-size": ("文件过大", "the file is too large"),
    "export-file-rows": ("表格行数超过协议上限", "the table has more rows than the agreement allows"),
    "export-file-identifier": ("含标识符字段或身份证号、信用代码", "holds an identifier column or an ID number or credit code"),
    "export-figure-data": ("图须由恰好一个数据表（或一次差分隐私发布）绘制", "a figure is drawn from exactly one table (or a DP release)"),
    "export-disclosive-cells": ("有单元格来自过少或过于集中的记录，须先抑制", "cells from too few or too dominant records; suppress them first"),
    "export-file-name": ("文件名须为普通名称", "files need plain names"),
    "workspace-upload": ("文件不能直接上传到工作空间，须提出导入申请（/api/imports）", "files cannot be uploaded into a workspace; ask for an import (/api/imports)"),
    "workspace-download": ("工作空间不提供文件下载或导出，成果须通过导出申请", "the workspace serves no downloads or exports; outputs leave through export requests"),
}  # fmt: skip

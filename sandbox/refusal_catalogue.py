# ruff: noqa: E501  (a catalogue of messages reads best one entry per line)
"""The Chinese text of the services' refusals, by rule id (used by ``sandbox.refusal_text``).

Each entry is ``(rule, English template, Chinese template)``, and optionally a fourth
item, the English a person reads where the service's text has Chinese in it. The
English template is the service's message with each parameter as ``{name}``; in the
Chinese template ``{name:roles}`` shows a list of roles in Chinese, ``{name:value}`` an
enumeration's value, ``{name:phrases}`` a "; "-separated list of the ``phrase`` entries, ``{name:or}``
alternatives (``GBK or GB18030``).
Rule ``phrase`` holds the parts such lists are made of (what an application still lacks,
what is wrong with a field). Only the standard library: the notebook client uses this.
"""

from __future__ import annotations

#: Platform roles, as the interface names them (zh, en).
ROLE_NAMES: dict[str, tuple[str, str]] = {
    "researcher": ("数据利用主体", "researcher"),
    "provider": ("数据开放主体", "provider"),
    "operator": ("平台运营", "operator"),
    "authority": ("主管部门", "authority"),
}
ROLES = {role: names[0] for role, names in ROLE_NAMES.items()}

#: Enumerations' values as refusals name them (statuses, open classes).
VALUES: dict[str, str] = {
    "draft": "草稿", "under_review": "审核中", "approved": "已批准", "refused": "未批准",
    "withdrawn": "已撤回", "active": "有效", "suspended": "暂停", "terminated": "已终止",
    "expired": "已到期", "received": "已收到", "confirmed": "已初步确认", "rejected": "不成立",
    "resolved": "已处理", "restored": "已恢复开放", "dismissed": "不成立",
    "unconditional": "无条件开放", "conditional": "有条件开放", "non_open": "非开放",
    "submitted": "已提交", "checked": "已通过自动检查", "in_review": "审核中",
    "returned": "退回修改", "released": "已发布", "revoked": "已撤销发布",
    "published": "已公布", "open": "开放",
}  # fmt: skip

ENTRIES: tuple[tuple[str, ...], ...] = (
    # Who may do what (sandbox/permissions.py, sandbox/api/deps.py, sandbox/web/csrf.py)
    ("role", "this action needs the role {roles}; you are signed in as {role}", "此操作需要{roles:roles}角色；您当前的角色是{role:roles}"),
    ("provider-owns", "only the provider {provider} may do this; you act for {actor}", "只有开放主体 {provider} 可以执行此操作；您代表 {actor}"),
    ("provider-owns", "dataset {name} belongs to {provider}", "数据集 {name} 属于 {provider}"),
    ("auth", "unknown user or wrong password", "用户名或密码错误"),
    ("auth", "sign in first (a valid bearer token is required)", "请先登录（需要有效的访问令牌）"),
    ("csrf", "this form is missing its security token or the token has expired; reload the page and submit it again", "表单缺少安全令牌或令牌已过期，请刷新页面后重新提交"),
    # Fields of a request (sandbox/input_limits.py)
    ("*", "the request has fields that are missing or not allowed: {fields}", "请求中有缺失或不允许的字段：{fields:phrases}"),
    ("phrase", "{field}: required", "{field}：必填"),
    ("phrase", "{field}: at most {n} characters (got {got})", "{field}：最多 {n} 个字符（实际 {got} 个）"),
    ("phrase", "{field}: at most {n} characters", "{field}：最多 {n} 个字符"),
    ("phrase", "{field}: must be a finite number (not infinity or NaN)", "{field}：须为有限数值（不能是无穷大或 NaN）"),
    ("phrase", "and {n} more", "另有 {n} 处"),
    # The catalogue and uploads (sandbox/catalog/*, sandbox/web/staging.py)
    ("dataset-unknown", "dataset {name} is not in the catalogue", "数据集 {name} 不在目录中"),
    ("dataset-no-data", "dataset {name} has no published data yet", "数据集 {name} 尚未发布数据"),
    ("upload-unknown", "this upload does not exist or has expired; upload the file again", "此次上传不存在或已过期，请重新上传文件"),
    ("upload-format", "unsupported file type {suffix}; upload one of {allowed}", "不支持的文件类型 {suffix}；请上传以下类型之一：{allowed}"),
    ("upload-format", "{file}: unsupported file type {suffix}; upload one of {allowed}", "{file}：不支持的文件类型 {suffix}；请上传以下类型之一：{allowed}"),
    ("upload-format", "{file}: cannot be read as {kind} ({error})", "{file}：无法按 {kind} 读取（{error}）"),
    ("upload-encoding", "{file}: the file starts with UTF-8's byte-order mark, so it is UTF-8, not {tried}; choose UTF-8 or automatic detection", "{file}：文件以 UTF-8 字节顺序标记（BOM）开头，是 UTF-8 编码而不是 {tried:or}；请选择 UTF-8 或自动识别"),
    ("upload-encoding", "{file}: {where} cannot be read as {tried}; save the file as CSV UTF-8, or choose the encoding it was saved in", "{file}：{where:phrases}无法按 {tried:or} 读取；请把文件另存为 CSV UTF-8，或选择文件保存时所用的编码"),
    ("phrase", "row {row}, column {column} ({letter})", "第 {row} 行、{column} 列（{letter}）"),
    ("phrase", "row {row}, column {letter}", "第 {row} 行 {letter} 列"),
    ("upload-header", "row {row}, named as the header row, is blank or past the end of the file", "指定为表头的第 {row} 行为空或超出文件末尾"),
    ("publish-preview", "preview the declaration before publishing", "发布前请先预览声明"),
    ("guide-unknown", "there is no guide {name}; the guides are: {guides}", "没有指南 {name}；现有指南：{guides}"),
    ("key-unknown", "no published key named {name}", "没有名为 {name} 的已公布公钥"),
    # Accounts (sandbox/accounts/*)
    ("user-duplicate", "user {name} already exists", "用户 {name} 已存在"),
    ("password-length", "a password has at least {n} characters", "密码至少 {n} 个字符"),
    ("user-fields", "a provider account names its organisation", "开放主体账户须注明所属单位"),
    ("mfa-enrolled", "this account already has an authenticator; if it is lost, ask an operator to reset it", "此账户已绑定身份验证器；如已丢失，请联系平台运营重置"),
    ("mfa-none", "{name} has no authenticator to reset", "{name} 没有可重置的身份验证器"),
    ("rate-limit", "{n} failed sign-ins {scope} in the last hour: wait {wait} s before trying again (after {limit} failures each one doubles the wait, up to {cap} s; nothing is locked)", "最近一小时内{scope}登录失败 {n} 次：请等待 {wait} 秒后再试（失败超过 {limit} 次后每次等待时间加倍，最长 {cap} 秒；账户不会被锁定）"),
    ("agreement-not-active", "agreement {id} is {status}; workspaces run only under an active agreement", "协议 {id} 的状态为{status:value}；工作空间只在协议有效时运行"),
    ("agreement-researcher", "agreement {id} does not name {name} as a researcher", "协议 {id} 未将 {name} 列为研究者"),
    # Applications (sandbox/applications/service.py, Wuxi Art.15)
    ("application-unknown", "application {id} does not exist", "申请 {id} 不存在"),
    ("application-fields", "unknown field(s) {fields}; an application has {allowed}", "未知字段 {fields}；申请包含的字段为 {allowed}"),
    ("application-state", "application {id} is {status}; only drafts can be edited", "申请 {id} 的状态为{status:value}；只有草稿可以修改"),
    ("application-state", "application {id} is {status}; only applications under review are decided", "申请 {id} 的状态为{status:value}；只有审核中的申请可以作出决定"),
    ("application-duplicate-submission", "application {id} was already submitted (it is {status})", "申请 {id} 已经提交（状态为{status:value}）"),
    ("application-incomplete", "the application is incomplete and was not forwarded; missing: {missing}", "申请材料不完整，未予转交；尚缺：{missing:phrases}"),
    ("refusal-needs-basis", "a refusal states its reason and its legal basis (law, regulation or rule)", "不予批准须说明理由和法律依据（法律、法规或规章）"),
    ("approval-scope", "an approval states the purpose and scope of use", "批准须写明使用目的和范围"),
    ("agreement-researchers", "the agreement must name the applicant among its researchers", "协议须将申请人列为研究者"),
    ("agreement-within-application", "the agreement may only narrow the application; {what} {detail}", "协议只能缩小申请的范围；{what} {detail}"),
    ("phrase", "a title", "标题"),
    ("phrase", "the reason for the application (申请理由)", "申请理由", "the reason for the application"),
    ("phrase", "the application scenario (应用场景)", "应用场景", "the application scenario"),
    ("phrase", "the purpose of use", "使用目的"),
    ("phrase", "at least one dataset and its columns from the catalogue", "至少一个目录中的数据集及其字段"),
    ("phrase", "the start of the usage period (使用期限)", "使用期限的起始日期", "the start of the usage period"),
    ("phrase", "the end of the usage period (使用期限)", "使用期限的截止日期", "the end of the usage period"),
    ("phrase", "the output forms (成果形式)", "成果形式", "the output forms"),
    ("phrase", "evidence that you meet the published access conditions", "满足公布的开放条件的证明"),
    ("phrase", "the signed commitment that the scenario is true, lawful and safe", "签署承诺：所述场景真实、合法、安全"),
    ("phrase", "an application type: dataset, interface or sandbox", "申请类型：数据下载、数据接口或数据沙箱"),
    ("phrase", "a usage period whose end is not before its start", "截止日期不早于起始日期的使用期限"),
    ("phrase", "dataset {name} is not in the public catalogue", "数据集 {name} 不在公开目录中"),
    ("phrase", "columns of {name} that exist (unknown: {unknown})", "{name} 中存在的字段（未知字段：{unknown}）"),
    ("phrase", "the columns wanted from {name}", "需要的 {name} 字段"),
    ("phrase", "datasets of one provider only (apply to each provider separately)", "只含同一开放主体的数据集（不同开放主体请分别申请）"),
    # Objections, complaints and usage reports (sandbox/feedback/*)
    ("objection-incomplete", "an objection needs your name, a contact and a description of the error", "提出异议须填写姓名或单位、联系方式和错误说明"),
    ("objection-unknown", "objection {id} does not exist", "异议 {id} 不存在"),
    ("objection-transition", "an objection that is {status} cannot become {to}", "状态为{status:value}的异议不能变为{to:value}"),
    ("objection-answer", "the submitter must be answered", "须答复异议提出人"),
    ("complaint-incomplete", "a rights complaint needs {what}", "权益投诉须填写姓名或单位、联系方式、投诉说明和证明材料，并选择受侵害的权益"),
    ("complaint-unknown", "complaint {id} does not exist", "投诉 {id} 不存在"),
    ("complaint-transition", "a complaint that is {status} cannot become {to}", "状态为{status:value}的投诉不能变为{to:value}"),
    ("complaint-answer", "the complainant must be answered", "须答复投诉人"),
    ("usage-report-author", "usage reports are made by the agreement's researchers", "使用情况报告由协议的研究者提交"),
    ("usage-report-period", "{date} does not end a reporting period of {id}; periods end on {ends}", "{date} 不是协议 {id} 的报告期截止日；报告期截止于 {ends}"),
    ("usage-report-summary", "say how the data was used", "请说明数据的使用情况"),
    ("usage-report-duplicate", "the report for the period ending {date} was already submitted", "截止于 {date} 的报告期的报告已经提交"),
    # Forms shown again (sandbox/web/form_refusal.py): a field's problem beside it
    ("phrase", "required", "必填"),
    ("phrase", "at most {n} characters (got {got})", "最多 {n} 个字符（实际 {got} 个）"),
    ("phrase", "at most {n} characters", "最多 {n} 个字符"),
    ("phrase", "must be a finite number (not infinity or NaN)", "须为有限数值（不能是无穷大或 NaN）"),
    ("phrase", "must not contain NUL characters", "不能包含 NUL 字符"),
    ("phrase", "Input should be a valid integer, unable to parse string as an integer", "须为整数"),
    ("phrase", "Input should be a valid number, unable to parse string as a number", "须为数值"),
    ("phrase", "Input should be greater than or equal to {n}", "须大于或等于 {n}"),
    ("phrase", "Input should be less than or equal to {n}", "须小于或等于 {n}"),
    ("phrase", "Input should be a valid date or datetime, {why}", "须为有效日期（年-月-日）", "must be a valid date (year-month-day)"),
    ("phrase", "Input should be {values}", "须为以下之一：{values:or}"),
    ("dp-epsilon", "epsilon must be a finite number from {low} to {high}", "ε 须为 {low} 至 {high} 之间的有限数值"),
    ("fields", "these fields are required: {fields}", "有必填字段未填写"),
    ("credit-code", "an organisation is identified by its 18-character unified social credit code (GB 32100-2015) and this one fails the check", "单位以18位统一社会信用代码（GB 32100-2015）标识，此代码未通过校验"),
    ("organisation-unknown", "no organisation with this credit code", "没有使用此统一社会信用代码的单位"),
    ("organisation-duplicate", "an organisation with this credit code or the name {name} already exists", "已有使用此统一社会信用代码或名称 {name} 的单位"),
    ("member-duplicate", "{name} already belongs to an organisation; an account acts for one only", "{name} 已属于一个单位；一个账户只能代表一个单位"),
    ("user-unknown", "no platform user {name}", "平台上没有用户 {name}"),
    ("resident-id", "a natural person is identified by the 18-digit resident ID number (GB 11643-1999) and this one fails the check", "自然人以18位公民身份号码（GB 11643-1999）标识，此号码未通过校验"),
    ("resident-id-duplicate", "this resident ID number is already verified for another account; a person has one account", "此公民身份号码已为另一账户核验；一人只能有一个账户"),
    ("export-purpose", "say what the output is for", "请说明导出成果的用途"),
    ("export-content", "an export request holds either files or one DP result", "导出申请须包含文件或一个差分隐私结果，二者择一"),
    ("export-chart", "a figure needs its chart specification, and only a figure has one", "图表须附图表说明，且只有图表附图表说明"),
    ("export-file-name", "file name {name} must be a plain name without folders", "文件名 {name} 须为不含文件夹的文件名"),
    ("export-dp-source", "export request {id} is not a DP release of yours under agreement {agreement}", "导出申请 {id} 不是您在协议 {agreement} 下的差分隐私发布"),
    ("export-reason", "{action} needs a reason for the author", "此决定须向作者说明理由"),
    # The guard's reasons, as the notebook client shows them (query_guard/rules/*)
    ("QG-001", "{what}; only {allowed} may be run", "{what}；只能运行 {allowed}"),
    ("QG-002", "{what} is not allowed; allowed are {allowed}", "不允许使用 {what}；允许的是 {allowed}"),
    ("QG-003", "function {name}() is not allowed; allowed functions are {allowed}", "不允许使用函数 {name}()；允许的函数为 {allowed}"),
    ("QG-004", "relation {name} is not in the agreement; only {allowed} may be queried", "表 {name} 不在协议范围内；只能查询 {allowed}"),
    ("QG-004", "table functions are not allowed in FROM; only {allowed} may be queried", "FROM 中不允许使用表函数；只能查询 {allowed}"),
    ("QG-004", "qualified name {name} is not allowed; only {allowed} may be queried", "不允许使用限定名称 {name}；只能查询 {allowed}"),
    ("QG-004", "a WITH query may not be named {name}, which is a dataset name; give it another name", "WITH 子查询不能命名为数据集名称 {name}；请另取名称"),
    ("QG-005", "dataset {name} is suspended after a rights complaint and cannot be queried until the provider restores it", "数据集 {name} 因权益投诉已中止开放，开放主体恢复前不能查询"),
    ("QG-006", "{what}; only the agreement's columns may be referenced, one at a time ({allowed})", "{what:phrases}；只能逐个引用协议允许的字段（{allowed}）"),
    ("phrase", "{ref} is a whole-row or unresolved reference", "{ref} 是整行引用或无法解析的引用"),
    ("phrase", "{ref} is a whole-row reference", "{ref} 是整行引用"),
    ("phrase", "{ref} refers to a relation this query block does not select from", "{ref} 引用了本查询块未选取的表"),
    ("QG-007", "the result may not be ordered by an identifier column (by name, alias, position or ORDER BY ALL); order by other columns instead", "结果不能按标识符字段排序（无论按名称、别名、位置还是 ORDER BY ALL）；请按其他字段排序"),
    ("QG-009", "row-level results are not allowed under an aggregate-mode agreement; the result must be aggregates (count, sum, avg, …) with GROUP BY keys", "汇总模式的协议不允许返回行级结果；结果须为带 GROUP BY 分组键的汇总值（count、sum、avg 等）"),
    ("QG-010", "{name}() collects many values into one cell and is not allowed; return rows (record mode) or aggregates", "{name}() 把多个值汇集到一个单元格中，不允许使用；请返回行（记录模式）或汇总值"),
    ("QG-010", "{name}() reveals a single member's value; use count, sum, avg, stddev or variance, or use it inside a WITH query grouped by the entity", "{name}() 会暴露单个主体的取值；请使用 count、sum、avg、stddev 或 variance，或在按主体分组的 WITH 子查询中使用它"),
    ("QG-018", "the output name {name} is used again in the same SELECT list; repeat its expression, or define it in a WITH query and select from that", "输出名称 {name} 在同一 SELECT 列表中被再次引用；请重复其表达式，或在 WITH 子查询中定义后再选取"),
)  # fmt: skip

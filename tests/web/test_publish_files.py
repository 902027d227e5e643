"""Files as government systems write them, published through the provider's upload page and
the API: GBK/GB18030 chosen on the form, title rows above the header, Chinese dates and
thousands separators; refusals name the row and column and never a path on the server."""

from __future__ import annotations

import csv
import io
import re
from datetime import date
from pathlib import Path

import duckdb
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from query_guard.at_rest import parquet_source
from sandbox.accounts.models import User
from sandbox.catalog.encryption import version_key
from sandbox.catalog.models import Dataset, DatasetVersion
from sandbox.db.base import transaction
from sandbox.keys.store import key_store
from sandbox.settings import Settings
from tests.control_plane.conftest import PROVIDER, login
from tests.web.test_pages import csrf_token, sign_in

TITLES = [["2024年3月梁溪区门诊就诊情况"], ["填报单位：梁溪区卫生健康委员会", "", "单位：元"]]
HEADER = ["visit_date", "district", "cost", "visits"]
ROWS = [
    ["2024年3月1日", "梁溪区", "1,234.5", "1,200"],
    ["2024/3/2", "滨湖区", "88", "3"],
    ["2024-03-03", "𠮷溪区", "12,000", ""],  # U+20BB7: in GB18030, not in GBK
]
COLUMNS = [("visit_date", "DATE"), ("district", "VARCHAR"), ("cost", "DOUBLE"),
           ("visits", "INTEGER")]  # fmt: skip


def _csv(rows: list[list[str]], encoding: str) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows([*TITLES, HEADER, *rows])
    return out.getvalue().encode(encoding)


def _declaration(token: str, name: str = "march_visits") -> dict[str, str | list[str]]:
    return {
        "csrf_token": token, "name": name, "title": "门诊就诊", "domain": "health",
        "summary": "每日门诊", "open_class": "conditional", "conditions": "科研机构",
        "update_frequency": "monthly", "contact": "data@health.example.invalid", "entity": "",
        "column_name": [n for n, _ in COLUMNS], "column_type": [t for _, t in COLUMNS],
        "column_sensitivity": ["none"] * 4, "column_description": [""] * 4,
    }  # fmt: skip


def _beside(page: str, field: str) -> str:
    """The problem the declaration page shows beside ``field``, linked from its input."""
    found = re.search(
        rf'aria-describedby="declaration-{re.escape(field)}-problem">'
        rf'<span class="field-error" id="declaration-{re.escape(field)}-problem">([^<]*)</span>',
        page,
    )
    assert found, f"no problem beside {field}"
    return found.group(1)


def _upload(client: TestClient, data: bytes, **form: str) -> str:
    """Upload on the page; the declaration page's address."""
    token = csrf_token(client, "/provider/publish")
    r = client.post(
        "/provider/publish",
        data={"csrf_token": token, **form},
        files={"data": ("门诊就诊.csv", data, "text/csv")},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text[:500]
    return r.headers["location"]


def _no_server_path(text: str, settings: Settings) -> None:
    assert str(settings.data_dir) not in text and "/uploads/" not in text
    assert "/tmp" not in text


def test_a_gb18030_csv_with_title_rows_is_published_from_the_page(
    client: TestClient, platform: dict[str, User], factory: sessionmaker[Session],
    settings: Settings,
) -> None:  # fmt: skip
    sign_in(client, "health")
    form = client.get("/provider/publish").text
    assert '<option value="gb18030">GB18030</option>' in form and 'name="header_row"' in form
    declare = _upload(client, _csv(ROWS, "gb18030"), encoding="gb18030", header_row="")
    page = client.get(declare)
    assert page.status_code == 200, page.text[:800]
    assert "<code>门诊就诊.csv</code>" in page.text and "表头所在行: 3" in page.text
    assert all(f'name="column_name" value="{name}"' in page.text for name in HEADER)

    token = csrf_token(client, declare)
    r = client.post(f"{declare}/preview", data=_declaration(token))
    assert r.status_code == 200 and 'id="preview"' in r.text, r.text[:800]
    r = client.post(f"{declare}/publish", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303, r.text[:500]
    with transaction(factory) as session:
        ds = session.scalars(select(Dataset).where(Dataset.name == "march_visits")).one()
        assert ds.provider == PROVIDER
        version = session.scalars(select(DatasetVersion).order_by(DatasetVersion.id)).all()[-1]
        key = version_key(key_store(settings), version)  # stored encrypted (operator.md §11)
        with duckdb.connect() as conn:
            rows = parquet_source(conn, version.path, key=key, name="version")
            stored = conn.sql(f"SELECT * FROM {rows}").to_arrow_table().to_pydict()
    assert stored["visit_date"] == [date(2024, 3, 1), date(2024, 3, 2), date(2024, 3, 3)]
    assert stored["district"] == ["梁溪区", "滨湖区", "𠮷溪区"]
    assert stored["cost"] == [1234.5, 88.0, 12000.0]
    assert stored["visits"] == [1200, 3, None]


def test_the_page_refuses_at_the_cell_and_shows_no_server_path(
    client: TestClient, platform: dict[str, User], settings: Settings
) -> None:
    sign_in(client, "health")
    rows = [row[:] for row in ROWS]
    rows[1][0] = "3月2日"  # no year
    declare = _upload(client, _csv(rows, "gb18030"))  # detected
    token = csrf_token(client, declare)
    r = client.post(f"{declare}/preview", data=_declaration(token))
    assert r.status_code == 422
    assert (  # in the page's language, every part of it
        "门诊就诊.csv：&#39;visit_date&#39; 列声明为 DATE，但 3 行中有 1 行无法按 DATE 读取，"
        "位于单元格 A5（日期可写作 2024-03-01、2024/3/1" in r.text
    )
    _no_server_path(r.text, settings)

    declared = _declaration(token, name="Visits 2024")
    declared["column_name"] = ["visit_date", "ＣＯＳＴ", "cost", "visits"]  # full-width, alike
    r = client.post(f"{declare}/preview", data=declared)
    assert r.status_code == 422
    assert _beside(r.text, "name") == (
        "须为由小写字母 a-z、汉字、数字和下划线组成的 SQL 名称：&#39;Visits 2024&#39; "
        "须为小写（SQL 不区分大小写）；可写作 &#39;visits_2024&#39;"
    )
    assert "含全角或兼容字符" in _beside(r.text, "columns[1].name")
    assert 'value="Visits 2024"' in r.text and 'value="ＣＯＳＴ"' in r.text  # entered, kept
    _no_server_path(r.text, settings)

    # GBK chosen, but the file holds a character only GB18030 has.
    page = client.get(_upload(client, _csv(ROWS, "gb18030"), encoding="gbk"))
    assert page.status_code == 422
    assert "门诊就诊.csv：第 6 行、&#39;district&#39; 列（B）无法按 GBK 读取" in page.text
    _no_server_path(page.text, settings)


def _entry() -> bytes:
    entry = {
        "name": "march_visits", "title": "门诊就诊", "provider": PROVIDER, "domain": "health",
        "summary": "每日门诊", "open_class": "conditional", "conditions": "科研机构",
        "update_frequency": "monthly", "contact": "data@health.example.invalid",
        "columns": [{"name": n, "type": t} for n, t in COLUMNS],
    }  # fmt: skip
    return yaml.safe_dump(entry, allow_unicode=True).encode()


def test_the_api_reads_the_encoding_and_header_row_it_is_given(
    client: TestClient, platform: dict[str, User], factory: sessionmaker[Session],
    settings: Settings, tmp_path: Path,
) -> None:  # fmt: skip
    headers = login(client, "health")
    subtitle = TITLES[1] + ["2024年", ""]  # fills 4 of 5 cells: it looks like a header

    def publish(rows: list[list[str]], **form: str) -> dict:
        out = io.StringIO()
        csv.writer(out).writerows([subtitle, HEADER, *rows])
        r = client.post(
            "/api/catalog", headers=headers, data=form,
            files={"entry": ("门诊.yaml", _entry()),
                   "data": ("门诊.csv", out.getvalue().encode("gbk"))},
        )  # fmt: skip
        assert r.status_code in (201, 422), r.text
        return r.json()

    gbk_rows = [row[:] for row in ROWS]
    gbk_rows[2][1] = "锡山区"
    assert "missing column(s)" in publish(gbk_rows)["error"]  # the subtitle taken as header
    refused = publish(gbk_rows, header_row="2", encoding="utf-8")
    assert refused["rule"] == "upload-encoding"
    assert refused["error"].startswith("门诊.csv: row 1, column A cannot be read as UTF-8")
    _no_server_path(refused["error"], settings)
    bad = [row[:] for row in gbk_rows]
    bad[0][3] = "1.200,5"
    refused = publish(bad, header_row="2", encoding="gbk")
    assert refused["rule"] == "upload-type" and "at cells D3 (numbers" in refused["error"]
    assert publish(gbk_rows, header_row="2", encoding="gbk")["status"] == "under_review"

"""Synthetic demo data for the demo catalogue, one dataset per open class and more.

Everything is invented, deterministic (a fixed seed) and quick to make. The
identifiers have valid check characters, so the platform's detectors treat
them as real, but their region codes do not exist: resident ID numbers start
with region 99 and credit codes carry division code 99xxxx (no province-level
code is above 82), so no real person's or company's number can appear.

Run ``python -m sandbox.demo.generate [DIR]`` to write the Parquet files
(by default next to the catalogue YAMLs, where their ``source`` points).
"""

from __future__ import annotations

import random
import shutil
import sys
from collections.abc import Callable
from datetime import date, timedelta
from itertools import accumulate
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sandbox.catalog.identifiers import (
    CREDIT_CODE_CHARSET,
    credit_code_check_char,
    resident_id_check_char,
)
from sandbox.contracts import load_catalog_entry

DEMO_DIR = Path(__file__).parent
DEMO_CATALOG_DIR = DEMO_DIR / "catalog"
DEMO_AGREEMENTS_DIR = DEMO_DIR / "agreements"
DEMO_SEED = 20260101

#: The fake province-level region code every synthetic identifier carries.
FAKE_REGION = "99"
DISTRICTS = ("梁溪区", "锡山区", "惠山区", "滨湖区", "新吴区", "江阴市", "宜兴市")
#: Relative size of each district, so counts differ the way real ones do.
DISTRICT_SIZES = (9, 7, 7, 7, 7, 16, 12)
# Weights below are cumulative, the form random.choices takes fastest.
_DISTRICT_WEIGHTS = tuple(accumulate(DISTRICT_SIZES))

OUTPATIENT_ROWS = 50_000
ENTERPRISES = 5_000
RECIPIENTS = 3_000


def _day(r: random.Random, first: date, last: date) -> date:
    return first + timedelta(days=r.randrange((last - first).days + 1))


def _district(r: random.Random) -> int:
    return r.choices(range(len(DISTRICTS)), cum_weights=_DISTRICT_WEIGHTS)[0]


def fake_resident_id(r: random.Random, district: int, born: date, male: bool) -> str:
    """A resident ID number of region 99: valid check char, odd 17th digit for men as GB 11643."""
    sequence = r.randrange(500) * 2 + (1 if male else 0)
    body = f"{FAKE_REGION}02{district:02d}{born:%Y%m%d}{sequence:03d}"
    return body + resident_id_check_char(body)


def fake_credit_code(r: random.Random, district: int) -> str:
    """An enterprise credit code (9 = market regulation, 1 = company) of division 99xxxx."""
    organisation = "".join(r.choice(CREDIT_CODE_CHARSET) for _ in range(9))
    body = f"91{FAKE_REGION}02{district:02d}{organisation}"
    return body + credit_code_check_char(body)


Row = tuple[object, ...]


def _population(r: random.Random) -> list[Row]:
    rows = []
    for year in range(2019, 2026):
        for d, district in enumerate(DISTRICTS):
            for sex in ("男", "女"):
                for age_group, share in (("0-14", 0.13), ("15-64", 0.66), ("65+", 0.21)):
                    base = DISTRICT_SIZES[d] * 31_000 * share * (1 + 0.004 * (year - 2019))
                    residents = round(base * r.uniform(0.97, 1.03))
                    rows.append((year, district, sex, age_group, residents))
    return rows


_DEPARTMENTS = ("内科", "外科", "儿科", "妇产科", "眼科", "口腔科", "皮肤科", "中医科")
_DEPARTMENT_WEIGHTS = tuple(accumulate((30, 14, 12, 9, 8, 9, 8, 10)))
_DIAGNOSES = (
    "呼吸系统疾病",
    "循环系统疾病",
    "消化系统疾病",
    "内分泌代谢疾病",
    "肌肉骨骼疾病",
    "皮肤病",
    "损伤",
    "其他",
)
_DIAGNOSIS_WEIGHTS = tuple(accumulate((24, 16, 14, 10, 12, 7, 7, 10)))
_VISIT_MONTH_WEIGHTS = tuple(accumulate((13, 12, 10, 9, 8, 7, 8, 8, 8, 9, 10, 12)))  # winter peak


def _visit_day(r: random.Random) -> date:
    year = r.choice((2024, 2025))
    month = r.choices(range(1, 13), cum_weights=_VISIT_MONTH_WEIGHTS)[0]
    first = date(year, month, 1)
    return _day(r, first, (first + timedelta(days=31)).replace(day=1) - timedelta(days=1))


def _outpatient_visits(r: random.Random) -> list[Row]:
    """About 13k patients with 1 to 30 visits each, mostly in their home district."""
    rows: list[Row] = []
    while len(rows) < OUTPATIENT_ROWS:
        home, male = _district(r), r.random() < 0.48
        born = _day(r, date(1935, 1, 1), date(2023, 12, 31))
        patient = fake_resident_id(r, home, born, male)
        for _ in range(min(30, 1 + int(r.expovariate(1 / 3)))):
            day = _visit_day(r)
            age = day.year - born.year - ((day.month, day.day) < (born.month, born.day))
            rows.append(
                (
                    patient,
                    day,
                    DISTRICTS[home if r.random() < 0.8 else _district(r)],
                    "男" if male else "女",
                    max(age, 0),
                    r.choices(_DEPARTMENTS, cum_weights=_DEPARTMENT_WEIGHTS)[0],
                    r.choices(_DIAGNOSES, cum_weights=_DIAGNOSIS_WEIGHTS)[0],
                    round(min(50_000.0, r.lognormvariate(5.3, 0.9)), 2),
                )
            )
    return rows[:OUTPATIENT_ROWS]


_NAME_ROOTS = ("瑞丰", "恒通", "华锡", "泰隆", "金源", "宏达", "新辰", "嘉禾", "远航", "博雅")
_NAME_TRADES = ("机械", "电子", "纺织", "科技", "物流", "建材", "贸易", "餐饮")
_INDUSTRIES = (
    "制造业",
    "批发和零售业",
    "信息技术服务业",
    "建筑业",
    "租赁和商务服务业",
    "科学研究和技术服务业",
    "交通运输业",
    "住宿和餐饮业",
)
_INDUSTRY_WEIGHTS = tuple(accumulate((30, 22, 10, 9, 10, 7, 6, 6)))


def _enterprise_registry(r: random.Random) -> list[Row]:
    rows = []
    for i in range(ENTERPRISES):
        d = _district(r)
        name = f"无锡{r.choice(_NAME_ROOTS)}{r.choice(_NAME_TRADES)}演示{i:04d}有限公司"
        capital = round(min(100_000.0, r.lognormvariate(5.5, 1.4)), 2)
        employees = min(5_000, int(r.lognormvariate(2.5, 1.2)))
        established = _day(r, date(1992, 1, 1), date(2025, 12, 31))
        industry = r.choices(_INDUSTRIES, cum_weights=_INDUSTRY_WEIGHTS)[0]
        code = fake_credit_code(r, d)
        rows.append((code, name, DISTRICTS[d], industry, capital, employees, established))
    return rows


_ASSISTANCE = (("最低生活保障", 1060.0), ("特困人员供养", 1380.0), ("临时救助", 600.0))


def _social_assistance_recipients(r: random.Random) -> list[Row]:
    rows = []
    for _ in range(RECIPIENTS):
        d, male = _district(r), r.random() < 0.5
        born = _day(r, date(1930, 1, 1), date(2010, 12, 31))
        kind, standard = r.choices(_ASSISTANCE, (60, 25, 15))[0]
        amount = round(standard * r.uniform(0.4, 1.0), 2)
        since = _day(r, date(2015, 1, 1), date(2025, 12, 1)).replace(day=1)
        rows.append((fake_resident_id(r, d, born, male), DISTRICTS[d], kind, amount, since))
    return rows


GENERATORS: dict[str, Callable[[random.Random], list[Row]]] = {
    "population": _population,
    "outpatient_visits": _outpatient_visits,
    "enterprise_registry": _enterprise_registry,
    "social_assistance_recipients": _social_assistance_recipients,
}

_ARROW_TYPES = {
    "VARCHAR": pa.string(),
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
    "DOUBLE": pa.float64(),
    "DATE": pa.date32(),
}


def _as_table(name: str, rows: list[Row]) -> pa.Table:
    """The rows as a table whose columns and types are the catalogue entry's, in its order."""
    entry = load_catalog_entry(DEMO_CATALOG_DIR / f"{name}.yaml")
    schema = pa.schema([(c.name, _ARROW_TYPES[c.type]) for c in entry.columns])
    columns = zip(*rows, strict=True)
    return pa.table([pa.array(v, t) for v, t in zip(columns, schema.types, strict=True)], schema)


def generate_demo(out_dir: Path, seed: int = DEMO_SEED) -> dict[str, Path]:
    """Write ``<out_dir>/<dataset>.parquet`` for every demo dataset; return name -> file.

    Each dataset draws from its own seeded generator, so changing one leaves
    the others byte-for-byte the same.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, make in GENERATORS.items():
        path = out_dir / f"{name}.parquet"
        pq.write_table(_as_table(name, make(random.Random(f"{seed}:{name}"))), path)
        written[name] = path
    return written


def build_demo_catalog(dest: Path, seed: int = DEMO_SEED) -> Path:
    """A self-contained copy of the demo catalogue in ``dest``: the YAMLs plus their data."""
    dest.mkdir(parents=True, exist_ok=True)
    for entry in DEMO_CATALOG_DIR.glob("*.yaml"):
        shutil.copy(entry, dest / entry.name)
    generate_demo(dest / "data", seed)
    return dest


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DEMO_CATALOG_DIR / "data"
    for dataset, file in generate_demo(target).items():
        print(f"{dataset}: {file}")

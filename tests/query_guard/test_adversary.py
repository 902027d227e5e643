"""An attacker with an aggregate-mode agreement spends over a thousand answers on one
planted person, and tries to reconstruct a binary attribute of everyone.

The target is one resident whose two payments are 500,000 each (everyone else pays
1,000-5,000 per payment), alone at age 37 in district D0, and diagnosed "X". The
attacker knows all of that except the payments and the diagnosis of others. Masked
and transformed aggregates are refused; what is answered is flattened and perturbed,
so that no estimate comes near the target's value, and the smallest groups that
would give away a diagnosis are suppressed (THREAT_MODEL, aggregate mode).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from query_guard.compile import build_agreement_database
from query_guard.engine import open_readonly, run_query
from query_guard.guard import GuardContext, check_query
from sandbox.contracts import load_agreement, load_catalog

TARGET_PAYMENT = 500_000.0
TARGET_TOTAL = 2 * TARGET_PAYMENT
K = 10
AGES = range(20, 80)


@dataclass
class Target:
    ctx: GuardContext
    conn: object
    people: list[dict]
    answers: int = 0

    def ask(self, sql: str) -> pa.Table | None:
        decision = check_query(sql, self.ctx)
        if decision.sql is None:
            return None
        self.answers += 1
        return run_query(self.conn, decision.sql, 30)

    def value(self, sql: str) -> float | None:
        table = self.ask(sql)
        if table is None or table.num_rows == 0:
            return None
        return table.column(0)[0].as_py()


def _world(root: Path) -> tuple[pa.Table, list[dict]]:
    rng = random.Random(11)
    people = []
    for i in range(3000):
        district = f"D{i % 10}"
        age = rng.choice([a for a in AGES if not (district == "D0" and a == 37)])
        people.append({"id": f"P{i:05d}", "district": district, "age": age,
                       "diag": "X" if rng.random() < 0.3 else "Y"})  # fmt: skip
    people.append({"id": "TARGET", "district": "D0", "age": 37, "diag": "X"})
    rows: dict[str, list] = {"person_id": [], "district": [], "age": [], "income": [], "diag": []}
    for p in people:
        payments = [TARGET_PAYMENT] * 2 if p["id"] == "TARGET" else [
            round(rng.uniform(1000, 5000), 2) for _ in range(rng.randint(1, 3))
        ]  # fmt: skip
        for amount in payments:
            row = {"person_id": p["id"], "district": p["district"], "age": p["age"],
                   "income": amount, "diag": p["diag"]}  # fmt: skip
            for key, value in row.items():
                rows[key].append(value)
    return pa.table(rows), people


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Target:
    root = tmp_path_factory.mktemp("adversary")
    table, people = _world(root)
    (root / "catalog").mkdir()
    pq.write_table(table, root / "catalog" / "payments.parquet")
    entry = {
        "name": "payments", "title": "Payments", "provider": "civil", "domain": "finance",
        "summary": "One row per payment.", "open_class": "conditional",
        "conditions": "Approved researchers only.", "format": "parquet",
        "update_frequency": "monthly", "contact": "data@example.gov",
        "entity": "person_id", "source": "payments.parquet",
        "columns": [
            {"name": "person_id", "type": "VARCHAR", "sensitivity": "identifier"},
            {"name": "district", "type": "VARCHAR", "sensitivity": "quasi_identifier"},
            {"name": "age", "type": "INTEGER", "sensitivity": "quasi_identifier"},
            {"name": "income", "type": "DOUBLE"},
            {"name": "diag", "type": "VARCHAR", "sensitivity": "sensitive"},
        ],
    }  # fmt: skip
    (root / "catalog" / "payments.yaml").write_text(yaml.safe_dump(entry), encoding="utf-8")
    agreement = {
        "id": "AGR-ADV", "title": "Payments", "provider": "civil", "researchers": ["eve"],
        "purpose": "Payments by district.", "mode": "aggregate",
        "valid_from": "2026-01-01", "valid_until": "2027-12-31",
        "datasets": {"payments": {"columns": ["district", "age", "income", "diag"]}},
        "disclosure": {"min_group_size": K},
    }  # fmt: skip
    (root / "agreement.yaml").write_text(yaml.safe_dump(agreement), encoding="utf-8")
    catalog = load_catalog(root / "catalog")
    contract = load_agreement(root / "agreement.yaml")
    db = build_agreement_database(contract, catalog, out_path=root / "a.duckdb", key=b"k" * 32)
    conn = open_readonly(db, memory_limit="256MB", threads=1, noise_secret=b"n" * 32)
    return Target(GuardContext(contract, catalog), conn, people)


MASKED = [
    "SELECT sum(CASE WHEN district = 'D0' AND age = 37 THEN income ELSE 0 END) FROM payments",
    "SELECT sum(income * CAST(age = 37 AS INTEGER)) FROM payments WHERE district = 'D0'",
    "SELECT avg(nullif(income * (age = 37)::INT, 0)) FROM payments",
    "SELECT count(CASE WHEN age = 37 AND diag = 'X' THEN 1 END) FROM payments",
    "SELECT sum(income) FILTER (WHERE age = 37) FROM payments WHERE district = 'D0'",
    "SELECT sum(greatest(income - 100000, 0)) FROM payments",
    "SELECT pow(sum(pow(income, 40)), 1.0 / 40) FROM payments",
    "SELECT ln(sum(exp(income / 100000))) * 100000 FROM payments",
    "SELECT max(income) FROM payments",
    "SELECT sum(income) FROM payments WHERE district = 'D0' AND NOT age = 37",
    "SELECT sum(income) FROM payments WHERE district = 'D0' AND age <> 37",
    "SELECT sum(income) FROM payments WHERE district = 'D0' AND age IN (35, 36, 37)",
    "SELECT sum(income) FROM payments WHERE district = 'D0' AND age BETWEEN 37 AND 38",
    "WITH r AS (SELECT income, row_number() OVER (ORDER BY income DESC) AS n FROM payments) "
    "SELECT sum(income) FROM r WHERE n = 1",
    "SELECT district, sum(income) FROM payments GROUP BY district "
    "HAVING sum(CASE WHEN age = 37 THEN 1 ELSE 0 END) > 0",
]


def test_masked_and_transformed_queries_are_refused(target: Target) -> None:
    for sql in MASKED:
        assert target.ask(sql) is None, sql


def _contexts() -> list[str]:
    """Conditions an attacker can write that keep the target (round bounds only)."""
    ages = [
        "",
        "AND age >= 30",
        "AND age < 40",
        "AND age BETWEEN 30 AND 40",
        "AND age >= 20",
        "AND age < 50",
        "AND age BETWEEN 20 AND 40",
        "AND age BETWEEN 30 AND 50",
        "AND age BETWEEN 10 AND 90",
        "AND age < 60",
        "AND age >= 10",
        "AND age < 70",
    ]
    others = [
        "",
        "AND diag = 'X'",
        "AND income >= 1000",
        "AND income >= 900",
        "AND income > 10",
        "AND income < 9000000",
        "AND income >= 100",
        "AND income IS NULL",
    ]
    return [f"district = 'D0' {a} {o}" for a in ages for o in others]


def test_a_thousand_answers_do_not_give_away_the_planted_value(target: Target) -> None:
    estimates = []
    # Pair averaging over many complements: with and without the target (it alone pays
    # 100,000 or more), under every context the grammar allows.
    for context in _contexts():
        with_target = target.value(f"SELECT sum(income) FROM payments WHERE {context}")
        without = target.value(
            f"SELECT sum(income) FROM payments WHERE {context} AND income < 100000"
        )
        if with_target is not None and without is not None:
            estimates.append(with_target - without)
    pair_average = float(np.mean(estimates))
    # Least squares over random subsets: sums over random districts and age bands, with the
    # rows counted too, solved for the target's total and everyone else's mean payment.
    rng = random.Random(5)
    design, answers = [], []
    while target.answers < 1000:
        district = f"D{rng.randrange(10)}"
        low = rng.choice([20, 30, 40, 50, 60])
        width = rng.choice([10, 20, 30])
        where = f"district = '{district}' AND age BETWEEN {low} AND {low + width}"
        total = target.value(f"SELECT sum(income) FROM payments WHERE {where}")
        rows = target.value(f"SELECT count(*) FROM payments WHERE {where}")
        if total is None or rows is None:
            continue
        has_target = district == "D0" and low <= 37 <= low + width
        design.append([float(has_target), rows])
        answers.append(total)
    (least_squares, _), *_ = np.linalg.lstsq(np.array(design), np.array(answers), rcond=None)
    assert target.answers >= 1000
    for estimate in (pair_average, least_squares, *estimates):
        assert abs(estimate - TARGET_TOTAL) > TARGET_TOTAL / 2, estimate


def test_the_smallest_groups_do_not_give_away_everyones_diagnosis(target: Target) -> None:
    """Per (district, exact age) the share diagnosed X would reveal most people's
    diagnosis if those groups of one to three people were shown; they are suppressed,
    so the attacker does no better than guessing the majority class plus 5 points."""
    shown = {}
    table = target.ask("SELECT district, age, diag, count(*) AS n FROM payments GROUP BY ALL")
    for district, age, diag, n in zip(*(c.to_pylist() for c in table.columns), strict=True):
        shown[(district, age, diag)] = n
    correct = 0
    for p in target.people:
        x = shown.get((p["district"], p["age"], "X")) or 0  # suppressed: nothing shown
        y = shown.get((p["district"], p["age"], "Y")) or 0
        guess = "X" if x > y else "Y"
        correct += guess == p["diag"]
    majority = max(sum(p["diag"] == d for p in target.people) for d in "XY")
    assert correct / len(target.people) <= majority / len(target.people) + 0.05
    assert ("D0", 37, "X") not in shown


def test_a_condition_that_leaves_out_only_the_target_tells_nothing(target: Target) -> None:
    """``income < 100000`` leaves out the target alone. Were it kept, each pair below
    would differ by the target's presence, and the spread of the differences over many
    contexts would tell whether the target is diagnosed X (measured: 10.6 against 2.8
    before low-effect detection). Dropped where it changes too few entities, it makes
    both queries of a pair the same query, whichever the diagnosis."""
    spread = {}
    for diag in ("X", "Y"):
        differences = []
        for context in _contexts():
            where = f"{context} AND diag = '{diag}'"
            both = [
                target.value(f"SELECT count(*) FROM payments WHERE {where}{extra}")
                for extra in ("", " AND income < 100000")
            ]
            if None not in both:
                differences.append(both[0] - both[1])
        assert len(differences) > 50
        spread[diag] = (float(np.mean(differences)), float(np.std(differences)))
    (mean_x, sd_x), (mean_y, sd_y) = spread["X"], spread["Y"]
    assert abs(mean_x - mean_y) < 0.5 and sd_x <= 1.5 * sd_y + 0.5, spread

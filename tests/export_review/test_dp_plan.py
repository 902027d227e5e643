"""The DP planner accepts only the supported shape and refuses the rest from the text."""

from __future__ import annotations

import pytest

from export_review.dp_plan import plan_query
from sandbox.errors import PolicyViolation

ACCEPTED = [
    (
        "SELECT district, COUNT(*) AS n FROM outpatient_visits GROUP BY district",
        ("district",),
        ["count"],
    ),
    ("SELECT COUNT(DISTINCT patient_id) AS p FROM outpatient_visits", (), ["count_distinct"]),
    (
        "SELECT hospital, district, SUM(cost) AS s, AVG(cost) AS a FROM outpatient_visits v "
        "WHERE v.age BETWEEN 18 AND 65 AND district IN ('梁溪区') GROUP BY hospital, district",
        ("hospital", "district"),
        ["sum", "avg"],
    ),
]

REFUSED = [
    ("SELECT district, MEDIAN(cost) FROM outpatient_visits GROUP BY district", "dp-unsupported"),
    (
        "SELECT district, COUNT(*) FROM outpatient_visits GROUP BY district ORDER BY 2",
        "dp-unsupported",
    ),
    (
        "SELECT COUNT(*) FROM outpatient_visits a JOIN outpatient_visits b ON a.age = b.age",
        "dp-unsupported",
    ),
    ("SELECT COUNT(*) FROM (SELECT * FROM outpatient_visits)", "dp-unsupported"),
    ("SELECT COUNT(*) FROM outpatient_visits WHERE age IN (SELECT 1)", "dp-unsupported"),
    ("SELECT SUM(age) FROM outpatient_visits", "dp-no-bounds"),
    ("SELECT SUM(diagnosis) FROM outpatient_visits", "dp-out-of-scope"),
    ("SELECT patient_id, COUNT(*) FROM outpatient_visits GROUP BY patient_id", "dp-out-of-scope"),
    ("SELECT COUNT(*) FROM other_table", "dp-out-of-scope"),
    # the hidden contribution rank that bounds each entity's rows is never nameable
    (
        "SELECT COUNT(*) FROM outpatient_visits WHERE __qg_contribution_rank <= 100",
        "dp-out-of-scope",
    ),
    ("SELECT SUM(__qg_contribution_rank) FROM outpatient_visits", "dp-out-of-scope"),
    (
        "SELECT __qg_contribution_rank, COUNT(*) FROM outpatient_visits "
        "GROUP BY __qg_contribution_rank",
        "dp-out-of-scope",
    ),
    (
        "SELECT age, hospital, district, COUNT(*) FROM outpatient_visits "
        "GROUP BY age, hospital, district",
        "dp-unsupported",
    ),
    ("SELECT district FROM outpatient_visits GROUP BY district", "dp-unsupported"),
    ("DELETE FROM outpatient_visits", "dp-unsupported"),
    ("SELECT COUNT(*) FROM outpatient_visits; SELECT 1", "dp-unsupported"),
    ("SELEC nonsense (", "dp-unsupported"),
]


@pytest.mark.parametrize(("sql", "keys", "kinds"), ACCEPTED)
def test_supported_queries_are_planned(world, sql, keys, kinds):
    plan = plan_query(sql, world.agreement, world.catalog)
    assert plan.group_keys == keys
    assert [a.kind for a in plan.aggregates] == kinds
    assert plan.entity == "patient_id"


@pytest.mark.parametrize(("sql", "rule"), REFUSED)
def test_other_queries_are_refused_with_a_rule(world, sql, rule):
    with pytest.raises(PolicyViolation) as info:
        plan_query(sql, world.agreement, world.catalog)
    assert info.value.rule == rule
    assert info.value.article


def test_public_values_become_the_keys_and_where_is_unqualified(world):
    plan = plan_query(ACCEPTED[2][0], world.agreement, world.catalog)
    assert plan.key_values is None  # hospital has no public values: partitions are selected
    assert "v." not in (plan.where or "")
    plan = plan_query(ACCEPTED[0][0], world.agreement, world.catalog)
    assert plan.key_values is not None and "空白区" in plan.key_values[0]


def test_refusal_message_does_not_echo_literals(world):
    with pytest.raises(PolicyViolation) as info:
        plan_query(
            "SELECT COUNT(*) FROM outpatient_visits WHERE diagnosis = 'J06'",
            world.agreement,
            world.catalog,
        )
    assert "J06" not in str(info.value)

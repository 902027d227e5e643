"""DP releases on fixed data: shape, bounding, clamping, selection, and the noise itself."""

from __future__ import annotations

import statistics

import pytest

from export_review.dp_plan import plan_query
from export_review.dp_release import exact_sql, execute, prepare
from query_guard.compile import CONTRIBUTION_RANK

from .conftest import DISTRICTS, World, make_visits


@pytest.fixture(scope="module")
def one_row_each(tmp_path_factory: pytest.TempPathFactory) -> World:
    """Every row its own entity, so bounding keeps every row and the truth is fixed."""
    visits = make_visits()
    visits["patient_id"] = [f"U{i:06d}" for i in range(len(visits))]
    return World(tmp_path_factory.mktemp("one_row_each"), visits, max_contributions=1)


def release(world: World, sql: str, epsilon: float = 1.0, k: int = 3, delta: float = 1e-7):
    prepared = prepare(
        plan_query(sql, world.agreement, world.catalog),
        epsilon=epsilon,
        max_contributions=k,
        selection_delta=delta,
    )
    with world.connect() as conn:
        return prepared, execute(conn, prepared)


def repeated(world: World, sql: str, times: int) -> list[list]:
    """Rows of ``times`` releases of the same prepared query (fresh noise each time)."""
    prepared = prepare(
        plan_query(sql, world.agreement, world.catalog),
        epsilon=1.0,
        max_contributions=1,
        selection_delta=0.0,
    )
    with world.connect() as conn:
        return [row for _ in range(times) for row in execute(conn, prepared).rows]


def test_every_public_key_is_released_even_empty_ones(world):
    prepared, result = release(
        world, "SELECT district, COUNT(*) AS n FROM outpatient_visits GROUP BY district"
    )
    assert result.columns == ["district", "n"]
    assert [row[0] for row in result.rows] == DISTRICTS
    assert result.mechanisms == ["discrete laplace (count)"]
    assert prepared.delta == 0.0
    assert prepared.epsilon <= 1.0


def test_counts_are_close_to_truth_at_large_epsilon(world):
    _, result = release(
        world,
        "SELECT district, COUNT(*) AS n FROM outpatient_visits GROUP BY district",
        epsilon=50.0,
    )
    truth = world.visits.groupby("district").size()
    for district, n in result.rows:
        assert abs(n - truth.get(district, 0)) <= 2


def test_one_entity_contributes_at_most_max_contributions_rows(tmp_path):
    heavy = make_visits(50)
    heavy["patient_id"] = "P-SAME"  # one entity owns every row
    w = World(tmp_path, heavy, max_contributions=2)
    _, result = release(w, "SELECT COUNT(*) AS n FROM outpatient_visits", epsilon=50.0, k=2)
    assert len(heavy) > 50 and result.rows[0][0] <= 4


def test_bounding_is_a_filter_on_the_build_time_rank(world):
    """Exactly the sampled rows (rank <= k, entity known) are aggregated; ranks exist per entity."""
    plan = plan_query(
        "SELECT COUNT(*) AS n FROM outpatient_visits WHERE age >= 50",
        world.agreement,
        world.catalog,
    )
    with world.connect() as conn:
        for k in (1, 2):
            exact = conn.execute(exact_sql(plan, k)).fetchone()
            kept = conn.execute(
                "SELECT count(*) FROM qg_private.outpatient_visits "
                f'WHERE "{CONTRIBUTION_RANK}" <= {k} AND patient_id IS NOT NULL AND age >= 50'
            ).fetchone()
            assert exact[0] == kept[0]
        per_entity = conn.execute(
            f'SELECT max("{CONTRIBUTION_RANK}") = count(*) FROM qg_private.outpatient_visits '
            "GROUP BY patient_id"
        ).fetchall()
    assert all(ok for (ok,) in per_entity)
    assert len(per_entity) == world.visits["patient_id"].nunique()


def test_sums_clamp_values_to_catalogue_bounds(world):
    # costs run to 1200 in the data, bounds are [0, 1000]
    _, result = release(
        world, "SELECT SUM(cost) AS s, AVG(cost) AS a FROM outpatient_visits", epsilon=50.0, k=3
    )
    clamped = world.visits["cost"].clip(0, 1000)
    assert result.rows[0][0] == pytest.approx(clamped.sum(), rel=0.01)
    assert result.rows[0][1] == pytest.approx(clamped.mean(), rel=0.01)
    assert result.mechanisms == [
        "laplace (sum)",
        "laplace (sum for avg)",
        "discrete laplace (count for avg)",
    ]


def test_keys_without_public_values_are_selected_by_a_threshold_spending_delta(world):
    prepared, result = release(
        world, "SELECT hospital, COUNT(*) AS n FROM outpatient_visits GROUP BY hospital"
    )
    released = [row[0] for row in result.rows]
    assert released == ["H-A", "H-B", "H-C"]  # H-RARE (3 rows) is under any threshold
    assert 0 < prepared.delta <= 1e-7
    assert result.mechanisms == ["discrete laplace threshold (partition selection)"]


def test_count_noise_is_centred_with_the_expected_variance(one_row_each):
    """Discrete Laplace at ε=1, sensitivity 1: mean error 0, variance 2e^-1/(1-e^-1)^2 ≈ 1.84."""
    truth = one_row_each.visits.groupby("district").size()
    rows = repeated(
        one_row_each, "SELECT district, COUNT(*) AS n FROM outpatient_visits GROUP BY district", 60
    )
    errors = [float(n - truth[district]) for district, n in rows if district in truth]
    assert len(errors) == 300
    assert abs(statistics.fmean(errors)) < 0.5
    assert 1.0 < statistics.variance(errors) < 3.0


def test_sum_noise_is_centred_with_the_expected_variance(one_row_each):
    """Laplace at ε=1 on a sum with reach 1·1000: scale 1000, variance 2·1000²."""
    truth = one_row_each.visits["cost"].clip(0, 1000).sum()
    rows = repeated(one_row_each, "SELECT SUM(cost) AS s FROM outpatient_visits", 200)
    errors = [s - truth for (s,) in rows]
    assert abs(statistics.fmean(errors)) < 500  # 5 standard errors of the mean (1414/√200)
    assert 1.0e6 < statistics.variance(errors) < 3.5e6


def test_heavy_entities_are_sampled_and_rows_without_entity_left_out(tmp_path):
    visits = make_visits(300)
    visits.loc[:9, "patient_id"] = None
    w = World(tmp_path, visits, max_contributions=1)
    _, result = release(w, "SELECT COUNT(*) AS n FROM outpatient_visits", epsilon=50.0, k=1)
    entities = visits["patient_id"].dropna().nunique()
    assert len(visits) > entities + 10  # many patients have several visits
    assert abs(result.rows[0][0] - entities) <= 2

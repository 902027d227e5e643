"""Sticky noise, noisy thresholds and flattening for aggregate mode, as DuckDB functions.

Why not OpenDP here: this noise must be *consistent* — the same cell answers
alike on every asking, so repeating a query never averages it away (the ABS
cell-key method; Diffix Elm's sticky noise) — and OpenDP's samplers cannot
be seeded. Each draw is NumPy's PCG64 normal generator seeded by an HMAC of
the dataset version's noise key over what defines the layer: the condition's
canonical form, the column, the bucket's value, and the set of contributing
entities (an XOR of their keyed pseudonyms' hashes). DP releases, which need
fresh noise, keep using OpenDP (:mod:`export_review.dp_mechanisms`).

Every draw is truncated at :data:`TRUNCATE` standard deviations, so the
researcher can be told by how much at most a value was perturbed.

The functions are registered on each hardened connection; the guard never
lets a researcher's query call them (unknown functions are refused), and
the key never appears in SQL.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import duckdb
import numpy as np

from query_guard.disclosure_rules import Thresholds, nk_dominated

#: Standard deviations at which every draw is cut: the documented bound on perturbation.
TRUNCATE = 3.0
PASS_FUNCTION = "__qg_pass"
ADJUST_FUNCTION = "__qg_adjust"
LOW_EFFECT_FUNCTION = "__qg_low_effect"
QUANTILE_FUNCTION = "__qg_quantile_noise"
FAST_FUNCTION = "__qg_fast_noise"
#: Ranks a quantile's window spans (the entity at the rank and two either side, as
#: ``emit.WINDOW``): its spread over this is about the spacing of neighbouring entities.
QUANTILE_SPAN = 4
#: How many of a bucket's largest contributions the SQL hands over for flattening.
TOP_CONTRIBUTIONS = 12


@dataclass(frozen=True)
class Static:
    """What the compiled SQL says about one base aggregate (or one bucket): public, no key."""

    datasets: tuple[str, ...]
    base: str
    conditions: tuple[str, ...]
    keys: tuple[str, ...]
    k: int
    noise_sd: float
    threshold_sd: float
    outliers: tuple[int, int]
    top_group: tuple[int, int]
    dominance: tuple[int, float]

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True, ensure_ascii=False)


@lru_cache(maxsize=4096)
def _static(text: str) -> Static:
    raw = json.loads(text)
    return Static(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})


def dataset_key(secret: bytes, dataset: str, digest: str) -> bytes:
    """The noise key of one dataset version, derived from the platform's noise secret."""
    return hmac.new(secret, f"{dataset}\0{digest}".encode(), hashlib.sha256).digest()


def contributor_key(secret: bytes, dataset: str, digest: str) -> bytes:
    """The key that names a dataset version's entities alike in every agreement."""
    return hmac.new(dataset_key(secret, dataset, digest), b"contributor", hashlib.sha256).digest()


class Seeder:
    """Seeds from the keys of the dataset versions a value reads."""

    def __init__(self, keys: Mapping[str, bytes]):
        self._keys = dict(keys)

    def key(self, datasets: tuple[str, ...]) -> bytes:
        parts = b"".join(self._keys.get(d, b"\0" * 32) for d in sorted(datasets))
        return hashlib.sha256(parts).digest()

    def seed(self, key: bytes, *parts: object) -> int:
        text = "\x1f".join(str(p) for p in parts).encode()
        return int.from_bytes(hmac.new(key, text, hashlib.sha256).digest()[:8], "big")


def _normal(seed: int, sd: float) -> float:
    draw = float(np.random.Generator(np.random.PCG64(seed)).normal(0.0, 1.0))
    return max(-TRUNCATE, min(TRUNCATE, draw)) * sd


def threshold(seeder: Seeder, key: bytes, s: Static, contributors_xor: int) -> float:
    """The noisy low-count threshold: never below ``k``, seeded by the contributor set, so
    whether a value is shown does not tell whether one given entity is in it."""
    return s.k + abs(
        _normal(seeder.seed(key, "threshold", s.base, contributors_xor), s.threshold_sd)
    )


def _choice(seeder: Seeder, key: bytes, what: str, xor: int, bounds: tuple[int, int]) -> int:
    low, high = bounds
    return low + seeder.seed(key, what, xor) % (high - low + 1)


def flatten(
    top: list[float], total: float, outliers: int, group: int, dominance: Thresholds
) -> tuple[float, float] | None:
    """(amount taken off the total, scale of the largest remaining contributions), or None
    when no flattening leaves the value undominated.

    The ``outliers`` largest contributions (by magnitude) are brought down to the mean of
    the next ``group``; while the flattened values still dominate the total by the
    agreement's (n, k) rule, one more is flattened. As in ACRO, dominance is not
    defined for a total that is not positive; flattening still applies there.
    """
    mags = [abs(v) for v in top]
    while outliers < len(mags):
        following = mags[outliers : outliers + group]
        level = sum(following) / len(following)
        amount = sum(
            (m - level) * (1 if v >= 0 else -1)
            for v, m in zip(top[:outliers], mags[:outliers], strict=True)
        )
        flattened = sorted([level] * outliers + mags[outliers:], reverse=True)
        remaining = total - amount
        topn = sum(flattened[: dominance.nk_n])
        if remaining <= 0 or not nk_dominated(topn, remaining, dominance):
            return amount, level
        outliers += 1
    return None


def make_functions(seeder: Seeder):  # noqa: ANN201 - five closures, typed where used
    def low_effect(static: str, excluded: int, xor: int | None) -> bool:
        """Whether a condition leaves out too few entities of a bucket to be kept."""
        if not excluded or xor is None:
            return True  # it leaves out no one: dropping it changes nothing
        s = _static(static)
        return excluded < threshold(seeder, seeder.key(s.datasets), s, xor)

    def passes(static: str, values: list, kept: list, contributors: int, xor: int) -> bool:
        s = _static(static)
        return contributors >= threshold(seeder, seeder.key(s.datasets), s, xor)

    def adjust(
        static: str,
        values: list,
        kept: list,
        contributors: int | None,
        xor: int | None,
        total: float | None,
        top: list | None,
    ) -> float | None:
        if contributors is None or xor is None or total is None or top is None:
            return None  # nothing contributes
        s = _static(static)
        key = seeder.key(s.datasets)
        if contributors < threshold(seeder, key, s, xor):
            return None
        outliers = _choice(seeder, key, "outliers:" + s.base, xor, s.outliers)
        group = _choice(seeder, key, "group:" + s.base, xor, s.top_group)
        rule = Thresholds(nk_n=s.dominance[0], nk_k=s.dominance[1])
        done = flatten([float(v) for v in top if v is not None], total, outliers, group, rule)
        if done is None:
            return None
        amount, scale = done
        noise = sum(
            _normal(seeder.seed(key, layer, xor), s.noise_sd * scale)
            for layer in _layers(s, values, kept)
        )
        return noise - amount

    def quantile_noise(
        static: str,
        values: list,
        kept: list,
        contributors: int | None,
        xor: int | None,
        spread: float | None,
    ) -> float | None:
        """Noise for a quantile, scaled by the spread of the entities it was taken from
        (per entity either side of the rank, so about their spacing)."""
        if contributors is None or xor is None or spread is None:
            return None
        s = _static(static)
        key = seeder.key(s.datasets)
        if contributors < threshold(seeder, key, s, xor):
            return None
        return sum(
            _normal(seeder.seed(key, layer, xor), s.noise_sd * spread / QUANTILE_SPAN)
            for layer in _layers(s, values, kept)
        )

    def fast_noise(static: str, values: list, kept: list, seed: int, bound: float) -> float:
        """Noise for a value the bound settles (:mod:`.fast`): no flattening needed, scaled
        to the most one entity could contribute, seeded by the contributing rows."""
        s = _static(static)
        key = seeder.key(s.datasets)
        return sum(
            _normal(seeder.seed(key, "fast", layer, seed), s.noise_sd * bound)
            for layer in _layers(s, values, kept)
        )

    return low_effect, passes, adjust, quantile_noise, fast_noise


def _layers(s: Static, values: list, kept: list) -> list[str]:
    """The noise layers of a value: each kept condition, each group key with its value,
    and the column; each once, so that writing a condition or a key twice does not draw
    its layer twice (the difference would show the layer)."""
    layers = [c for c, keep in zip(s.conditions, kept, strict=True) if keep]
    layers += [f"{k}={v}" for k, v in zip(s.keys, values, strict=True)]
    return list(dict.fromkeys([*layers, s.base]))


def register(conn: duckdb.DuckDBPyConnection, keys: Mapping[str, bytes]) -> None:
    """Register the anonymising functions on ``conn`` with the dataset versions' keys.

    ``special`` NULL handling lets a function see NULL inputs and answer NULL: a value
    suppressed, or nothing left out by a condition (the XOR of nothing is NULL)."""
    low_effect, passes, adjust, quantile_noise, fast_noise = make_functions(Seeder(keys))
    text, values, kept, count, xor = "VARCHAR", "VARCHAR[]", "BOOLEAN[]", "BIGINT", "UBIGINT"
    signatures = [
        (LOW_EFFECT_FUNCTION, low_effect, [text, count, xor], "BOOLEAN", "special"),
        (PASS_FUNCTION, passes, [text, values, kept, count, xor], "BOOLEAN", "default"),
        (
            ADJUST_FUNCTION,
            adjust,
            [text, values, kept, count, xor, "DOUBLE", "DOUBLE[]"],
            "DOUBLE",
            "special",
        ),
        (
            QUANTILE_FUNCTION,
            quantile_noise,
            [text, values, kept, count, xor, "DOUBLE"],
            "DOUBLE",
            "special",
        ),  # fmt: skip
        (FAST_FUNCTION, fast_noise, [text, values, kept, xor, "DOUBLE"], "DOUBLE", "default"),
    ]
    for name, function, parameters, answer, nulls in signatures:
        conn.create_function(
            name, function, parameters, answer, null_handling=nulls, side_effects=False
        )

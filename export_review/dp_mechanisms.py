"""The one door to OpenDP: every noisy value the platform releases is drawn here.

Each mechanism is an OpenDP measurement whose noise scale is solved for the
ε it is given, and whose (ε, δ) is then read back from the measurement's own
privacy map (``measurement.map(d_in)``), so what the ledger charges is what
OpenDP proves, not what we computed by hand (Wuxi Art.20 encourages privacy
technology; ARCHITECTURE "Differential privacy, precisely").

- Integer counts get the discrete Laplace mechanism (OpenDP's ``make_laplace``
  on an integer domain samples the discrete Laplace / two-sided geometric).
- Float sums get the (floating-point safe) continuous Laplace mechanism.
- Group keys that are not public are selected by ``make_laplace_threshold``
  (Rogers 2023): only noisy counts above a threshold are released, which
  spends δ.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import opendp.prelude as dp

dp.enable_features("contrib")

_INT = "i64"
#: Upper end of the threshold search; no realistic δ needs a larger one.
_MAX_THRESHOLD = 2**30


@dataclass(frozen=True)
class Mechanism:
    """A measurement with the distance it is applied at and the (ε, δ) OpenDP proves for it."""

    name: str
    measurement: dp.Measurement
    d_in: Any
    epsilon: float
    delta: float

    def __call__(self, value: Any) -> Any:
        return self.measurement(value)


def _solved(name: str, make: Any, d_in: Any, epsilon: float) -> Mechanism:
    """The noise scale for ``epsilon`` at ``d_in``, confirmed by the measurement's own map.

    Laplace's ε is ``d_in / scale``; the scale is nudged up while OpenDP's
    (conservatively rounded) map still exceeds ``epsilon``.
    """
    scale = float(d_in) / epsilon
    measurement = make(scale)
    while measurement.map(d_in) > epsilon:
        scale = math.nextafter(scale * (1 + 1e-12), math.inf)
        measurement = make(scale)
    return Mechanism(name, measurement, d_in, float(measurement.map(d_in)), 0.0)


def count_mechanism(sensitivity: int, epsilon: float, what: str) -> Mechanism:
    """Discrete Laplace noise on a vector of integer counts with L1 ``sensitivity``."""
    domain = dp.vector_domain(dp.atom_domain(T=_INT))
    metric = dp.l1_distance(T=_INT)
    return _solved(
        f"discrete laplace ({what})",
        lambda scale: dp.m.make_laplace(domain, metric, scale),
        sensitivity,
        epsilon,
    )


def sum_mechanism(sensitivity: float, epsilon: float, what: str) -> Mechanism:
    """Laplace noise on a vector of float sums with L1 ``sensitivity``."""
    domain = dp.vector_domain(dp.atom_domain(T=float, nan=False))
    metric = dp.l1_distance(T=float)
    return _solved(
        f"laplace ({what})",
        lambda scale: dp.m.make_laplace(domain, metric, scale),
        float(sensitivity),
        epsilon,
    )


def threshold_mechanism(max_contributions: int, epsilon: float, delta: float) -> Mechanism:
    """Noisy counts per key, keeping only keys above a threshold: partition selection.

    One entity touches at most ``max_contributions`` keys, each by at most that
    many rows (the ``(l0, l1, l∞)`` distance). The scale is solved for ε, then
    the smallest threshold whose δ stays within ``delta``.
    """
    domain = dp.map_domain(dp.atom_domain(T=str), dp.atom_domain(T=_INT))
    metric = dp.l01inf_distance(dp.absolute_distance(T=_INT))
    k = max_contributions
    d_in = (k, k, k)

    def make(scale: float, threshold: int = _MAX_THRESHOLD) -> dp.Measurement:
        return dp.m.make_laplace_threshold(domain, metric, scale, threshold=threshold)

    scale = dp.binary_search(lambda s: make(s).map(d_in)[0] <= epsilon, T=float, bounds=(1e-9, 1e9))
    threshold = dp.binary_search(
        lambda t: make(scale, t).map(d_in)[1] <= delta, T=int, bounds=(k, _MAX_THRESHOLD)
    )
    measurement = make(scale, threshold)
    eps, spent_delta = measurement.map(d_in)
    return Mechanism(
        "discrete laplace threshold (partition selection)",
        measurement,
        d_in,
        float(eps),
        float(spent_delta),
    )


def noisy_counts(mechanism: Mechanism, counts: Sequence[int]) -> list[int]:
    """Release integer counts through a count mechanism."""
    return list(mechanism([int(c) for c in counts]))


def noisy_sums(mechanism: Mechanism, sums: Sequence[float]) -> list[float]:
    """Release float sums through a sum mechanism."""
    return list(mechanism([float(s) for s in sums]))


def selected_counts(mechanism: Mechanism, counts: Mapping[str, int]) -> dict[str, int]:
    """Release the keys (and their noisy counts) that pass the threshold."""
    return dict(mechanism({k: int(v) for k, v in counts.items()}))

"""The patrol time of a part, estimated before any route is solved, its inverse, and k fitted on a real network.

Why an estimate: the partition (``gridgeo build``) draws thousands of candidate grids and cannot solve a route
for each; it needs a formula for "does the daily round of this many households in this area fit the budget".
The build's check (:mod:`gridgeo.patrol.walkcheck`) then solves the real routes of the grids it drew.

The model
---------
A grid worker's day (:mod:`gridgeo.patrol.plan`) is one round from the station (inside the grid: the street point
nearest the grid's inner point, ``start = "station"``) to the households *due* that day and back. For a part of
``n`` households on ``A`` m²:

* **Due visits.** A household of a colour visited every ``f`` days is due on one day in ``f`` (the planner's
  :func:`gridgeo.patrol.stops.due`; in steady state, and the synthetic last visits are staggered so), so the day's
  due visits are ``m = due_share · n`` with ``due_share = Σ_c share_c / f_c`` over the colours (red, orange,
  yellow, and grid points and risk points counted per household), and each takes the mean service minutes
  ``s = Σ_c share_c s_c / f_c / due_share`` (:func:`daily_load`). Unmarked households (frequency 0) are never due.
* **Stops are places.** Due households in one building are one stop of the tour: ``sites = site_share · n`` due
  places, ``site_share <= due_share`` (:func:`daily_load` computes it from the households per building).
* **Tour length** (Beardwood-Halton-Hammersley): the shortest round through ``p`` places spread over ``A`` is
  ``L ≈ k √(p A)``. The round passes the station too: ``p = sites + 1`` (none when nothing is due). ``k`` is
  0.7124 for uniform points in the plane as ``p`` grows; on streets (detours), for a few dozen places (edge
  effects) and for clustered households it is different, so it is fitted on the county's own walking network
  with gridgeo's own solver (:func:`fit_k`).
* **Time** = ``(L + access_m) / v + m · (s + 2 door_m / v)``: walking at ``v``, the service at each due visit,
  the walk from the street to the door and back (``door_m``, the mean; the planner counts it so), and
  ``access_m``, the walk from a start outside the part and back (0 for the station, which is inside).

**The inverse** (:func:`households_within`): in a village of ``ρ`` households per m², a part of ``n`` households
has ``A = n / ρ``, so ``L = k √((site_share n + 1) n / ρ) ≈ k n √(site_share / ρ)`` and the time is, to first
order, linear in ``n``::

    time(n) ≈ access_m / v + n · (k √(site_share / ρ) / v + due_share · (s + 2 door_m / v))   <= budget

(the tour is over the *due* places only, hence ``√site_share``: a grid where one household in fifteen is due walks
a tour through those, not through every door). :func:`households_within` returns the largest whole ``n`` whose
exact :func:`patrol_minutes` fits, found by bisection below the linear bound, so it inverts
:func:`patrol_minutes` exactly.

Assumptions, and what they leave out: households spread over the part at the village's mean density (a part
that holds a dense hamlet and empty hills is over-estimated); the day's due count is its mean (a day of the
binomial's upper tail needs more: for 300 rural households about 22 ± 5 due); no time windows (waits are not
modelled); one worker; the network connects the part's streets locally (a stop reachable only by a long detour,
or off the network, is what the build's route check finds and names, not what ``k`` models).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from gridgeo.errors import UsageError
from gridgeo.patrol import _kfit
from gridgeo.patrol.network import Network
from gridgeo.patrol.stops import DEFAULT_RULES, SYNTHETIC_SHARES, CategoryRule, Stop, VisitRule, effective_rule

log = logging.getLogger(__name__)

__all__ = [
    "BHH_UNIFORM",
    "MAX_DETOUR",
    "DailyLoad",
    "Fit",
    "Sampling",
    "daily_load",
    "daily_load_of",
    "fit_k",
    "households_within",
    "patrol_minutes",
    "tour_length_m",
    "walk_limit",
]

#: The Beardwood-Halton-Hammersley constant of uniform points in the plane (Euclidean, n -> infinity).
BHH_UNIFORM = 0.7124
#: Grid points per household where a county has none drawn (the planner places one per about 50 households).
GRID_POINTS_PER_HOUSEHOLD = 1.0 / 50.0


@dataclass(frozen=True)
class DailyLoad:
    """What one household asks of a day's round, on average (see the module docstring).

    Attributes
    ----------
    due_share
        Due visits per household per day.
    service_min
        Mean minutes at the door per due visit.
    site_share
        Due places (tour stops) per household per day, ``<= due_share``; None: one household per place.
    door_m
        Mean metres from the street to a due visit's door (walked there and back).
    """

    due_share: float
    service_min: float
    site_share: float | None = None
    door_m: float = 0.0

    @property
    def sites(self) -> float:
        """Tour stops per household per day."""
        return self.due_share if self.site_share is None else self.site_share


def daily_load(
    shares: Mapping[str, float] | None = None,
    rules: Mapping[str, VisitRule] | None = None,
    *,
    households_per_site: Sequence[int] | None = None,
    door_m: float = 0.0,
) -> DailyLoad:
    """The mean daily load per household of a county's visit rules.

    Parameters
    ----------
    shares
        Stops per household by rule key: the households' colour shares (``red``, ``orange``, ``yellow``; default
        :data:`~gridgeo.patrol.stops.SYNTHETIC_SHARES`, what the planner draws where a county has no colours, plus
        one grid point per 50 households), and ``grid_point`` / ``risk`` per household where known.
    rules
        The visit rules (default :data:`~gridgeo.patrol.stops.DEFAULT_RULES`; a rules file's ``[patrol]`` through
        :func:`gridgeo.patrol.options_from_rules`).
    households_per_site
        Households of each building (or household point); due households in one building are one stop, so the
        tour's stops per household are ``Σ_b (1 - (1 - d)^{h_b}) / Σ_b h_b`` for a due share ``d``.
    door_m
        Mean metres street -> door.

    Raises
    ------
    UsageError
        A share naming no rule, or a negative share.
    """
    rules = DEFAULT_RULES if rules is None else rules
    shares = {**SYNTHETIC_SHARES, "grid_point": GRID_POINTS_PER_HOUSEHOLD} if shares is None else shares
    due = service = 0.0
    for key, share in shares.items():
        if key not in rules:
            raise UsageError(f"share {key!r} has no visit rule; rules exist for {', '.join(rules)}")
        if not share >= 0:
            raise UsageError(f"share {key!r} must be >= 0, got {share!r}")
        rule = rules[key]
        if rule.frequency_days > 0:
            due += share / rule.frequency_days
            service += share / rule.frequency_days * rule.service_min
    mean_service = service / due if due > 0 else 0.0
    return DailyLoad(due, mean_service, _site_share(due, households_per_site), float(door_m))


def _site_share(due: float, households_per_site: Sequence[int] | None) -> float | None:
    """Due places per household: a building of ``h`` households has a due one with probability ``1 - (1-d)^h``."""
    if households_per_site is None:
        return None
    h = np.asarray(households_per_site, dtype=float)
    h = h[h > 0]
    if not len(h) or due <= 0:
        return 0.0 if due <= 0 else None
    return float(np.sum(1.0 - (1.0 - min(due, 1.0)) ** h) / h.sum())


def daily_load_of(
    stops: Sequence[Stop],
    households: int,
    *,
    rules: Mapping[str, VisitRule] | None = None,
    special: Mapping[str, CategoryRule] | None = None,
    door_m: float = 0.0,
) -> DailyLoad:
    """The mean daily load per household of real stops (a village's or a county's, as
    :meth:`gridgeo.patrol.County.grid_stops` makes them): each stop's own rule (its colour's made more demanding by
    its special-care categories, :func:`~gridgeo.patrol.stops.effective_rule`), places counted once.

    Raises
    ------
    UsageError
        ``households`` not positive, or a stop whose priority has no rule.
    """
    if households <= 0:
        raise UsageError(f"households must be > 0, got {households}")
    rules = DEFAULT_RULES if rules is None else rules
    due = service = 0.0
    per_site: dict[tuple[float, float], float] = {}
    for s in stops:
        if s.priority not in rules:
            raise UsageError(f"stop {s.id} has priority {s.priority!r} without a visit rule")
        r = effective_rule(s, rules, special or {})
        if r.frequency_days <= 0:
            continue
        p = 1.0 / r.frequency_days
        due += p
        service += p * r.service_min
        key = (round(s.x, 1), round(s.y, 1))
        per_site[key] = 1.0 - (1.0 - per_site.get(key, 0.0)) * (1.0 - p)  # P(at least one due at the place)
    return DailyLoad(due / households, service / due if due else 0.0, sum(per_site.values()) / households,
                     float(door_m))


def tour_length_m(places: float, area_m2: float, *, k: float) -> float:
    """``k √(places · area)``: the length of the shortest round through ``places`` spread over ``area_m2`` m²."""
    if places < 0 or area_m2 < 0 or k <= 0:
        raise UsageError(f"places, area must be >= 0 and k > 0, got {places!r}, {area_m2!r}, {k!r}")
    return k * math.sqrt(places * area_m2)


def patrol_minutes(
    households: float,
    area_m2: float,
    *,
    k: float,
    load: DailyLoad,
    speed_kmh: float,
    access_m: float = 0.0,
) -> float:
    """Estimated minutes of the daily round of a part of ``households`` on ``area_m2`` m² (the module's model).

    Raises
    ------
    UsageError
        A negative count or area, a speed or k that is not positive.
    """
    if households < 0:
        raise UsageError(f"households must be >= 0, got {households!r}")
    if not speed_kmh > 0:
        raise UsageError(f"speed must be > 0 km/h, got {speed_kmh!r}")
    mpm = speed_kmh * 1000.0 / 60.0
    sites = load.sites * households
    places = sites + 1.0 if sites > 0 else 0.0  # the station is on the round
    due = load.due_share * households
    return ((tour_length_m(places, area_m2, k=k) + access_m) / mpm
            + due * (load.service_min + 2.0 * load.door_m / mpm))


def households_within(
    budget_min: float,
    *,
    k: float,
    density_per_m2: float,
    service_min: float,
    speed_kmh: float,
    due_share: float,
    site_share: float | None = None,
    door_m: float = 0.0,
    access_m: float = 0.0,
) -> int:
    """The largest household count whose estimated daily round fits ``budget_min`` in a village of that density.

    ``A = n / density``; the largest whole ``n`` with ``patrol_minutes(n, n / density) <= budget_min`` (see the
    module docstring for the linear form). 0 when not even one household fits (the walk to a far part alone, a
    budget below one visit).

    Raises
    ------
    UsageError
        A budget, density, speed or k that is not positive, a due share outside (0, 1].
    """
    if not (budget_min > 0 and density_per_m2 > 0 and speed_kmh > 0 and k > 0):
        raise UsageError("budget, density, speed and k must be > 0, got "
                         f"{budget_min!r}, {density_per_m2!r}, {speed_kmh!r}, {k!r}")
    if not 0 < due_share <= 1:
        raise UsageError(f"due_share must be in (0, 1], got {due_share!r}")
    load = DailyLoad(due_share, service_min, site_share, door_m)
    mpm = speed_kmh * 1000.0 / 60.0
    per_household = (k * math.sqrt(load.sites / density_per_m2) / mpm
                     + due_share * (service_min + 2.0 * door_m / mpm))
    upper = max(0, math.floor((budget_min - access_m / mpm) / per_household) + 1)  # the +1 station only adds

    def fits(n: int) -> bool:
        return n == 0 or patrol_minutes(n, n / density_per_m2, k=k, load=load, speed_kmh=speed_kmh,
                                        access_m=access_m) <= budget_min

    lo, hi = 0, upper  # fits(lo); hi may not
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    return lo


def walk_limit(*, k: float, load: DailyLoad, speed_kmh: float, access_m: float = 0.0) -> Callable[[float, float], int]:
    """``walk(minutes, households per m²) -> households``: :func:`households_within` with the county's ``k`` and
    daily load fixed, the shape the partition's policy asks for (a bound in minutes turned into households).

    The density must be measured as ``k`` was fitted: per m² of the area the households occupy (the convex hull of
    their places, :class:`Sampling` ``area="hull"``, the default), or per m² of the parts' polygons when ``k`` was
    fitted with ``area="window"``.
    """
    def walk(minutes: float, density_per_m2: float) -> int:
        return households_within(minutes, k=k, density_per_m2=density_per_m2, service_min=load.service_min,
                                 speed_kmh=speed_kmh, due_share=load.due_share, site_share=load.site_share,
                                 door_m=load.door_m, access_m=access_m)

    return walk


# ------------------------------------------------------------------------------------------ k on a real network
#: Street length over straight length of a round beyond which a sample's network has a gap (a river without a
#: bridge, a path that joins the rest far away): such rounds are counted, not fitted (the route check names them).
MAX_DETOUR = 3.0


@dataclass(frozen=True)
class Fit:
    """``k`` of ``L = k √(n A)`` fitted by least squares on tours solved on a real network (:func:`fit_k`).

    Attributes
    ----------
    k
        The least-squares slope of the tour lengths ``L`` on ``√(n A)`` (through the origin).
    k_std
        The spread: standard deviation of the samples' own ``L / √(n A)``.
    k_se
        Standard error of ``k``.
    rel_error
        Root mean square of the relative residuals ``(L - k √(n A)) / (k √(n A))``: by how much one part's tour
        typically differs from its estimate.
    area
        What ``A`` is: ``hull`` (the convex hull of the part's places) or ``window`` (the square drawn).
    n_range, area_range
        The stops per sample and the areas (m²) the fitted samples covered, min and max.
    samples
        Samples fitted; ``disconnected``: drawn but not joined by the network (no path); ``detours``: rounds more
        than :data:`MAX_DETOUR` times their straight form, counted and left out.
    door_m
        Mean metres from a stop to its street (the estimate's ``door_m``).
    detour
        Median street length over straight length of the fitted rounds.
    n, area_m2, length_m
        Each fitted sample's stops, area and tour length (metres along the streets).
    """

    k: float
    k_std: float
    k_se: float
    rel_error: float
    area: str
    n_range: tuple[int, int]
    area_range: tuple[float, float]
    samples: int
    disconnected: int
    detours: int
    door_m: float
    detour: float
    n: tuple[int, ...]
    area_m2: tuple[float, ...]
    length_m: tuple[float, ...]

    def summary(self) -> dict[str, object]:
        """The fit's figures as plain JSON values (not the samples)."""
        return {"k": round(self.k, 4), "k_std": round(self.k_std, 4), "k_se": round(self.k_se, 4),
                "rel_error": round(self.rel_error, 4), "area": self.area, "n_range": list(self.n_range),
                "area_range_m2": [round(a) for a in self.area_range], "samples": self.samples,
                "disconnected": self.disconnected, "detours": self.detours, "door_m": round(self.door_m, 1),
                "detour": round(self.detour, 3)}


@dataclass(frozen=True)
class Sampling:
    """How :func:`fit_k` draws its parts: stops per part, window sides (m), which area, the detour cut."""

    n_range: tuple[int, int] = (5, 60)
    side_m: tuple[float, float] = (150.0, 2000.0)
    area: str = "hull"
    max_detour: float = MAX_DETOUR


def fit_k(
    network: Network,
    points: NDArray[np.float64],
    *,
    samples: int = 200,
    seed: int = 0,
    sampling: Sampling | None = None,
) -> Fit:
    """Fit ``k`` of the tour length ``L ≈ k √(n A)`` on ``network`` from real household places.

    Draws ``samples`` random parts of the places (:mod:`gridgeo.patrol._kfit`: all places in a random window,
    ``A`` the convex hull they occupy, ``n`` stops drawn from them), solves each day's tour on the streets with
    gridgeo's own solver, and fits ``k`` by least squares of ``L`` on ``√(n A)``. The same network, places and seed
    give the same fit. A part whose stops the network does not join is counted (``disconnected``), and so is a round
    more than ``max_detour`` times its straight form (``detours``: a gap in the network no ``k`` can model, which
    the build's route check names); neither is fitted.

    Parameters
    ----------
    network
        The walking network (:func:`gridgeo.patrol.network.build_network` / ``load_network``).
    points
        ``(N, 2)`` household or building places in the network's CRS; repeated places count once.
    samples, seed
        How many parts, and the seed of every draw (parts, stops, the solver).
    sampling
        Stops per part, window sides, area (``hull`` or ``window``), detour cut (:class:`Sampling`).

    Raises
    ------
    UsageError
        Fewer distinct places than the stops' minimum, bad ranges, or no sample to fit.
    """
    sp = Sampling() if sampling is None else sampling
    xy = np.unique(np.round(np.asarray(points, dtype=float).reshape(-1, 2), 1), axis=0)
    lo, hi = sp.n_range
    if not (2 <= lo <= hi) or not (0 < sp.side_m[0] <= sp.side_m[1]) or samples < 1 \
            or sp.area not in ("hull", "window"):
        raise UsageError(f"fit_k needs 2 <= n_range[0] <= n_range[1], 0 < side_m[0] <= side_m[1], samples >= 1 "
                         f"and area hull or window; got {sp.n_range}, {sp.side_m}, {samples}, {sp.area!r}")
    if len(xy) < lo:
        raise UsageError(f"fit_k needs at least {lo} distinct places, got {len(xy)}")
    rng = np.random.default_rng(seed)
    got: list[_kfit.Sample] = []
    for i in range(samples):
        part = _kfit.draw(xy, _kfit.Windows((lo, hi), sp.side_m), rng)
        if part is not None:
            got.append(_kfit.solve(network, part, seed=seed + i))
    return _least_squares(got, sp)


def _least_squares(got: Sequence[_kfit.Sample], sp: Sampling) -> Fit:
    """The fit of the samples the network joins without a gap."""
    joined = [s for s in got if math.isfinite(s.length_m)]
    ok = [s for s in joined if s.length_m <= sp.max_detour * s.line_m]
    if not ok:
        raise UsageError("fit_k: no part held enough places joined by the network; widen side_m or lower n_range")
    n = np.array([s.n for s in ok], dtype=float)
    a = np.array([s.hull_m2 if sp.area == "hull" else s.window_m2 for s in ok])
    L = np.array([s.length_m for s in ok])
    x = np.sqrt(n * a)
    k = float(x @ L / (x @ x))
    resid = L - k * x
    se = float(math.sqrt(resid @ resid / max(1, len(x) - 1) / (x @ x)))
    rel = float(np.sqrt(np.mean((resid / (k * x)) ** 2)))
    detour = float(np.median([s.length_m / s.line_m for s in ok if s.line_m > 0] or [1.0]))
    return Fit(k, float(np.std(L / x)), se, rel, sp.area, (int(n.min()), int(n.max())),
               (float(a.min()), float(a.max())), len(ok), len(got) - len(joined), len(joined) - len(ok),
               float(np.mean([s.door_m for s in ok])), detour,
               tuple(int(v) for v in n), tuple(float(v) for v in a), tuple(float(v) for v in L))

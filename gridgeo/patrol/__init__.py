"""Patrol: a grid worker's daily round on the street network.

``network`` builds walking or driving networks and stop-to-stop paths; ``plan`` turns households,
grid points and risk points into due visits and plans each day within the budget on the
orienteering solver (:mod:`gridgeo.routing`), and writes RFC 7946 GeoJSON and GPX.

May import: :mod:`gridgeo.data`, :mod:`gridgeo.routing`, :mod:`gridgeo.errors`.
"""

from gridgeo.patrol.plan import (
    CST,
    DEFAULT_RULES,
    SYNTHETIC_SHARES,
    County,
    DayPlan,
    GridStops,
    Missed,
    PatrolProblem,
    Stop,
    Visit,
    VisitRule,
    check_budget,
    parse_budget,
    period_summary,
    plan_day,
    plan_period,
    prepare,
    route_geojson,
    route_gpx,
    write_geojson,
    write_gpx,
)

__all__ = [
    "CST",
    "DEFAULT_RULES",
    "SYNTHETIC_SHARES",
    "County",
    "DayPlan",
    "GridStops",
    "Missed",
    "PatrolProblem",
    "Stop",
    "Visit",
    "VisitRule",
    "check_budget",
    "parse_budget",
    "period_summary",
    "plan_day",
    "plan_period",
    "prepare",
    "route_geojson",
    "route_gpx",
    "write_geojson",
    "write_gpx",
]

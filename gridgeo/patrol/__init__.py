"""Patrol: a grid worker's daily round on the street network.

Modules, by job:

``stops``
    Visit rules per priority (:data:`DEFAULT_RULES`), :class:`Stop`, :class:`GridStops`, when a visit is due.
``county``
    :class:`County`: a county file opened for planning (grids, households, buildings, grid and risk
    points, the network) and :meth:`County.grid_stops`, one grid's stops (synthetic where the data has none).
``network``
    Walking or driving networks from OSM or road layers, snapping, stop-to-stop paths.
``options``
    :class:`PatrolOptions`, the defaults of a plan in one place (budget, speed, visit rules per colour and
    special-care category, campaign days, start and end places), :func:`parse_budget`, and
    :func:`options_from_rules`, the options of a rules file's ``[patrol]`` section.
``plan``
    :func:`prepare`, :func:`plan_day`, :func:`plan_period`, :func:`check_budget` on the orienteering
    solver (:mod:`gridgeo.routing`), :func:`period_summary`, and :func:`plan_grid`, the one planning
    sequence of ``gridgeo patrol`` and the ``/patrol/{grid}`` service.
``itinerary``
    The day's plan as a list people read: each stop's entry (name, address where known, priority, arrival,
    what is due) and its GPX waypoint name and description.
``windows``
    Time windows on the solver's rounds: waiting, checking, repair by removal and insertion.
``team``
    :func:`team.plan_team`: a grid's workers, one round each, together covering the day (team orienteering).
``campaign``
    :func:`plan_campaign`: every household of a grid once over N days (扫楼敲门), team orienteering.
``export``
    RFC 7946 GeoJSON and GPX 1.1 of the routes, door to door.

May import: :mod:`gridgeo.data`, :mod:`gridgeo.routing`, :mod:`gridgeo.errors`, :mod:`gridgeo._geom`.
"""

from gridgeo.patrol.campaign import plan_campaign
from gridgeo.patrol.county import County
from gridgeo.patrol.export import route_geojson, route_gpx, write_geojson, write_gpx
from gridgeo.patrol.options import SPEED_KMH, PatrolOptions, options_from_rules, parse_budget
from gridgeo.patrol.plan import (
    DayPlan,
    Missed,
    OffNetworkLeg,
    PatrolProblem,
    Visit,
    check_budget,
    period_summary,
    plan_day,
    plan_grid,
    plan_period,
    prepare,
)
from gridgeo.patrol.stops import (
    CST,
    DEFAULT_RULES,
    RULE_KEYS,
    SYNTHETIC_SHARES,
    CategoryRule,
    GridStops,
    Stop,
    VisitRule,
    effective_rule,
)

__all__ = [
    "CST",
    "DEFAULT_RULES",
    "RULE_KEYS",
    "SPEED_KMH",
    "SYNTHETIC_SHARES",
    "CategoryRule",
    "County",
    "DayPlan",
    "GridStops",
    "Missed",
    "OffNetworkLeg",
    "PatrolOptions",
    "PatrolProblem",
    "Stop",
    "Visit",
    "VisitRule",
    "check_budget",
    "effective_rule",
    "options_from_rules",
    "parse_budget",
    "period_summary",
    "plan_campaign",
    "plan_day",
    "plan_grid",
    "plan_period",
    "prepare",
    "route_geojson",
    "route_gpx",
    "write_geojson",
    "write_gpx",
]

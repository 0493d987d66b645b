"""The build's walk-time check (issue 14 item 5): every grid's day planned on the county's own streets.

``[grids] walk_check = true`` (with a ``[patrol] budget``) makes it the last stage of ``gridgeo build``: the
county about to be written is opened for patrol planning in memory (:class:`gridgeo.patrol.County` on the built
layers, the network from its ``roads``), each grid's and exclusive grid's due visits of the day are planned with
the route solver as ``gridgeo patrol --all`` plans them, and the grids whose visits do not fit are named with why
(:mod:`gridgeo.patrol.walkcheck`). The output gets a ``walk_check`` table (one row per grid) and the report a
``walk_check`` entry. The day is the build's own (today, UTC+8), written in both: where the households carry real
last visits, what is due depends on it (synthetic stops are the same every day).
``gridgeo patrol COUNTY.gpkg --check-budget --date D`` runs the same check on any built county.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import pandas as pd

from gridgeo.county.rules import CountyRules
from gridgeo.errors import InputError, UsageError
from gridgeo.patrol import CST, County, options_from_rules
from gridgeo.patrol.network import Network
from gridgeo.patrol.walkcheck import check_walk

__all__ = ["check_walk_rules", "walk_check"]


def check_walk_rules(rules: CountyRules) -> None:
    """Refuse ``walk_check`` without a ``[patrol] budget`` before anything is built.

    Raises
    ------
    UsageError
        Naming the rules file and what to add.
    """
    if rules.walk_check and "budget_min" not in rules.patrol:
        raise UsageError(f"{rules.source}: [grids] walk_check = true needs the budget it checks: "
                         "[patrol] budget = \"4h\" (or minutes)")


def walk_check(layers: Mapping[str, pd.DataFrame], rules: CountyRules, *, day: dt.date | None = None,
               network: Network | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The ``walk_check`` table and the report's entry for the built ``layers`` under ``rules``' ``[patrol]``;
    ``network``: the county's walking network when the build has it already (else made from ``roads``).

    Raises
    ------
    InputError
        The build has no ``roads`` to walk.
    """
    if "roads" not in layers:
        raise InputError("[grids] walk_check: the county has no roads layer to plan the rounds on",
                         path=rules.source)
    county = County(rules.source or "build", frames=layers, network=network)
    options = options_from_rules(rules.patrol)
    res = check_walk(county, day=day or dt.datetime.now(CST).date(), options=options)
    return res.table(), res.summary()

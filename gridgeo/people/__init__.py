"""People and the households they look after: the roster of responsible people on every level, and
pairing party members and villagers' representatives with households (联户/结对).

Modules, by job:

``roster``
    A roster (CSV, XLSX, any table) read (:func:`roster.read_roster`) and resolved onto a build's units
    (:func:`roster.resolve_roster`): the build's ``people`` table, carried over retired codes on a
    rebuild (:func:`roster.build_people`).
``pairing``
    :class:`Pairing` (inputs checked in the constructor), :meth:`Pairing.solve` -> :class:`PairingResult`
    (pairs, load per member, unpaired households with their reasons, a summary; written atomically),
    :class:`PairingOptions` (the defaults in one place).
``_pair_input``
    Checking the households layer, the member roster and the existing pairs (errors name the file and
    the row), :func:`read_table`, the one place a roster file is read, and :func:`county_grids`.
``_pair_distance``
    Household-to-member distances per scope: walking distance on a street network
    (:mod:`gridgeo.patrol.network`), else straight-line distance in a metric CRS.
``_pair_solve``
    One scope's exact min-cost assignment on capacity slots (balanced capacities, existing pairs kept).
``_pair_sparse``
    Large scopes: a start on each household's nearest members, then negative cycles cancelled to the optimum.
``_pair_output``
    The result's tables, and writing them atomically (GeoPackage layers or CSV files).

May import: :mod:`gridgeo.data`, :mod:`gridgeo.patrol` (the street network), :mod:`gridgeo.errors`,
:mod:`gridgeo._geom`.
"""

from gridgeo.people._pair_input import county_grids, read_table
from gridgeo.people.pairing import REASONS, SCOPES, Pairing, PairingOptions, PairingResult

__all__ = ["REASONS", "SCOPES", "Pairing", "PairingOptions", "PairingResult", "county_grids", "read_table"]

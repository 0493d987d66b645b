"""gridgeo: grid partitioning and patrol planning for grassroots grid governance (网格化管理).

One package per job (the README's "Layout" has the tree and where new work goes):

- :mod:`gridgeo.data` - data in: read, check and repair boundary files, OSM, the neighbour graph;
- :mod:`gridgeo.partition` - the partition engine (``Model(...).solve(seed=...)``) and its hard rules;
- :mod:`gridgeo.county` - the county pipeline (``gridgeo build``): rules file, blocks, villages, codes;
- :mod:`gridgeo.patrol` - patrol plans on the street network, on :mod:`gridgeo.routing`, the route solver;
- :mod:`gridgeo.synth` - the generated county; :mod:`gridgeo.cli` - the ``gridgeo`` command;
- :mod:`gridgeo.service` - the Flask app (the repository's ``service/`` folder);
- :mod:`gridgeo.errors` - the one error hierarchy and ``ERROR_TABLE`` (exit code and HTTP status).

This module only re-exports the errors.
"""

from __future__ import annotations

import logging

from gridgeo.errors import (
    CRSError,
    FileFormatError,
    GeometryError,
    GridgeoError,
    InfeasibleError,
    InputError,
    LayerNotFoundError,
    NotFoundError,
    SchemaError,
    UsageError,
)

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "CRSError",
    "FileFormatError",
    "GeometryError",
    "GridgeoError",
    "InfeasibleError",
    "InputError",
    "LayerNotFoundError",
    "NotFoundError",
    "SchemaError",
    "UsageError",
    "__version__",
]

"""gridgeo: grid partitioning and patrol planning for grassroots grid governance (网格化管理)."""

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

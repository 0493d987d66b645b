"""The writable store beside a built county: users, visits, household status, tracks, reports, the audit trail.

Two backends behind one interface (:class:`~gridgeo.store.base.Store`): the
county GeoPackage itself (:mod:`.sqlite`, the default) and PostgreSQL +
PostGIS (:mod:`.postgres`) for many users. :func:`open_store` picks one by
the target: a ``postgresql://`` URL, else a file path.

May import: :mod:`gridgeo.data`, :mod:`gridgeo.errors`.
"""

from __future__ import annotations

from pathlib import Path

from .access import ROLES, Principal
from .base import Placed, Store, User, Visit
from .locks import Locks  # its table joins the schema every store is made with
from .proposals import Proposals  # so does this
from .reports import Reports  # so do these
from .versions import Versions  # and these

__all__ = ["ROLES", "Locks", "Placed", "Principal", "Proposals", "Reports", "Store", "User", "Versions", "Visit",
           "is_url", "open_store"]


def is_url(target: str | Path) -> bool:
    """Whether ``target`` names a PostgreSQL database rather than a file."""
    return str(target).startswith(("postgresql://", "postgres://"))


def open_store(target: str | Path, *, create: bool = True) -> Store:
    """The store at ``target``: a ``postgresql://`` URL or a county GeoPackage.

    ``create``: make its tables if missing (``gridgeo users add``); False leaves a store without
    tables untouched (``gridgeo serve`` of a county nobody has added a user to).
    """
    if is_url(target):
        from .postgres import PostgresStore

        return PostgresStore(str(target), create=create)
    from .sqlite import SQLiteStore

    return SQLiteStore(target, create=create)

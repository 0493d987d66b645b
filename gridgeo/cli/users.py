"""``gridgeo users add|list|revoke STORE ...``: the accounts of a served county.

STORE is the county GeoPackage (its embedded store) or a ``postgresql://`` URL.
``add`` prints the new token once, alone on the last line of stdout, so a script
can take it with ``tail -n 1``; only its hash is kept, so a lost token is
revoked and a new user added. A store with at least one user is served with
access control on (:mod:`gridgeo.service.auth`).
"""

from __future__ import annotations

import argparse
import getpass
import logging
import socket
import sys
from typing import Any

from gridgeo.errors import UsageError
from gridgeo.store.access import ROLES

log = logging.getLogger("gridgeo")

#: the level layers a scope may name a unit of
_SCOPE_LAYERS = ("areas", "townships", "blocks", "villages", "grids", "points", "exclusive", "micro_grids", "lanes")


def register(sub: Any) -> None:
    """Add the ``users`` subcommand and its three actions."""
    p = sub.add_parser("users", help="add, list or revoke the users of a served county (tokens, roles, scopes)")
    acts = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = acts.add_parser("add", help="create a user and print its bearer token once (last line)")
    add.add_argument("store", metavar="STORE", help="county GeoPackage or postgresql:// URL")
    add.add_argument("name", help="the user's name (unique in the store)")
    add.add_argument("--role", required=True, choices=list(ROLES),
                     help="admin (everything), gis (geometry, rosters), worker (visits, household status in "
                          "scope), viewer (read)")
    add.add_argument("--scope", metavar="CODE", help="a unit code (grid, village, township...) the user is limited "
                     "to; default: the whole county")
    ls = acts.add_parser("list", help="list the users (never their tokens)")
    ls.add_argument("store", metavar="STORE")
    rv = acts.add_parser("revoke", help="revoke a user's token (kept for the audit trail)")
    rv.add_argument("store", metavar="STORE")
    rv.add_argument("name")
    p.set_defaults(func=run)


def _actor() -> str:
    """How the audit trail names a command-line write: the OS user on this host."""
    try:
        who = getpass.getuser()
    except Exception:  # no login name (a container without one)
        who = "unknown"
    return f"cli:{who}@{socket.gethostname()}"


def _check_scope(store: str, scope: str) -> None:
    """A scope must be a unit code of the county: in the GeoPackage's levels, or the loaded database's."""
    from pathlib import Path

    import pyogrio

    from gridgeo.store import is_url

    if is_url(store):
        from gridgeo.store.postgis import has_unit
        from gridgeo.store.postgres import redact

        found = has_unit(store, scope, _SCOPE_LAYERS)
        if found is None:
            log.warning("%s holds no county layers (a store only): --scope %s not checked against the county",
                        redact(store), scope)
            return
        if not found:
            raise UsageError(f"{redact(store)}: --scope {scope!r} is not the code of any unit of this county")
        return
    if not Path(store).is_file():
        return
    layers = {str(n) for n, g in pyogrio.list_layers(store) if g is not None}
    for layer in _SCOPE_LAYERS:
        if layer in layers:
            codes = pyogrio.read_dataframe(store, layer=layer, columns=["code"], read_geometry=False)["code"]
            if scope in set(codes.astype(str)):
                return
    raise UsageError(f"{store}: --scope {scope!r} is not the code of any unit of this county")


def run(args: argparse.Namespace) -> int:
    """Carry out the action; tokens go to stdout, everything else to the log."""
    from gridgeo.store import open_store

    if args.action == "add" and args.scope:
        _check_scope(args.store, args.scope)
    store = open_store(args.store)
    try:
        if args.action == "add":
            user, token = store.add_user(args.name, role=args.role, scope=args.scope, actor=_actor())
            log.info("added user %s (role %s, scope %s); its token follows, shown only now", user.name, user.role,
                     user.scope or "the whole county")
            sys.stdout.write(token + "\n")
        elif args.action == "list":
            sys.stdout.write("name\trole\tscope\tcreated\trevoked\n")
            for u in store.users():
                sys.stdout.write(f"{u.name}\t{u.role}\t{u.scope or '-'}\t{u.created}\t{u.revoked or '-'}\n")
        else:
            user = store.revoke_user(args.name, actor=_actor())
            log.info("revoked user %s (%s)", user.name, user.revoked)
    finally:
        store.close()
    return 0

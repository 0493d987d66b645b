"""The ``gridgeo`` command: one parser, every subcommand registered the same way.

May import anything in :mod:`gridgeo` and :mod:`gridgeo.service`; it parses arguments, calls the
library and turns errors into exit codes (:data:`gridgeo.errors.ERROR_TABLE`).
"""

from gridgeo.cli.main import main

__all__ = ["main"]

"""One error hierarchy for the library, the CLI and the HTTP service.

Every error gridgeo raises on purpose derives from :class:`GridgeoError`.
:data:`ERROR_TABLE` is the single place that maps an error class to a CLI
exit code and an HTTP status, so the command line and the service never
disagree about what a failure means.
"""

from __future__ import annotations

import signal
from pathlib import Path


class GridgeoError(Exception):
    """Base class: a failure gridgeo can explain in one line.

    Parameters
    ----------
    message
        What is wrong, in words a GIS engineer can act on.
    path
        The file concerned, when there is one; it is named in ``str(err)``.
    feature
        The feature (id or row) concerned, when there is one.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        feature: object | None = None,
    ) -> None:
        self.message = message
        self.path = None if path is None else str(path)
        self.feature = feature
        super().__init__(str(self))

    def __str__(self) -> str:
        where = []
        if self.path is not None:
            where.append(self.path)
        if self.feature is not None:
            where.append(f"feature {self.feature}")
        prefix = ": ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message


class UsageError(GridgeoError):
    """The caller asked for something that makes no sense (bad option, bad value)."""


class InputError(GridgeoError):
    """Input data cannot be used as given."""


class FileFormatError(InputError):
    """A file is missing, truncated, malformed or of an unknown format."""


class LayerNotFoundError(InputError):
    """A named layer does not exist in a multi-layer file."""


class CRSError(InputError):
    """The coordinate reference system is missing, unknown or contradicts the coordinates."""


class GeometryError(InputError):
    """A geometry is unusable and cannot be repaired."""


class SchemaError(InputError):
    """A required column is missing or holds values of the wrong kind."""


class InfeasibleError(GridgeoError):
    """The hard rules cannot all be met; the best effort carries the violations."""


class NotFoundError(GridgeoError):
    """A requested object (grid, collection, feature) does not exist."""


class ServiceUnavailableError(GridgeoError):
    """Something the running service depends on (the county file it serves) can no longer be used.

    Not the client's fault, so not a 4xx: the request may work once the
    operator has put the file back and restarted the service (HTTP 503).
    ``retry_after``: seconds after which it may well work (an index still
    being built), sent as ``Retry-After``; None when no one can say.
    """

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class OutputError(GridgeoError):
    """The output cannot be written: a directory that is not writable, a full disk.

    Not the input's fault and not a bug; the message names the output and
    what to fix. Over HTTP it is the server's trouble, not the client's (503).
    """


class SchedulerError(GridgeoError):
    """The Dask scheduler a build was sent to (``--scheduler``) cannot be used: unreachable, without
    workers, workers without gridgeo, or a worker lost mid-build.

    Not bad input and not a usage error: the same build may work once the
    cluster is back (exit 1, HTTP 503).
    """


class AuthenticationError(GridgeoError):
    """No credentials where the store has accounts, or a token that is unknown or revoked (HTTP 401)."""


class ForbiddenError(GridgeoError):
    """A known user whose role or scope does not allow the request (HTTP 403)."""


class TooManyRequestsError(GridgeoError):
    """Too many failed sign-ins from one address in a short time: slowed down, not locked out (HTTP 429).

    ``retry_after`` is the seconds to wait, sent as ``Retry-After``.
    """

    def __init__(self, message: str, *, retry_after: int) -> None:
        self.retry_after = int(retry_after)
        super().__init__(message)


class ConflictError(GridgeoError):
    """The request contradicts the stored state: a user that already exists, a report already closed (409)."""


class PreconditionFailedError(ConflictError):
    """An edit made against another state than the stored one: a stale ``If-Match`` (412)."""


class PreconditionRequiredError(UsageError):
    """An edit sent without the ``If-Match`` of the state it was made from (428)."""


class PayloadTooLargeError(UsageError):
    """A request body above what the route takes (a photo over its size cap): HTTP 413."""


class UnsupportedMediaTypeError(UsageError):
    """A body that is not of a type the route takes (a "photo" that is no JPEG, PNG or WebP): HTTP 415."""


class StoreError(GridgeoError):
    """The writable store (SQLite or PostgreSQL) cannot be opened or written: locked, gone, unreachable.

    Not the client's fault (HTTP 503); the message names the store, never its password.
    """


#: error class -> (CLI exit code, HTTP status). Looked up along the MRO.
ERROR_TABLE: dict[type[GridgeoError], tuple[int, int]] = {
    UsageError: (2, 400),
    FileFormatError: (1, 422),
    LayerNotFoundError: (1, 404),
    CRSError: (1, 422),
    GeometryError: (1, 422),
    SchemaError: (1, 422),
    InputError: (1, 422),
    InfeasibleError: (3, 409),
    NotFoundError: (1, 404),
    ServiceUnavailableError: (1, 503),
    OutputError: (1, 503),
    SchedulerError: (1, 503),
    AuthenticationError: (2, 401),
    ForbiddenError: (2, 403),
    TooManyRequestsError: (1, 429),
    PreconditionFailedError: (1, 412),
    PreconditionRequiredError: (2, 428),
    ConflictError: (1, 409),
    StoreError: (1, 503),
    PayloadTooLargeError: (2, 413),
    UnsupportedMediaTypeError: (2, 415),
    GridgeoError: (1, 500),
}


def exit_code(err: BaseException) -> int:
    """Return the CLI exit code for ``err`` (1 for anything unexpected)."""
    for cls in type(err).__mro__:
        if cls in ERROR_TABLE:
            return ERROR_TABLE[cls][0]
    return 1


def http_status(err: BaseException) -> int:
    """Return the HTTP status for ``err`` (500 for anything unexpected)."""
    for cls in type(err).__mro__:
        if cls in ERROR_TABLE:
            return ERROR_TABLE[cls][1]
    return 500


# --------------------------------------------------------------------------------------
# interrupts
# --------------------------------------------------------------------------------------
class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM, raised in the main thread; a ``KeyboardInterrupt`` so every cleanup treats it as one.

    Raised by the CLI's signal handler (:mod:`gridgeo.cli.main`), and again by
    :func:`raise_pending` where a C extension swallowed the first one.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


#: the signal received and not yet acted on (the CLI's handler notes it before it raises)
_pending: list[int] = []


def note_interrupt(signum: int | None) -> None:
    """Remember that ``signum`` arrived (None: forget it, as a new command starts)."""
    _pending[:] = [] if signum is None else [signum]


def raise_pending() -> None:
    """Raise :class:`Interrupted` if a signal arrived since the command started; else nothing.

    Why: the handler raises wherever the main thread is, and compiled code
    may swallow the exception -- pyogrio's reader did, under load: the build
    it interrupted ran on and wrote its output, exit 0. The places that must
    not go on after an interrupt (each layer read and written, each build
    stage, the move of an output into place) call this, so an interrupt is
    acted on there at the latest.
    """
    if _pending:
        raise Interrupted(_pending[0])

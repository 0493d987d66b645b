"""The ``gridgeo`` command line: one parser, every subcommand registered the same way.

Each subcommand is a module of this package with ``register(subparsers)``, which adds its parser and
sets ``func=run``, and ``run(args) -> int``; :data:`COMMANDS` lists them in the order ``--help``
shows. A new command is a new module and one line here.

Exit codes: 0 success (data usable), 1 bad or unusable input (the message names
the file, the feature and the problem), 2 usage error, 3 hard rules that cannot
all be met (:data:`gridgeo.errors.ERROR_TABLE`; also ``gridgeo audit`` on a layer
that breaks them). Errors are one line on stderr, never a traceback (``-v`` logs more).

Interrupts: SIGINT (Ctrl-C) and SIGTERM both raise :class:`Interrupted`, so a
terminated run takes the same way out as Ctrl-C: queued villages cancelled,
worker processes ended (:mod:`gridgeo.county._pool`), the temporary output
removed (:func:`gridgeo.data.io.atomic_path`), an existing output untouched,
one line ``gridgeo: interrupted; nothing written (OUTPUT unchanged)``, exit
128 + the signal (130 for SIGINT, 143 for SIGTERM).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from types import FrameType, ModuleType

from gridgeo import __version__
from gridgeo.cli import (
    adjacency,
    audit,
    blocks,
    build,
    check,
    convert,
    diff,
    export,
    load,
    merge,
    pair,
    patrol,
    reports,
    serve,
    synth,
    users,
)
from gridgeo.errors import GridgeoError, Interrupted, UsageError, exit_code, note_interrupt, raise_pending

log = logging.getLogger("gridgeo")

#: The subcommands, in the order ``gridgeo --help`` lists them.
COMMANDS: tuple[ModuleType, ...] = (check, adjacency, synth, convert, blocks, patrol, build, audit, diff, export, merge,
                                    pair, load, serve, users, reports)


#: the signals that interrupt a run (SIGTERM: what `kill`, systemd and container runtimes send)
INTERRUPTS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    """The handler: the first signal raises; later ones while cleaning up are ignored so the cleanup finishes.

    It is noted first (:func:`gridgeo.errors.note_interrupt`): where compiled
    code swallows the exception, the next checkpoint raises it again.
    """
    for sig in INTERRUPTS:
        signal.signal(sig, _already_stopping)
    note_interrupt(signum)
    raise Interrupted(signum)


def _already_stopping(signum: int, frame: FrameType | None) -> None:
    log.warning("%s: already stopping (SIGKILL ends at once, leaving a temporary file for the next run)",
                signal.Signals(signum).name)


@contextlib.contextmanager
def _interrupts() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`Interrupted` while the command runs; the old handlers come back after.

    Only in the main thread (Python allows handlers there only), so ``main()``
    called from a thread (tests, the service) keeps the process's handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {sig: signal.getsignal(sig) for sig in INTERRUPTS}
    note_interrupt(None)
    for sig in INTERRUPTS:
        signal.signal(sig, _raise_interrupted)
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def _interrupted(args: argparse.Namespace, exc: KeyboardInterrupt) -> int:
    """The one line an interrupted run prints, and its exit code (128 + the signal); the interrupt is settled."""
    note_interrupt(None)
    out = getattr(args, "output", None)
    if out and getattr(args, "written", False):  # the command had moved its output into place already
        print(f"gridgeo: interrupted after writing {out}", file=sys.stderr)
    else:
        print(f"gridgeo: interrupted; nothing written ({out} unchanged)" if out else "gridgeo: interrupted",
              file=sys.stderr)
    return 128 + int(getattr(exc, "signum", signal.SIGINT))


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so usage errors share one path."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    """The whole parser: global options, then each of :data:`COMMANDS` registered with ``-v``/``-q``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                        help="more logging (-vv for debug)")
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="errors only")
    parser = _Parser(prog="gridgeo", parents=[common],
                     description="Grid partitioning and patrol planning from boundary data.")
    parser.add_argument("--version", action="version", version=f"gridgeo {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    _add = sub.add_parser

    def add_parser(name: str, **kw: object) -> argparse.ArgumentParser:
        return _add(name, parents=[common], **kw)  # type: ignore[arg-type,list-item]

    sub.add_parser = add_parser  # type: ignore[method-assign,assignment]
    for command in COMMANDS:
        command.register(sub)
    return parser


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def _dispatch(args: argparse.Namespace) -> int:
    """Run the subcommand; every failure becomes one line on stderr and its exit code."""
    try:
        return int(args.func(args))
    except BrokenPipeError:  # e.g. piped into `head`
        return 0
    except GridgeoError as err:
        print(f"gridgeo: error: {err}", file=sys.stderr)
        return exit_code(err)
    except KeyboardInterrupt as exc:
        return _interrupted(args, exc)
    except Exception as err:  # a bug, not bad input: say so in one line, details with -v
        log.debug("internal error", exc_info=True)
        where = "".join(f" ({note})" for note in getattr(err, "__notes__", ()))  # e.g. the village it failed in
        print(f"gridgeo: internal error: {type(err).__name__}: {err}{where} (run with -vv for a traceback)",
              file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``) and run the subcommand; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as err:
        print(f"gridgeo: error: {err}", file=sys.stderr)
        return 2
    _setup_logging(getattr(args, "verbose", 0), getattr(args, "quiet", False))
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        with _interrupts():
            code = _dispatch(args)
            raise_pending()  # a signal that compiled code swallowed and no checkpoint met: still an interrupt
            return code
    except KeyboardInterrupt as exc:  # a signal after the command returned, before the handlers were restored
        return _interrupted(args, exc)

"""Server file paths out of what a client reads: the ``detail`` of a problem document.

Why: a gridgeo error names its file (``path=``, so a GIS engineer at the
command line knows which one), and an unexpected error's text often holds
one too (``[Errno 2] No such file or directory: '/srv/...'``). Over HTTP that
tells anyone where the county lives on the server, its user names and its
directory layout. The client gets the file's base name instead (``county.gpkg``:
still enough to say which file), the server's log the full message.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

#: an absolute path of two or more parts, POSIX (not the path of a URL: no ``:``, ``/`` or a word before it)
#: or Windows (``C:\\...``); one part (``POST /locate``) is left alone
_ABSOLUTE = re.compile(r"(?<![\w:/.~%-])(?:/[^\s/'\"<>|;,()\[\]{}]+){2,}/?|(?<!\w)[A-Za-z]:\\[^\s'\"<>|;,()]+")


def base_name(path: str) -> str:
    """The last part of ``path`` (POSIX or Windows separators), or ``…`` for a bare root."""
    parts = [p for p in re.split(r"[/\\]", path) if p]
    return parts[-1] if parts else "…"


def redact(text: str, known: Iterable[str | os.PathLike[str] | None] = ()) -> str:
    """``text`` with each of the ``known`` paths (as given, absolute or resolved) and any other absolute path
    replaced by its base name.

    ``known`` are the files the service was set up with (``COUNTY``,
    ``NETWORK``, ``RULES``) and the error's own ``path``: they may be relative
    (``out/county.gpkg``) and still name the server's directories.
    """
    variants: set[str] = set()
    for p in known:
        if p:
            s = os.fspath(p)
            variants.update({s, os.path.abspath(s), os.path.realpath(s)})
    for v in sorted(variants, key=len, reverse=True):  # longest first: /srv/x/out/a.gpkg before out/a.gpkg
        if os.sep in v or "/" in v:
            text = text.replace(v, base_name(v))
    return _ABSOLUTE.sub(lambda m: base_name(m.group(0)), text)

"""Hierarchical codes: reading order, numbering, and keeping codes across rebuilds.

Why a module of its own: a code is what a grid worker, a database and a
paper register share. The county's convention (DESIGN.md) is the village
code (the 12-digit statistical division code where known) + a 2-digit grid
number + a 3-digit point number; exclusive grids take ``Z`` + 2 digits in
place of the grid number. Parts are numbered west to east, north to south.

Reading order
-------------
A part's centroid (in a metric CRS) falls in a horizontal band
``floor(-y / h)`` where ``h`` is the square root of the median part area of
the set being numbered -- about one part high, so a few metres of northing
never flip two parts of one row -- and parts are read band by band from the
north, west to east within a band (:func:`gridgeo._geom.reading_order`, the
one copy of that rule). The same rule numbers blocks.

Stability
---------
Codes never depend on anything outside the set being numbered, so a village
whose inputs did not change gets the same codes when the county is rebuilt.
When a previous build is given, a new part that covers most of an old part
(intersection over union at least ``min_iou``, matched one to one, best
first) keeps the old code, and only new parts take fresh numbers after the
highest number in use.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely
from numpy.typing import ArrayLike

from gridgeo._geom import reading_order
from gridgeo.errors import UsageError

__all__ = ["match_previous", "number"]


def number(
    prefix: str,
    x: ArrayLike,
    y: ArrayLike,
    area: ArrayLike,
    *,
    width: int,
    letter: str = "",
    keep: Sequence[str | None] | None = None,
) -> list[str]:
    """Codes ``prefix + letter + NN`` for parts, in reading order, keeping given codes.

    Parameters
    ----------
    prefix
        The parent's code (a village code for grids, a grid code for points).
    x, y, area
        Part centroids and areas in a metric CRS.
    width
        Digits of the sequence number (2 for grids, 3 for points); widened
        when a parent has more parts than the width can number, which is
        logged by the caller's report rather than silently wrapping.
    letter
        ``"Z"`` for exclusive grids.
    keep
        Per part, a code to keep (from :func:`match_previous`) or ``None``.
        Kept codes must start with ``prefix + letter``.

    Returns
    -------
    list of str
        One code per part, in the parts' own order.
    """
    n = len(np.asarray(x))
    head = prefix + letter
    out: list[str | None] = list(keep) if keep is not None else [None] * n
    if len(out) != n:
        raise UsageError(f"keep has {len(out)} codes for {n} parts")
    used: set[str] = set()
    for i, c in enumerate(out):
        if c is not None and (not c.startswith(head) or c in used or not c[len(head):].isdigit()):
            out[i] = None  # a code of another parent, or taken twice: number it afresh
        elif c is not None:
            used.add(c)
    need = n if keep is None else sum(c is None for c in out)
    top = max((int(c[len(head):]) for c in used), default=0)
    w = max(width, len(str(top + need)))
    nxt = top + 1
    for i in reading_order(x, y, area).tolist():
        if out[i] is None:
            out[i] = f"{head}{nxt:0{w}d}"
            nxt += 1
    return [str(c) for c in out]


def match_previous(
    new: ArrayLike, old: ArrayLike, old_codes: Sequence[str], *, min_iou: float = 0.5
) -> list[str | None]:
    """For each new part, the code of the old part it continues, or ``None``.

    Pairs are matched one to one, best intersection over union first, and
    only when it reaches ``min_iou``: a grid that was split in two keeps its
    code on the larger half (when that half still covers most of it), the
    other half is new.
    """
    ng = np.asarray(new, dtype=object)
    og = np.asarray(old, dtype=object)
    if len(og) != len(old_codes):
        raise UsageError("one code per old part, please")
    out: list[str | None] = [None] * len(ng)
    if len(ng) == 0 or len(og) == 0:
        return out
    tree = shapely.STRtree(og)
    ni, oi = tree.query(ng, predicate="intersects")
    if len(ni) == 0:
        return out
    inter = shapely.area(shapely.intersection(ng[ni], og[oi]))
    union = shapely.area(ng[ni]) + shapely.area(og[oi]) - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
    order = np.lexsort((oi, ni, -iou))
    taken_new: set[int] = set()
    taken_old: set[int] = set()
    for k in order.tolist():
        if iou[k] < min_iou:
            break
        a, b = int(ni[k]), int(oi[k])
        if a in taken_new or b in taken_old:
            continue
        out[a] = str(old_codes[b])
        taken_new.add(a)
        taken_old.add(b)
    return out

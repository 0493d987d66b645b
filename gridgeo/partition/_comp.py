"""One connected component of one group's free units: the problem every search stage works on.

Parts cannot cross a group or a gap in the graph, so the engine solves each component on its
own, in local indices ``0 .. m-1``. :class:`Comp` holds that component twice over: as arrays
(for the vectorised tree cuts of large components) and as plain Python lists (for the inner
loops of the local search, where list indexing beats numpy scalar access by far).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix

IArray = NDArray[np.int64]
FArray = NDArray[np.float64]

#: Relative tolerance of every size comparison in the engine.
EPS = 1e-9


class Comp:
    """A connected set of units in local indices, with list views for the inner loops.

    Parameters
    ----------
    A
        Symmetric adjacency of the component, boundary lengths as data.
    w
        Size of every unit (the column the bounds are on).
    cats, nums
        Categorical similarity codes and standardised numeric similarity values, per column.
    lo, hi
        The size bounds of the component's group.
    """

    def __init__(self, A: csr_matrix, w: FArray, cats: list[IArray], nums: list[FArray], *, lo: float = 0.0,
                 hi: float = math.inf) -> None:
        A.sort_indices()
        self.lo, self.hi = lo, hi
        # what no partition can avoid: every unit above the maximum, alone in its part
        self.floor_v = float(np.maximum(w - hi, 0.0).sum()) if math.isfinite(hi) else 0.0
        self.A = A
        self.m = A.shape[0]
        self.w = w
        self.wl: list[float] = w.tolist()
        self.W = float(w.sum())
        ip, ix, d = A.indptr, A.indices, A.data
        self.nbrs: list[list[int]] = [ix[ip[i]:ip[i + 1]].tolist() for i in range(self.m)]
        self.nlen: list[list[float]] = [d[ip[i]:ip[i + 1]].tolist() for i in range(self.m)]
        self.src: list[int] = np.repeat(np.arange(self.m), np.diff(ip)).tolist()
        self.dst: list[int] = ix.tolist()
        self.mean_len = float(d.mean()) if len(d) else 1.0
        self.cats = [c.tolist() for c in cats]
        self.ncat = [int(c.max()) + 1 if len(c) else 1 for c in cats]
        self.nums = [x.tolist() for x in nums]
        self.cats_np = cats

    def cross(self, a: IArray, b: IArray) -> NDArray[np.bool_]:
        """True where units a[i] and b[i] differ in some categorical similarity column."""
        out = np.zeros(len(a), dtype=bool)
        for c in self.cats_np:
            out |= c[a] != c[b]
        return out


def size_margin(t: float, lo: float, hi: float) -> float:
    """How far a part may drift from the mean size: the room to the nearer bound, at most 10 %.

    The cap keeps parts balanced when the bounds are loose or absent (a count
    alone asks for equal parts); an impossible mean (outside the bounds) gets 5 %.
    """
    room = min(hi - t, t - lo)
    if not room > 0:
        room = 0.05 * t
    return max(min(room, 0.1 * t), EPS)

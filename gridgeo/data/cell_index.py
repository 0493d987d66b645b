"""A static index of boxes on a uniform grid of cells, asked with arrays of coordinates (numpy only).

Why not shapely's STRtree for /locate: asking an STRtree which boxes hold a batch of places needs a
GEOS point per place (0.17 s for 100,000) and a tree walk each (0.3 s on 350,000 grid-point pieces),
where the boxes of one level of a county are all about one size and tile the plane: a uniform grid of
cells about that size puts each box in a few cells and each place in one, so the candidates of a whole
batch are a handful of array operations. Boxes far bigger than the rest (a mountain township's one
piece) are put in every cell they cover; the cell size grows until the cells hold at most
:data:`FILL` entries per box in all, so memory stays a few integers per box whatever the sizes.

The candidates are exactly the boxes that contain the place, edges included (what
``STRtree.query(point)`` gives), so an exact test of each candidate after it gives the same answer.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

#: at most this many (cell, box) entries per box in all, on average (the cells grow until it holds)
FILL = 4
#: the most cells along one axis, so that a cell's number fits an int64 with room to spare
_MAX_AXIS = 2**30


class CellIndex:
    """Boxes ``(xmin, ymin, xmax, ymax)`` (NaN rows: empty geometries, never found) on a grid of cells.

    Parameters
    ----------
    bounds
        ``(n, 4)`` array, as :func:`shapely.bounds` gives it.
    """

    def __init__(self, bounds: NDArray[np.float64]) -> None:
        b = np.asarray(bounds, dtype=np.float64).reshape(-1, 4)
        self.bounds = b
        ok = np.flatnonzero(np.isfinite(b).all(axis=1))
        self.n = len(b)
        if len(ok) == 0:
            self.x0 = self.y0 = 0.0
            self.size, self.nx, self.ny = 1.0, 1, 1
            self.cells = np.empty(0, dtype=np.int64)
            self.starts = np.zeros(1, dtype=np.int64)
            self.entries = np.empty(0, dtype=np.int64)
            return
        self.x0, self.y0 = float(b[ok, 0].min()), float(b[ok, 1].min())
        span = max(float(b[ok, 2].max()) - self.x0, float(b[ok, 3].max()) - self.y0)
        self.size = self._cell_size(b[ok], span)
        self.nx = int(np.floor((float(b[ok, 2].max()) - self.x0) / self.size)) + 1
        self.ny = int(np.floor((float(b[ok, 3].max()) - self.y0) / self.size)) + 1
        self._fill(b, ok)

    def _cell_size(self, b: NDArray[np.float64], span: float) -> float:
        """The median box's longer side, grown until the boxes make at most :data:`FILL` entries each."""
        sides = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])
        positive = sides[sides > 0]
        size = float(np.median(positive)) if len(positive) else max(span, 1.0) / max(np.sqrt(len(b)), 1.0)
        size = max(size, span / _MAX_AXIS, np.finfo(np.float64).tiny)
        while True:
            nx = np.floor((b[:, 2] - self.x0) / size) - np.floor((b[:, 0] - self.x0) / size) + 1
            ny = np.floor((b[:, 3] - self.y0) / size) - np.floor((b[:, 1] - self.y0) / size) + 1
            if float((nx * ny).sum()) <= FILL * len(b) + 1024:
                return size
            size *= 1.5

    def _fill(self, b: NDArray[np.float64], ok: NDArray[np.int64]) -> None:
        """Each box in every cell it covers: the cells' numbers sorted, each cell's boxes in box order."""
        ix0, iy0 = self._cell_xy(b[ok, 0], b[ok, 1])
        ix1, iy1 = self._cell_xy(b[ok, 2], b[ok, 3])
        wx, wy = ix1 - ix0 + 1, iy1 - iy0 + 1
        counts = wx * wy
        box = np.repeat(ok, counts)
        k = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
        wyr = np.repeat(wy, counts)
        cell = (np.repeat(ix0, counts) + k // wyr) * self.ny + np.repeat(iy0, counts) + k % wyr
        order = np.lexsort((box, cell))
        cell, self.entries = cell[order], box[order]
        first = np.r_[True, cell[1:] != cell[:-1]]
        self.cells = cell[first]
        self.starts = np.r_[np.flatnonzero(first), len(cell)].astype(np.int64)

    def _cell_xy(self, x: NDArray[np.float64], y: NDArray[np.float64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        return (np.floor((x - self.x0) / self.size).astype(np.int64),
                np.floor((y - self.y0) / self.size).astype(np.int64))

    def query_xy(self, x: NDArray[np.float64], y: NDArray[np.float64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """``(place, box)`` for every box containing a place (edges included); a NaN place is in none.

        The pairs come grouped by cell, not sorted; a caller wanting the first box per place takes the
        minimum (as /locate does).
        """
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        empty = np.empty(0, dtype=np.int64)
        if len(self.cells) == 0 or len(x) == 0:
            return empty, empty
        fx, fy = np.floor((x - self.x0) / self.size), np.floor((y - self.y0) / self.size)
        place = np.flatnonzero((fx >= 0) & (fx < self.nx) & (fy >= 0) & (fy < self.ny))  # NaN: never
        cell = fx[place].astype(np.int64) * self.ny + fy[place].astype(np.int64)
        at = np.searchsorted(self.cells, cell)
        at[at == len(self.cells)] = 0
        found = self.cells[at] == cell
        place, at = place[found], at[found]
        counts = self.starts[at + 1] - self.starts[at]
        total = int(counts.sum())
        pi = np.repeat(place, counts)
        gi = self.entries[np.repeat(self.starts[at] - (np.cumsum(counts) - counts), counts)
                          + np.arange(total, dtype=np.int64)]
        b = self.bounds[gi]
        px, py = x[pi], y[pi]
        hold = (b[:, 0] <= px) & (px <= b[:, 2]) & (b[:, 1] <= py) & (py <= b[:, 3])
        return pi[hold], gi[hold]

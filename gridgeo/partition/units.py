"""The units view the engine works on: unit ids, their adjacency in CSR form, attributes.

:class:`Units` is the one input type of :class:`~gridgeo.partition.Model` (a networkx graph is
read into it first). It is built once by the caller and checked here: symmetric adjacency, no
self loops, one boundary length per entry (an entry given twice keeps its mean), unique ids.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.sparse import coo_matrix

from gridgeo.errors import UsageError
from gridgeo.partition._comp import FArray, IArray


@dataclass(frozen=True)
class Units:
    """Units and their adjacency as arrays: what the engine actually reads.

    Parameters
    ----------
    ids
        Unit ids (any hashable), in unit order.
    indptr, indices
        Symmetric adjacency in CSR form over unit positions (no self loops).
    lengths
        Shared boundary length of every CSR entry (1 when unknown): the
        compactness objective minimises the total length cut between parts.
    attrs
        Per-unit attribute arrays by name (sizes, groups, similarity columns).
    """

    ids: tuple[Hashable, ...]
    indptr: IArray
    indices: IArray
    lengths: FArray
    attrs: Mapping[str, NDArray[Any]] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.ids)

    @classmethod
    def from_networkx(cls, graph: nx.Graph, *, length: str = "length") -> Units:
        """Read a networkx graph: node attributes become ``attrs``, edge ``length`` the lengths.

        Node order is the graph's own (insertion) order, so the same graph
        always gives the same result.
        """
        ids = tuple(graph.nodes)
        index = {u: i for i, u in enumerate(ids)}
        rows: list[int] = []
        cols: list[int] = []
        lens: list[float] = []
        for a, b, d in graph.edges(data=True):
            if a == b:
                continue
            ia, ib = index[a], index[b]
            L = d.get(length, 1.0)
            L = 1.0 if L is None else float(L)
            rows += [ia, ib]
            cols += [ib, ia]
            lens += [L, L]
        names = sorted({k for _, d in graph.nodes(data=True) for k in d}, key=str)
        attrs = {str(k): np.array([graph.nodes[u].get(k) for u in ids], dtype=object) for k in names}
        return cls._build(ids, np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64),
                          np.asarray(lens, dtype=float), attrs)

    @classmethod
    def from_arrays(
        cls,
        indptr: ArrayLike,
        indices: ArrayLike,
        *,
        ids: Sequence[Hashable] | None = None,
        lengths: ArrayLike | None = None,
        attrs: Mapping[str, ArrayLike] | None = None,
    ) -> Units:
        """Units from a CSR adjacency (made symmetric; self loops dropped) and attribute arrays."""
        ip = np.asarray(indptr, dtype=np.int64)
        ix = np.asarray(indices, dtype=np.int64)
        if ip.ndim != 1 or len(ip) < 1 or ip[0] != 0 or np.any(np.diff(ip) < 0) or ip[-1] != len(ix):
            raise UsageError("indptr must start at 0, never decrease and end at len(indices)")
        n = len(ip) - 1
        if len(ix) and (ix.min() < 0 or ix.max() >= n):
            raise UsageError(f"indices must lie in 0..{n - 1}")
        lens = np.ones(len(ix)) if lengths is None else np.asarray(lengths, dtype=float)
        if lens.shape != ix.shape:
            raise UsageError("lengths must have one value per entry of indices")
        id_t = tuple(range(n)) if ids is None else tuple(ids)
        if len(id_t) != n:
            raise UsageError(f"{len(id_t)} ids for {n} units")
        rows = np.repeat(np.arange(n), np.diff(ip))
        at = {k: np.asarray(v) for k, v in (attrs or {}).items()}
        for k, v in at.items():
            if len(v) != n:
                raise UsageError(f"attribute {k!r} has {len(v)} values for {n} units")
        return cls._build(id_t, np.concatenate([rows, ix]), np.concatenate([ix, rows]), np.concatenate([lens, lens]),
                          at)

    @classmethod
    def _build(cls, ids: tuple[Hashable, ...], rows: IArray, cols: IArray, lens: FArray,
               attrs: Mapping[str, NDArray[Any]]) -> Units:
        n = len(ids)
        if len(set(ids)) != n:
            raise UsageError("unit ids must be unique")
        keep = rows != cols
        r, c, lk = rows[keep], cols[keep], np.maximum(lens[keep], 1e-6)  # zero would vanish from CSR
        m = coo_matrix((lk, (r, c)), shape=(n, n)).tocsr()  # duplicates summed
        times = coo_matrix((np.ones(len(r)), (r, c)), shape=(n, n)).tocsr()  # ... and counted
        m.sort_indices()
        times.sort_indices()
        data = m.data / np.maximum(times.data, 1.0)  # an entry given twice keeps its mean length
        return cls(ids, m.indptr.astype(np.int64), m.indices.astype(np.int64), data.astype(float), dict(attrs))

    def column(self, name: str) -> NDArray[Any]:
        if name not in self.attrs:
            raise UsageError(f"no unit attribute {name!r}; have {', '.join(sorted(self.attrs)) or 'none'}")
        return self.attrs[name]

    def neighbours(self, i: int) -> IArray:
        return self.indices[self.indptr[i]:self.indptr[i + 1]]

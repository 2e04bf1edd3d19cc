"""Statistical disclosure control, the method: small counts, and anything that would reveal them,
withheld (primary and secondary suppression of one table). bot/summaries/disclosure.py applies it
to a summary's linked tables.

The method follows the UK Government Statistical Service's disclosure-control guidance for
tables (ONS, "Disclosure control for tables produced from administrative sources"):

1. **Primary suppression.** A count of 1 or 2 (below ``threshold``, the configuration's
   ``summaries.suppress_below``, 3 by default) is withheld. 0 is shown: an empty cell tells
   nothing about anyone.
2. **Secondary (complementary) suppression.** A withheld cell must not be recoverable from
   what is shown beside it: row and column totals, the grand total, the same breakdown for
   other periods, or a mean. For each table (cells, row totals, column totals, grand total)
   we compute, for every withheld figure, the smallest and largest value consistent with
   everything published, exactly as an attacker would: in a two-way table with margins the
   feasible changes are circulations over the withheld cells, so each bound is a maximum flow
   (and, the constraint matrix being totally unimodular, the linear-programming bound is also
   the integer one). While some withheld figure's range is narrower than ``threshold``, one
   more figure in its row or column is withheld: the smallest that gives it enough room, or
   else the one that gives most. This is the "protection interval" criterion of tau-Argus and
   sdcTable (the tools statisticians use) with a greedy choice of complements instead of
   their optimal ones: it may withhold a little more than they would, never less.
3. **Linked tables.** A period's grand total is shared by its tables (by ward, category,
   level, basis); it is withheld only when it is itself small, never as a complement, so each
   table can be protected on its own. Totals an attacker could work out without their being
   printed (the sum of the ward rows of hate crime) are treated as published.
4. **Means** are totals divided by the number of months: a mean is shown only when its total
   would be shown.

**What this guarantees**: for each withheld figure, every value in an interval at least
``threshold`` wide is consistent with all the published figures of its table (an attacker who
knows only that counts are whole and non-negative cannot tell a 1 from a 2 from a 0 or a 3).
``tests/test_disclosure.py`` checks this against the published outputs themselves, charts
included, with an integer-programming solver. Withheld cells are all shown the same way
(:data:`MARK`), so a reader cannot tell a small count from a complement.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass

MARK = "[c]"  # the GSS symbol for "confidential"; the same for primary and secondary cells
TOTAL = "\x00total"  # the key of a margin: (row, TOTAL), (TOTAL, column), (TOTAL, TOTAL)

Key = tuple[str, str]


def shown(value: int | None) -> str:
    """A published count, or :data:`MARK` when withheld."""
    return MARK if value is None else str(value)


def primary(value: int, threshold: int) -> int | None:
    """Primary suppression alone, for a count that sits in no table with totals."""
    return None if 0 < value < threshold else value


@dataclass(frozen=True)
class Protected:
    """A protected table: its true values and which of them are withheld."""

    values: Mapping[Key, int]
    hidden: frozenset[Key]

    def get(self, row: str, col: str = TOTAL) -> int | None:
        """The published value (``None`` when withheld); a missing cell is 0."""
        key = (row, col)
        return None if key in self.hidden else self.values.get(key, 0)

    def row_total(self, row: str) -> int | None:
        """The published total of ``row``."""
        return self.get(row, TOTAL)

    def col_total(self, col: str) -> int | None:
        """The published total of ``col``."""
        return self.get(TOTAL, col)

    @property
    def total(self) -> int | None:
        """The published grand total."""
        return self.get(TOTAL, TOTAL)


def protect(
    cells: Mapping[Key, int],
    *,
    rows: Sequence[str],
    cols: Sequence[str],
    threshold: int,
    row_totals: bool = True,
    col_totals: bool = True,
    grand_total: bool = True,
    cells_shown: bool = True,
    keep: Collection[Key] = ((TOTAL, TOTAL),),
) -> Protected:
    """Protect a two-way table of counts with its margins (see the module's docstring).

    ``row_totals``/``col_totals``/``grand_total`` say which margins are published (a margin
    that is not is never shown); with ``cells_shown=False`` only margins are published (any
    table with those margins will do as ``cells``: the attacker's bounds on a margin are the
    same whichever table is the true one). ``keep`` lists figures never withheld as complements (by
    default the grand total, which linked tables share); they are still withheld when small.
    """
    values: dict[Key, int] = {(r, c): cells.get((r, c), 0) for r in rows for c in cols}
    for r in rows:
        values[(r, TOTAL)] = sum(values[(r, c)] for c in cols)
    for c in cols:
        values[(TOTAL, c)] = sum(values[(r, c)] for r in rows)
    values[(TOTAL, TOTAL)] = sum(values[(r, TOTAL)] for r in rows)
    absent = {(r, TOTAL) for r in rows if not row_totals}
    absent |= {(TOTAL, c) for c in cols if not col_totals}
    if not grand_total:
        absent.add((TOTAL, TOTAL))
    if not cells_shown:
        absent |= {(r, c) for r in rows for c in cols}
    hidden = set(absent) | {k for k, v in values.items() if 0 < v < threshold}
    if not hidden - absent:
        return Protected(values, frozenset(hidden))
    network = _Network(values, threshold)
    wide: set[Key] = set()  # withholding more only widens ranges: once wide, always wide
    while True:
        weak = None
        for k in sorted(hidden - absent - wide):
            if network.width(k, hidden) >= threshold:
                wide.add(k)
            else:
                weak = k
                break
        if weak is None:
            return Protected(values, frozenset(hidden))
        hidden.add(_complement(weak, values, hidden, keep, network, threshold))


def _complement(
    weak: Key,
    values: Mapping[Key, int],
    hidden: set[Key],
    keep: Collection[Key],
    network: _Network,
    threshold: int,
) -> Key:
    """The figure to withhold next so that ``weak`` gets room: the smallest one in its row or
    column that gives it enough, else the one that widens it most, else the smallest anywhere."""
    free = [k for k, v in values.items() if v > 0 and k not in hidden and k not in keep]
    near = [k for k in free if k[0] == weak[0] or k[1] == weak[1]]
    before = network.width(weak, hidden)

    def order(k: Key) -> tuple[bool, int, Key]:
        return (TOTAL in k, values[k], k)  # cells before margins, small before large

    best: tuple[int, tuple[bool, int, Key]] | None = None
    for k in sorted(near, key=order):
        width = network.width(weak, hidden | {k})
        if width >= threshold:
            return k
        if width > before and (best is None or width > best[0]):
            best = (width, order(k))
    if best is not None:
        return best[1][2]
    if not free:  # only kept figures are left: one of them has to go (see release's pockets)
        free = [k for k, v in values.items() if v > 0 and k not in hidden]
    if not free:  # cannot happen while the grand total is kept and at least threshold
        raise AssertionError("nothing left to withhold")
    return min(free, key=order)


class _Network:
    """The table as a bipartite graph, rows against columns (the margins are one more row and
    one more column); each withheld figure is an edge. Changing withheld figures without
    changing any published one is a circulation on these edges, so how far a figure can move
    is a maximum flow. A cell may fall by its value and rise without limit; a margin moves the
    other way round, as it sits on the other side of its equation."""

    def __init__(self, values: Mapping[Key, int], threshold: int) -> None:
        self.values = values
        self.inf = 2 * sum(v for k, v in values.items() if TOTAL not in k) + 2 * threshold + 2

    def width(self, key: Key, hidden: Collection[Key]) -> int:
        """Largest minus smallest value of ``key`` consistent with everything published."""
        value = self.values[key]
        margin = _is_margin(key)
        cap: dict[Hashable, dict[Hashable, int]] = {}
        for k in hidden:
            if k == key:
                continue
            r, c = ("r", k[0]), ("c", k[1])
            v = self.values[k]
            forward, backward = (v, self.inf) if _is_margin(k) else (self.inf, v)
            cap.setdefault(r, {})[c] = cap.get(r, {}).get(c, 0) + forward
            cap.setdefault(c, {})[r] = cap.get(c, {}).get(r, 0) + backward
        r, c = ("r", key[0]), ("c", key[1])
        # The edge's own flow e: a cell's value is value + e, a margin's value - e.
        up = _max_flow(cap, c, r, self.inf)  # e can grow by this much
        down = _max_flow(cap, r, c, self.inf)  # and fall by this much
        if margin:
            return min(up, value) + down
        return up + min(down, value)


def _is_margin(key: Key) -> bool:
    return (key[0] == TOTAL) != (key[1] == TOTAL)


def _max_flow(
    cap: dict[Hashable, dict[Hashable, int]], source: Hashable, sink: Hashable, limit: int
) -> int:
    """Edmonds-Karp on a small graph (tens of nodes), stopping at ``limit``."""
    residual = {u: dict(vs) for u, vs in cap.items()}
    flow = 0
    while flow < limit:
        parent: dict[Hashable, Hashable] = {source: source}
        queue = deque([source])
        while queue and sink not in parent:
            u = queue.popleft()
            for v, room in residual.get(u, {}).items():
                if room > 0 and v not in parent:
                    parent[v] = u
                    queue.append(v)
        if sink not in parent:
            break
        path, v = [], sink
        while v != source:
            path.append((parent[v], v))
            v = parent[v]
        push = min(limit - flow, *(residual[u][v] for u, v in path))
        for u, v in path:
            residual[u][v] -= push
            residual.setdefault(v, {})[u] = residual.get(v, {}).get(u, 0) + push
        flow += push
    return min(flow, limit)


@dataclass(frozen=True)
class Line:
    """A protected one-way table: ``get(key)`` and ``total`` (``None`` when withheld)."""

    table: Protected

    def get(self, key: str) -> int | None:
        """The published count for ``key``."""
        return self.table.get("", key)

    @property
    def total(self) -> int | None:
        """The published total."""
        return self.table.get("", TOTAL)


def line(
    values: Mapping[str, int],
    *,
    threshold: int,
    total_shown: bool = True,
    keep: Collection[str] = (),
) -> Line:
    """Protect a breakdown beside its published total (``total_shown=False``: a breakdown whose
    total is published nowhere and cannot be worked out): every withheld count keeps a range
    of at least ``threshold``. The total itself is withheld only when it is small; so are the
    counts named in ``keep`` (a pocket of concern's count, published with it)."""
    keys = sorted(values)
    table = protect(
        {("", k): v for k, v in values.items()},
        rows=[""],
        cols=keys,
        threshold=threshold,
        row_totals=total_shown,
        col_totals=False,
        grand_total=False,
        keep={("", TOTAL)} | {("", k) for k in keep},
    )
    return Line(table)

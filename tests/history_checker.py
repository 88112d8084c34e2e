"""An Elle-style checker for list-append histories.

Jepsen's Elle (Kingsbury & Alvaro, "Elle: Inferring Isolation Anomalies from Experimental
Observations", VLDB 2020) proves isolation from the outside: clients run transactions of
reads and appends on a few keys whose values are lists, record what each transaction saw,
and the checker infers Adya's dependency graph from those observations and looks for the
cycles (and the non-cycle phenomena) that each isolation level forbids. Because every read
of a list shows the whole order of appends to it so far, the version order of each key can
be read off the longest read instead of being guessed.

What this module decides, in order (the rules are Elle's unless noted):

1. **Trust.** Reads of "ok" transactions are observations; reads of "info" (unknown outcome)
   and "fail" transactions are not, and neither is a read whose result is unknown (None).
   An "info" transaction counts as committed when some trusted read observed one of its
   appends; one whose appends nobody saw is ignored. "fail" transactions never commit.
2. **Version order.** Per key, the longest trusted read (the first one, on ties) is the
   order. Every other trusted read must be a prefix of it (else *incompatible-order*, one
   anomaly per key), and no read may hold an element twice (*duplicate-elements*).
3. **Non-cycle anomalies.** *G1a*: an ok transaction read an element appended by a failed
   one. *G1b*: it read a list ending in an element its writer followed by another append to
   the same key. *internal*: a transaction's read disagrees with its own earlier read and
   appends of that key. *future-read* (Elle's name): a transaction read an element that it
   only appended later. *garbage-read* (added here): a read holds an element that no
   transaction in the history appended — a corrupted value, or a history that lost the
   writer's record.
4. **Edges** between distinct committed transactions, on key k:
   - ww: U appended the element right after one T appended, in k's version order (every
     append counts, as in Elle, so appends of one transaction interleaved with another's
     make a ww cycle; consecutive elements of one transaction give no edge);
   - wr: U read a list of k whose last element T appended;
   - rw: T read a list of k (possibly empty) and U appended the element right after its
     last one.
   An append that no read observed has no successor we know of, so nothing points out of
   it; but, as in Elle, a committed append no read saw must come after every element that
   was read, so it does receive the ww and rw edges of a successor of the order's last
   element. That is sound (it is a composition of real edges through unseen versions) and
   finds write skew even when no later transaction reads the skewed keys.
5. **Cycles**, per strongly connected component of the whole graph (iterative Tarjan):
   *G0* (ww only), *G1c* (ww and wr, at least one wr), *G-single* (exactly one rw) and *G2*
   (two or more rw, reported only when the component has no G-single cycle). Each kind is
   reported once per component, with a shortest cycle of the kind, as Elle does: a
   candidate edge of the kind (ww; wr; rw) closed by a path back over the edges the kind
   allows (ww; ww and wr; ww and wr; any). A cycle of two is looked for among all the
   candidates at once; failing that, a breadth-first search from the first candidate gives
   some cycle, and searches from every candidate's head, one length at a time (three edges,
   then four, ...), look for a shorter one. Those searches stop at a budget of edge visits
   proportional to the component's size, keeping the shortest cycle found so far, so a
   huge component may get a cycle a little longer than its shortest. Candidates are tried
   in history order, so the same history always gives the same report.

Which transactions an anomaly names (``Anomaly.txns``): a cycle's members in cycle order,
starting from the one earliest in the history; for G1a and G1b the writer, then the first
reader (each bad element is reported once, with the first read that held it); for
incompatible-order the first disagreeing reader, then the reader of the longest read (one
anomaly per key); for duplicate-elements the reader, then the element's writer; for
internal, future-read and garbage-read the transaction itself.

Everything runs in time about linear in the history plus the total length of the reads
(the prefix comparisons run in C; the cycle searches are budgeted per component), so tens
of thousands of transactions check in seconds.
"""

from __future__ import annotations

import gc
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "KINDS",
    "Anomaly",
    "Append",
    "MicroOp",
    "Read",
    "Report",
    "Txn",
    "check",
    "read_jsonl",
    "write_jsonl",
]


@dataclass(frozen=True, slots=True)
class Read:
    """A read of one key: the whole list as read, or None when the result is unknown."""

    key: int
    values: tuple[int, ...] | None


@dataclass(frozen=True, slots=True)
class Append:
    """An append of one value to one key's list; values are unique per key in a history."""

    key: int
    value: int


MicroOp = Read | Append


@dataclass(frozen=True, slots=True)
class Txn:
    """One transaction as a client saw it.

    ``outcome`` is "ok" (committed), "fail" (known not committed) or "info" (unknown, e.g.
    the connection died during COMMIT).
    """

    id: str
    process: str
    ops: tuple[MicroOp, ...]
    outcome: str


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One anomaly: its kind, the transactions involved (a cycle in cycle order), and why."""

    kind: str
    txns: tuple[str, ...]
    explanation: str


#: Every kind `check` reports, in the order a report lists them.
KINDS: tuple[str, ...] = (
    "G0",
    "G1a",
    "G1b",
    "G1c",
    "G-single",
    "G2",
    "internal",
    "future-read",
    "garbage-read",
    "duplicate-elements",
    "incompatible-order",
)


@dataclass
class Report:
    """The result of `check`: the anomalies found and how many transactions were checked."""

    anomalies: list[Anomaly]
    transactions: int

    @property
    def ok(self) -> bool:
        """True when no anomaly was found."""
        return not self.anomalies

    def kinds(self) -> dict[str, int]:
        """Count of anomalies per kind (only kinds that occurred)."""
        counts: dict[str, int] = {}
        for anomaly in self.anomalies:
            counts[anomaly.kind] = counts.get(anomaly.kind, 0) + 1
        return counts

    def summary(self, examples: int = 3) -> str:
        """A multi-line, human-readable report with at most ``examples`` anomalies per kind."""
        if self.ok:
            return f"checked {self.transactions} transactions: no anomalies"
        counts = self.kinds()
        totals = ", ".join(f"{kind}: {count}" for kind, count in counts.items())
        lines = [
            f"checked {self.transactions} transactions: {len(self.anomalies)} anomalies ({totals})"
        ]
        for kind, count in counts.items():
            lines.append(f"{kind} ({count}):")
            shown = [a for a in self.anomalies if a.kind == kind][:examples]
            for anomaly in shown:
                first, *rest = anomaly.explanation.splitlines() or [""]
                lines.append(f"  - {first}")
                lines.extend(f"      {line.strip()}" for line in rest)
            if count > len(shown):
                lines.append(f"  ... and {count - len(shown)} more")
        return "\n".join(lines)


def check(history: Iterable[Txn]) -> Report:
    """Check a list-append history and report its anomalies (see the module docstring).

    Raises ValueError for a history the checker cannot interpret: an unknown outcome, two
    transactions with one id, or one value appended twice to a key (Elle refuses those
    too: with duplicate appends the reads no longer determine a version order).
    """
    with _gc_paused():
        return _Checker(list(history)).run()


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building millions of acyclic objects.

    A large history is tens of millions of ints in tuples; every full collection walks
    them all, which made reading a 20,000-transaction history several times slower.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# --- JSON lines --------------------------------------------------------------------------


def _txn_to_json(txn: Txn) -> dict[str, Any]:
    ops: list[list[Any]] = []
    for op in txn.ops:
        if isinstance(op, Read):
            ops.append(["r", op.key, op.values])  # json writes a tuple as an array
        else:
            ops.append(["append", op.key, op.value])
    return {"id": txn.id, "process": txn.process, "outcome": txn.outcome, "ops": ops}


def _txn_from_json(obj: Any) -> Txn:
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    ops: list[MicroOp] = []
    for op in obj["ops"]:
        kind, key, value = op
        if kind == "r":
            if value is not None and not isinstance(value, list):
                raise ValueError(f"a read's value must be a list or null, got {value!r}")
            # json already made the elements ints; converting millions of them again costs
            # most of the reading time of a large history
            ops.append(Read(int(key), None if value is None else tuple(value)))
        elif kind == "append":
            ops.append(Append(int(key), int(value)))
        else:
            raise ValueError(f"unknown micro-op {kind!r}")
    return Txn(str(obj["id"]), str(obj["process"]), tuple(ops), str(obj["outcome"]))


def write_jsonl(path: Path, txns: Iterable[Txn]) -> None:
    """Append ``txns`` to ``path``, one JSON object per line.

    Each line goes out in a single ``write`` on a file opened with O_APPEND, so several
    threads or processes may append to one file without interleaving their lines, and a
    writer killed mid-way leaves at most a torn last line, which `read_jsonl` drops. (No
    fsync: a killed process loses nothing already written, only a machine crash does.)
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for txn in txns:
            view = memoryview((json.dumps(_txn_to_json(txn)) + "\n").encode())
            while view:
                view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def read_jsonl(path: Path) -> list[Txn]:
    """Read transactions written by `write_jsonl`.

    A last line without its newline that does not parse is a writer killed mid-line and is
    dropped; any other malformed line raises ValueError naming the line.
    """
    data = path.read_bytes()
    lines = data.split(b"\n")
    torn_tail = not data.endswith(b"\n")
    txns: list[Txn] = []
    with _gc_paused():
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                txns.append(_txn_from_json(json.loads(line)))
            except (ValueError, KeyError, TypeError) as e:
                if torn_tail and number == len(lines):
                    break
                raise ValueError(f"{path}:{number}: malformed history line: {e}") from e
    return txns


# --- the checker -------------------------------------------------------------------------

_WW, _WR, _RW = 1, 2, 4
_ALL = _WW | _WR | _RW
_EDGE_NAME = {_WW: "ww", _WR: "wr", _RW: "rw"}
_OUTCOMES = ("ok", "info", "fail")
#: Edge visits the search for a shorter cycle may spend, per kind and component, beyond its
#: first search (which finds some cycle): a floor, plus this many per edge of the component.
_SEARCH_FLOOR = 10_000
_SEARCH_PER_EDGE = 10


def _lowest_type(mask: int) -> int:
    return mask & -mask


def _show(values: Sequence[int] | None, focus: int | None = None, width: int = 8) -> str:
    """Render a read compactly: the whole list when short, else around ``focus`` or the end."""
    if values is None:
        return "unknown"
    if len(values) <= 2 * width:
        return "[" + ", ".join(map(str, values)) + "]"
    centre = len(values) - width if focus is None else focus
    start = max(0, min(centre - width, len(values) - 2 * width))
    end = min(len(values), start + 2 * width)
    body = ", ".join(map(str, values[start:end]))
    head = "..., " if start > 0 else ""
    tail = ", ..." if end < len(values) else ""
    return f"[{head}{body}{tail}] ({len(values)} elements)"


class _Checker:
    """One run of `check`: indexes, edges, and anomalies of one history."""

    def __init__(self, txns: list[Txn]) -> None:
        self.txns = txns
        self.found: dict[str, list[Anomaly]] = {kind: [] for kind in KINDS}
        n = len(txns)
        self.ok = [False] * n
        self.failed = [False] * n
        self.committed = [False] * n
        # key -> value -> index of the transaction that appended it
        self.writer: dict[int, dict[int, int]] = {}
        # key -> values that their writer followed by another append to the key
        self.intermediate: dict[int, set[int]] = {}
        # trusted reads: (txn index, op index, key, values)
        self.reads: list[tuple[int, int, int, tuple[int, ...]]] = []
        # per key: the version order (distinct elements), and where each element first
        # occurs in the longest read (a prefix of length n holds it iff that is below n)
        self.order: dict[int, list[int]] = {}
        self.longest: dict[int, tuple[int, ...]] = {}
        self.pos: dict[int, dict[int, int]] = {}
        # (txn index, op index) of trusted reads that are not a prefix of the version order
        self.incompatible: set[tuple[int, int]] = set()
        # key -> elements seen only in incompatible reads
        self.seen_elsewhere: dict[int, set[int]] = {}
        self.succ: list[dict[int, int]] = [{} for _ in range(n)]
        self.witness: dict[tuple[int, int, int], tuple[int, int | None, int]] = {}

    def run(self) -> Report:
        self._index()
        self._version_orders()
        self._read_anomalies()
        self._commit_set()
        self._edges()
        self._internal()
        self._cycles()
        anomalies = [a for kind in KINDS for a in self.found[kind]]
        checked = sum(1 for txn in self.txns if txn.outcome != "fail")
        return Report(anomalies, checked)

    def _report(self, kind: str, txns: Iterable[int], explanation: str) -> None:
        self.found[kind].append(Anomaly(kind, tuple(self.txns[i].id for i in txns), explanation))

    def _name(self, i: int) -> str:
        return self.txns[i].id

    # -- indexes --------------------------------------------------------------------------

    def _index(self) -> None:
        ids: dict[str, int] = {}
        for i, txn in enumerate(self.txns):
            if txn.outcome not in _OUTCOMES:
                raise ValueError(f"transaction {txn.id!r}: unknown outcome {txn.outcome!r}")
            if txn.id in ids:
                raise ValueError(f"transaction id {txn.id!r} occurs twice in the history")
            ids[txn.id] = i
            self.ok[i] = txn.outcome == "ok"
            self.failed[i] = txn.outcome == "fail"
            last_append: dict[int, int] = {}
            for j, op in enumerate(txn.ops):
                if isinstance(op, Append):
                    writers = self.writer.setdefault(op.key, {})
                    if op.value in writers:
                        other = self._name(writers[op.value])
                        raise ValueError(
                            f"value {op.value} appended to key {op.key} twice "
                            f"(by {other} and {txn.id}): appended values must be unique"
                        )
                    writers[op.value] = i
                    if op.key in last_append:
                        self.intermediate.setdefault(op.key, set()).add(last_append[op.key])
                    last_append[op.key] = op.value
                elif isinstance(op, Read):
                    if self.ok[i] and op.values is not None:
                        self.reads.append((i, j, op.key, tuple(op.values)))
                else:
                    raise TypeError(f"transaction {txn.id!r}: not a micro-op: {op!r}")

    def _version_orders(self) -> None:
        by_key: dict[int, list[int]] = {}
        for r, (_, _, key, _) in enumerate(self.reads):
            by_key.setdefault(key, []).append(r)
        for key, indexes in by_key.items():
            longest = max(indexes, key=lambda r: (len(self.reads[r][3]), -r))
            reader, _, _, full = self.reads[longest]
            self.longest[key] = full
            pos: dict[int, int] = {}
            order: list[int] = []
            for at, value in enumerate(full):
                if value not in pos:
                    pos[value] = at
                    order.append(value)
            self.order[key] = order
            self.pos[key] = pos
            bad: list[int] = []
            for r in indexes:
                i, j, _, values = self.reads[r]
                n = len(values)
                if n and (n > len(full) or full[:n] != values):
                    bad.append(r)
                    self.incompatible.add((i, j))
                    elsewhere = self.seen_elsewhere.setdefault(key, set())
                    elsewhere.update(v for v in values if v not in pos)
            if bad:
                i, _, _, values = self.reads[bad[0]]
                at = next(
                    (p for p, (a, b) in enumerate(zip(values, full, strict=False)) if a != b),
                    min(len(values), len(full)),
                )
                self._report(
                    "incompatible-order",
                    (i, reader),
                    f"key {key}: {self._name(i)} read {_show(values, at)}, which is not a "
                    f"prefix of {self._name(reader)}'s {_show(full, at)} (they differ at "
                    f"index {at}); {len(bad)} of {len(indexes)} reads of key {key} disagree "
                    f"with the longest",
                )

    # -- anomalies of single reads ----------------------------------------------------------

    def _read_anomalies(self) -> None:
        """G1a, garbage-read, duplicate-elements and G1b, each reported once per element.

        A read that is a prefix of the version order holds exactly the order's first
        elements, so for those reads it is enough to know where in the longest read the
        bad elements first occur: the reads then cost O(1) each instead of O(length).
        """
        # per key: [(position, element)] of the longest read's aborted or unwritten elements,
        # and of its repeated elements (second occurrences)
        bad_at: dict[int, list[tuple[int, int]]] = {}
        dup_at: dict[int, list[tuple[int, int]]] = {}
        for key, full in self.longest.items():
            writers = self.writer.get(key, {})
            seen: set[int] = set()
            bad: list[tuple[int, int]] = []
            dups: list[tuple[int, int]] = []
            for p, value in enumerate(full):
                if value in seen:
                    dups.append((p, value))
                    continue
                seen.add(value)
                w = writers.get(value)
                if w is None or self.failed[w]:
                    bad.append((p, value))
            bad_at[key], dup_at[key] = bad, dups
        # how many of bad_at / dup_at earlier reads already covered: reads come in history
        # order, so each element is reported with the first read that held it
        bad_done: dict[int, int] = {}
        dup_done: dict[int, int] = {}
        reported_bad: set[tuple[int, int]] = set()
        reported_dup: set[tuple[int, int]] = set()
        reported_g1b: set[tuple[int, int]] = set()
        for i, j, key, values in self.reads:
            writers = self.writer.get(key, {})
            if (i, j) in self.incompatible:
                counts: dict[int, int] = {}
                for value in values:
                    counts[value] = counts.get(value, 0) + 1
                    if counts[value] == 2 and (key, value) not in reported_dup:
                        reported_dup.add((key, value))
                        self._duplicate(i, key, value, values)
                    w = writers.get(value)
                    if (w is None or self.failed[w]) and (key, value) not in reported_bad:
                        reported_bad.add((key, value))
                        self._bad_element(i, key, value, values)
            else:
                for at, done, reported, report in (
                    (bad_at, bad_done, reported_bad, self._bad_element),
                    (dup_at, dup_done, reported_dup, self._duplicate),
                ):
                    found = at.get(key, [])
                    k = done.get(key, 0)
                    while k < len(found) and found[k][0] < len(values):
                        value = found[k][1]
                        if (key, value) not in reported:
                            reported.add((key, value))
                            report(i, key, value, values)
                        k += 1
                    done[key] = k
            if values:
                last = values[-1]
                w = writers.get(last)
                if (
                    w is not None
                    and w != i
                    and last in self.intermediate.get(key, ())
                    and (key, last) not in reported_g1b
                ):
                    reported_g1b.add((key, last))
                    later = [
                        op.value
                        for op in self.txns[w].ops
                        if isinstance(op, Append) and op.key == key
                    ]
                    after = later[later.index(last) + 1 :]
                    self._report(
                        "G1b",
                        (w, i),
                        f"{self._name(i)} read key {key} = {_show(values)}, ending in "
                        f"{last}, an intermediate append of {self._name(w)}, which then "
                        f"appended {_show(after)} to key {key}",
                    )

    def _bad_element(self, reader: int, key: int, value: int, values: tuple[int, ...]) -> None:
        w = self.writer.get(key, {}).get(value)
        at = values.index(value)
        if w is None:
            self._report(
                "garbage-read",
                (reader,),
                f"{self._name(reader)} read key {key} = {_show(values, at)}, holding {value}, "
                f"which no transaction in the history appended",
            )
        else:
            self._report(
                "G1a",
                (w, reader),
                f"{self._name(reader)} read key {key} = {_show(values, at)}, holding "
                f"{value}, appended by {self._name(w)}, which failed (aborted read)",
            )

    def _duplicate(self, reader: int, key: int, value: int, values: tuple[int, ...]) -> None:
        w = self.writer.get(key, {}).get(value)
        first = values.index(value)
        second = values.index(value, first + 1)
        by = "nobody" if w is None else self._name(w)
        self._report(
            "duplicate-elements",
            (reader,) if w is None else (reader, w),
            f"{self._name(reader)} read key {key} = {_show(values, second)}, holding {value} "
            f"(appended by {by}) at indexes {first} and {second}",
        )

    # -- the graph ----------------------------------------------------------------------------

    def _commit_set(self) -> None:
        for i, txn in enumerate(self.txns):
            if self.ok[i]:
                self.committed[i] = True
            elif txn.outcome == "info":
                self.committed[i] = any(
                    isinstance(op, Append)
                    and (
                        op.value in self.pos.get(op.key, ())
                        or op.value in self.seen_elsewhere.get(op.key, ())
                    )
                    for op in txn.ops
                )

    def _link(self, t: int, u: int, kind: int, key: int, a: int | None, b: int) -> None:
        if t == u:
            return
        edges = self.succ[t]
        mask = edges.get(u, 0)
        if not mask & kind:
            edges[u] = mask | kind
            self.witness[(t, u, kind)] = (key, a, b)

    def _edges(self) -> None:
        committed = self.committed
        # key -> last element read (None: the empty list) -> readers; only reads that are a
        # prefix of the order, since only they say which append came next
        readers: dict[int, dict[int | None, list[int]]] = {}
        for i, j, key, values in self.reads:
            if values:
                w = self.writer.get(key, {}).get(values[-1])
                if w is not None and committed[w]:
                    self._link(w, i, _WR, key, None, values[-1])
            if (i, j) not in self.incompatible:
                last = values[-1] if values else None
                readers.setdefault(key, {}).setdefault(last, []).append(i)
        for key, writers in self.writer.items():
            pos = self.pos.get(key, {})
            by_last = readers.get(key, {})
            prev: int | None = None
            prev_writer: int | None = None
            for value in self.order.get(key, ()):
                w = writers.get(value)
                if w is not None and committed[w]:
                    if prev_writer is not None and committed[prev_writer]:
                        self._link(prev_writer, w, _WW, key, prev, value)
                    for reader in by_last.get(prev, ()):
                        self._link(reader, w, _RW, key, prev, value)
                prev, prev_writer = value, w
            # a committed append nobody read still follows every element that was read
            elsewhere = self.seen_elsewhere.get(key, ())
            for value, w in writers.items():
                if value in pos or value in elsewhere or not committed[w]:
                    continue
                if prev_writer is not None and committed[prev_writer]:
                    self._link(prev_writer, w, _WW, key, prev, value)
                for reader in by_last.get(prev, ()):
                    self._link(reader, w, _RW, key, prev, value)

    # -- anomalies inside one transaction ---------------------------------------------------

    def _internal(self) -> None:
        for i, txn in enumerate(self.txns):
            if not self.ok[i]:
                continue
            # key -> (the list as last read, or None if not read yet; appends since)
            state: dict[int, tuple[tuple[int, ...] | None, list[int]]] = {}
            # key -> (op index, values) of this transaction's reads so far
            own_reads: dict[int, list[tuple[int, tuple[int, ...]]]] = {}
            for j, op in enumerate(txn.ops):
                if isinstance(op, Append):
                    base, appended = state.setdefault(op.key, (None, []))
                    appended.append(op.value)
                    for j_read, values in own_reads.get(op.key, ()):
                        if self._contains((i, j_read), op.key, values, op.value):
                            self._report(
                                "future-read",
                                (i,),
                                f"{txn.id} read key {op.key} = {_show(values)}, holding "
                                f"{op.value}, before it appended {op.value} itself",
                            )
                            break
                    continue
                if not isinstance(op, Read) or op.values is None:
                    continue
                values = tuple(op.values)
                if op.key in state:
                    base, appended = state[op.key]
                    tail = tuple(appended)
                    if base is None:
                        good = (
                            len(values) >= len(tail) and values[len(values) - len(tail) :] == tail
                        )
                        expected = "a list ending in " + _show(tail)
                    else:
                        good = values == base + tail
                        expected = _show(base + tail)
                    if not good:
                        self._report(
                            "internal",
                            (i,),
                            f"{txn.id} read key {op.key} = {_show(values)}, but its own "
                            f"earlier reads and appends imply {expected}",
                        )
                state[op.key] = (values, [])
                own_reads.setdefault(op.key, []).append((j, values))

    def _contains(
        self, read: tuple[int, int], key: int, values: tuple[int, ...], value: int
    ) -> bool:
        if read in self.incompatible:
            return value in values
        # a read that is a prefix of the order holds exactly the order's first elements
        at = self.pos.get(key, {}).get(value)
        return at is not None and at < len(values)

    # -- cycles -----------------------------------------------------------------------------

    def _cycles(self) -> None:
        nodes = [i for i in range(len(self.txns)) if self.committed[i]]
        cyclic = [sorted(c) for c in _tarjan(nodes, self.succ, _ALL, None) if len(c) > 1]
        for component in sorted(cyclic):  # in history order of their first transaction
            self._component(component)

    def _component(self, nodes: list[int]) -> None:
        allowed = set(nodes)
        succ = self.succ
        budget = _SEARCH_FLOOR + _SEARCH_PER_EDGE * sum(len(succ[t]) for t in nodes)
        for kind, edge, mask in (("G0", _WW, _WW), ("G1c", _WR, _WW | _WR)):
            comp_of = _component_map(_tarjan(nodes, succ, mask, allowed))
            candidates = [
                (t, u)
                for t in nodes
                for u, m in succ[t].items()
                if m & edge and u in allowed and comp_of[t] == comp_of[u]
            ]
            self._report_cycle(kind, self._short_cycle(candidates, edge, mask, allowed, budget))
        rw_edges = [(t, u) for t in nodes for u, m in succ[t].items() if m & _RW and u in allowed]
        if not rw_edges:
            return
        components = _tarjan(nodes, succ, _WW | _WR, allowed)
        comp_of = _component_map(components)
        reach = _reachability(components, comp_of, succ, _WW | _WR, allowed)
        single = [(t, u) for t, u in rw_edges if reach[comp_of[u]] >> comp_of[t] & 1]
        if single:
            cycle = self._short_cycle(single, _RW, _WW | _WR, allowed, budget)
            self._report_cycle("G-single", cycle)
        else:
            self._report_cycle("G2", self._short_cycle(rw_edges, _RW, _ALL, allowed, budget))

    def _short_cycle(
        self,
        candidates: list[tuple[int, int]],
        edge: int,
        mask: int,
        allowed: set[int],
        budget: int,
    ) -> list[tuple[int, int, int]] | None:
        """A shortest cycle found: a candidate edge t->u closed by a path u->t in ``mask``.

        Every candidate must lie on such a cycle. Returns hops (from, edge type, to), or
        None without candidates. Hops of the path carry the lowest edge type they have (ww
        before wr before rw), so a path that could avoid an rw edge does.
        """
        if not candidates:
            return None
        succ = self.succ
        for t, u in candidates:  # two edges: nothing between distinct transactions is shorter
            if succ[u].get(t, 0) & mask:
                return self._hops(t, edge, [u, t], mask)
        tails: dict[int, set[int]] = {}
        for t, u in candidates:
            tails.setdefault(u, set()).add(t)
        heads = list(tails)
        best, work = _nearest(heads[0], tails[heads[0]], succ, mask, allowed, len(allowed))
        if best is None:
            return None
        # Every cycle shorter than the one in hand, one length at a time: the first found
        # is a shortest, unless the budget runs out first.
        depth = 2  # hops of the path back, one fewer than the cycle's
        while depth < len(best) - 1 and work < budget:
            found: list[int] | None = None
            for u in heads:
                found, spent = _nearest(u, tails[u], succ, mask, allowed, depth)
                work += spent
                if found is not None or work >= budget:
                    break
            if found is not None:
                best = found
                break
            depth += 1
        return self._hops(best[-1], edge, best, mask)

    def _hops(self, t: int, edge: int, path: list[int], mask: int) -> list[tuple[int, int, int]]:
        """The cycle t -edge-> path[0] -> ... -> path[-1] = t as hops (from, edge type, to)."""
        hops = [(t, edge, path[0])]
        for a, b in zip(path, path[1:], strict=False):
            hops.append((a, _lowest_type(self.succ[a][b] & mask), b))
        return hops

    def _report_cycle(self, kind: str, hops: list[tuple[int, int, int]] | None) -> None:
        if hops is None:
            return
        start = min(range(len(hops)), key=[t for t, _, _ in hops].__getitem__)
        hops = hops[start:] + hops[:start]
        chain = [self._name(hops[0][0])]
        details: list[str] = []
        for t, edge, u in hops:
            key, a, b = self.witness[(t, u, edge)]
            chain.append(f"-{_EDGE_NAME[edge]}(k{key})-> {self._name(u)}")
            details.append(self._edge_detail(t, edge, u, key, a, b))
        self._report(kind, [t for t, _, _ in hops], " ".join(chain) + "\n" + "\n".join(details))

    def _edge_detail(self, t: int, edge: int, u: int, key: int, a: int | None, b: int) -> str:
        src, dst = self._name(t), self._name(u)
        unseen = b not in self.pos.get(key, {})
        later = f"{dst} appended {b}" + (
            " (never read, so after every element read)" if unseen else " next"
        )
        if edge == _WW:
            return f"{src} -ww-> {dst}: {src} appended {a} to key {key}; {later}"
        if edge == _WR:
            return f"{src} -wr-> {dst}: {dst} read key {key} ending in {src}'s append of {b}"
        seen = "the empty list" if a is None else f"a list ending in {a}"
        return f"{src} -rw-> {dst}: {src} read key {key} as {seen}; {later}"


def _tarjan(
    nodes: Iterable[int], succ: list[dict[int, int]], mask: int, allowed: set[int] | None
) -> list[list[int]]:
    """Strongly connected components over the edges in ``mask``, without recursion.

    Components come out in reverse topological order: every component reachable from one
    is listed before it.
    """
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[int] = []
    components: list[list[int]] = []

    def neighbours(v: int) -> list[int]:
        return [w for w, m in succ[v].items() if m & mask and (allowed is None or w in allowed)]

    for root in nodes:
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(neighbours(root)))]
        while work:
            v, it = work[-1]
            descended = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(neighbours(w))))
                    descended = True
                    break
                if w in on_stack and index[w] < low[v]:
                    low[v] = index[w]
            if descended:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                if low[v] < low[parent]:
                    low[parent] = low[v]
            if low[v] == index[v]:
                component: list[int] = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == v:
                        break
                components.append(component)
    return components


def _component_map(components: list[list[int]]) -> dict[int, int]:
    return {v: c for c, component in enumerate(components) for v in component}


def _reachability(
    components: list[list[int]],
    comp_of: dict[int, int],
    succ: list[dict[int, int]],
    mask: int,
    allowed: set[int],
) -> list[int]:
    """For each component, the set (a bit mask) of components it reaches, itself included."""
    reach = [0] * len(components)
    for c, component in enumerate(components):  # sinks first: successors are done
        bits = 1 << c
        for v in component:
            for w, m in succ[v].items():
                if m & mask and w in allowed:
                    d = comp_of[w]
                    if d != c:
                        bits |= reach[d]
        reach[c] = bits
    return reach


def _nearest(
    src: int,
    targets: set[int],
    succ: list[dict[int, int]],
    mask: int,
    allowed: set[int],
    limit: int,
) -> tuple[list[int] | None, int]:
    """A shortest path of at most ``limit`` hops over ``mask`` edges from src to a target.

    Returns its nodes (None if there is none) and how many edges the search visited.
    """
    parent = {src: src}
    frontier = [src]
    work = 0
    for _ in range(limit):
        nxt: list[int] = []
        for v in frontier:
            edges = succ[v]
            work += len(edges)
            for w, m in edges.items():
                if m & mask and w not in parent and w in allowed:
                    parent[w] = v
                    if w in targets:
                        path = [w]
                        while path[-1] != src:
                            path.append(parent[path[-1]])
                        path.reverse()
                        return path, work
                    nxt.append(w)
        if not nxt:
            break
        frontier = nxt
    return None, work

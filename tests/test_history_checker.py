"""The list-append history checker finds each anomaly in hand-built histories, nothing in
histories that serial or serializably certified executions produced, and only write skew in
snapshot-isolated ones."""

from __future__ import annotations

import gc
import random
import threading
from pathlib import Path

import pytest
from history_checker import Append, Read, Report, Txn, check, read_jsonl, write_jsonl

X, Y, Z = 0, 1, 2


def txn(id: str, *ops: Read | Append, outcome: str = "ok") -> Txn:
    return Txn(id, "p-" + id, tuple(ops), outcome)


def r(key: int, *values: int) -> Read:
    return Read(key, tuple(values))


def a(key: int, value: int) -> Append:
    return Append(key, value)


def only(report: Report, kind: str) -> tuple[str, ...]:
    """The transactions named by the single anomaly of ``kind``."""
    found = [anomaly for anomaly in report.anomalies if anomaly.kind == kind]
    assert len(found) == 1, report.summary()
    return found[0].txns


# --- histories that a correct database produces ------------------------------------------


def serial_history(seed: int, n: int, keys: int = 10, max_ops: int = 4) -> list[Txn]:
    """Run ``n`` random transactions one after another on a dict of lists.

    About 5% fail (their appends are not applied) and 5% end "info" (applied or not, at
    random); their reads are recorded too, sometimes as unknown.
    """
    rng = random.Random(seed)
    state: dict[int, list[int]] = {k: [] for k in range(keys)}
    value = 0
    history: list[Txn] = []
    for i in range(n):
        own: dict[int, list[int]] = {}
        ops: list[Read | Append] = []
        for _ in range(rng.randint(1, max_ops)):
            key = rng.randrange(keys)
            if rng.random() < 0.5:
                ops.append(Read(key, tuple(state[key]) + tuple(own.get(key, ()))))
            else:
                value += 1
                own.setdefault(key, []).append(value)
                ops.append(Append(key, value))
        roll = rng.random()
        outcome = "fail" if roll < 0.05 else "info" if roll < 0.10 else "ok"
        if outcome == "ok" or (outcome == "info" and rng.random() < 0.5):
            for key, values in own.items():
                state[key].extend(values)
        if outcome != "ok" and rng.random() < 0.5:
            ops = [Read(op.key, None) if isinstance(op, Read) else op for op in ops]
        history.append(Txn(f"c{i % 5}-{i}", f"c{i % 5}", tuple(ops), outcome))
    return history


def certified_history(
    seed: int, n: int, serializable: bool, keys: int = 3, clients: int = 5
) -> list[Txn]:
    """Interleave ``clients`` transactions, certified at commit as offsetdb does.

    Each transaction reads the state as of its start plus its own appends; at commit it
    aborts if a key it appended to (snapshot isolation: first committer wins) or, when
    ``serializable``, also a key it read was committed by someone else since it started.
    Snapshot isolation allows write skew, nothing else in a list-append history: every
    cycle of its dependency graph has two consecutive rw edges (Fekete et al. 2005).
    """
    rng = random.Random(seed)
    state: dict[int, list[int]] = {k: [] for k in range(keys)}
    last_commit: dict[int, int] = {k: 0 for k in range(keys)}
    clock = 0
    value = 0
    running: dict[int, dict] = {}
    history: list[Txn] = []
    started = 0
    while len(history) < n:
        client = rng.randrange(clients)
        t = running.get(client)
        if t is None:
            if started == n:
                continue
            plan = [(rng.random() < 0.5, rng.randrange(keys)) for _ in range(rng.randint(1, 4))]
            t = {
                "id": f"c{client}-{started}",
                "start": clock,
                "snapshot": {k: len(v) for k, v in state.items()},
                "plan": plan,
                "ops": [],
                "own": {},
                "read": set(),
            }
            running[client] = t
            started += 1
            continue
        if t["plan"]:
            is_read, key = t["plan"].pop(0)
            if is_read:
                seen = tuple(state[key][: t["snapshot"][key]]) + tuple(t["own"].get(key, ()))
                t["ops"].append(Read(key, seen))
                t["read"].add(key)
            else:
                value += 1
                t["own"].setdefault(key, []).append(value)
                t["ops"].append(Append(key, value))
            continue
        del running[client]
        certified = set(t["own"]) | (t["read"] if serializable else set())
        commits = all(last_commit[key] <= t["start"] for key in certified)
        if commits:
            clock += 1
            for key, values in t["own"].items():
                state[key].extend(values)
                last_commit[key] = clock
        outcome = "ok" if commits else "fail"
        if rng.random() < 0.05:
            outcome = "info"
        history.append(Txn(t["id"], f"c{client}", tuple(t["ops"]), outcome))
    return history


def no_isolation_history(seed: int, n: int, keys: int = 5, clients: int = 50) -> list[Txn]:
    """Interleave ``clients`` transactions on a database with no isolation at all.

    Every read sees the shared state as it is, others' unfinished appends included, every
    append lands at once, and every transaction commits: with few keys and many clients the
    dependency graph is one strongly connected component of nearly every transaction.
    """
    rng = random.Random(seed)
    state: dict[int, list[int]] = {k: [] for k in range(keys)}
    value = 0
    running: dict[int, tuple[str, list[Read | Append], list[int]]] = {}
    history: list[Txn] = []
    started = 0
    while len(history) < n:
        client = rng.randrange(clients)
        if client not in running:
            if started < n:
                running[client] = (f"c{client}-{started}", [], [rng.randint(1, 4)])
                started += 1
            continue
        name, ops, left = running[client]
        if left[0]:
            left[0] -= 1
            key = rng.randrange(keys)
            if rng.random() < 0.5:
                ops.append(Read(key, tuple(state[key])))
            else:
                value += 1
                state[key].append(value)
                ops.append(Append(key, value))
            continue
        del running[client]
        history.append(Txn(name, f"c{client}", tuple(ops), "ok"))
    return history


def test_serial_history_reports_nothing() -> None:
    history = serial_history(seed=1, n=3000)
    assert {t.outcome for t in history} == {"ok", "fail", "info"}
    report = check(history)
    assert report.ok, report.summary()
    assert report.kinds() == {}
    assert gc.isenabled()  # the checker pauses the collector only while it runs
    assert report.transactions == sum(1 for t in history if t.outcome != "fail")


def test_concurrent_serializable_history_reports_nothing() -> None:
    history = certified_history(seed=3, n=2000, serializable=True)
    report = check(history)
    assert report.ok, report.summary()
    assert {t.outcome for t in history} == {"ok", "fail", "info"}


def test_snapshot_isolation_history_shows_write_skew_and_nothing_else() -> None:
    report = check(certified_history(seed=3, n=2000, serializable=False))
    assert set(report.kinds()) == {"G2"}, report.summary()


def test_the_same_history_gives_the_same_report() -> None:
    history = certified_history(seed=5, n=1000, serializable=False)
    first, second = check(history), check(list(history))
    assert not first.ok
    assert first.anomalies == second.anomalies
    assert first.summary() == second.summary()


def test_twenty_thousand_transaction_serial_history_checks() -> None:
    history = serial_history(seed=2, n=20_000, keys=10, max_ops=3)
    report = check(history)
    assert report.ok, report.summary()
    assert report.transactions == sum(1 for t in history if t.outcome != "fail")


# --- cycles --------------------------------------------------------------------------------


def test_write_cycle_is_reported_as_g0() -> None:
    report = check(
        [
            txn("T1", a(X, 1), a(Y, 1)),
            txn("T2", a(X, 2), a(Y, 2)),
            txn("T3", r(X, 1, 2), r(Y, 2, 1)),
        ]
    )
    assert report.kinds() == {"G0": 1}
    assert only(report, "G0") == ("T1", "T2")
    assert report.anomalies[0].explanation.splitlines()[0] == "T1 -ww(k0)-> T2 -ww(k1)-> T1"


def test_appends_interleaved_with_another_transactions_are_reported_as_g0() -> None:
    # Every append, not only a transaction's last, follows the element before it (Elle):
    # T2's append landed between two of T1's, which no serial order allows.
    report = check(
        [
            txn("T1", a(X, 1), a(X, 3)),
            txn("T2", a(X, 2)),
            txn("T3", r(X, 1, 2, 3)),
        ]
    )
    assert report.kinds() == {"G0": 1}
    assert only(report, "G0") == ("T1", "T2")


def test_write_read_cycle_is_reported_as_g1c() -> None:
    report = check(
        [
            txn("T1", a(X, 1), r(Y, 1)),
            txn("T2", a(Y, 1), r(X, 1)),
        ]
    )
    assert report.kinds() == {"G1c": 1}
    assert only(report, "G1c") == ("T1", "T2")
    assert report.anomalies[0].explanation.splitlines()[0] == "T1 -wr(k0)-> T2 -wr(k1)-> T1"


def test_read_skew_is_reported_as_g_single() -> None:
    report = check(
        [
            txn("T0", a(X, 1), a(Y, 1)),
            txn("T1", r(X, 1), r(Y, 1, 2)),  # saw x before T2 and y after it
            txn("T2", a(X, 2), a(Y, 2)),
            txn("T3", r(X, 1, 2), r(Y, 1, 2)),
        ]
    )
    assert report.kinds() == {"G-single": 1}
    assert only(report, "G-single") == ("T1", "T2")
    assert report.anomalies[0].explanation.splitlines()[0] == "T1 -rw(k0)-> T2 -wr(k1)-> T1"


def test_lost_update_is_reported_as_g_single() -> None:
    report = check(
        [
            txn("T1", r(X), a(X, 1)),
            txn("T2", r(X), a(X, 2)),
            txn("T3", r(X, 1, 2)),
        ]
    )
    assert report.kinds() == {"G-single": 1}
    assert only(report, "G-single") == ("T1", "T2")


def test_write_skew_is_reported_as_g2() -> None:
    report = check(
        [
            txn("T1", r(X), r(Y), a(X, 1)),
            txn("T2", r(X), r(Y), a(Y, 2)),
            txn("T3", r(X, 1), r(Y, 2)),
        ]
    )
    assert report.kinds() == {"G2": 1}
    assert only(report, "G2") == ("T1", "T2")
    assert report.anomalies[0].explanation.splitlines()[0] == "T1 -rw(k1)-> T2 -rw(k0)-> T1"


def test_write_skew_is_found_even_when_no_read_sees_the_appends() -> None:
    # A committed append nobody read still comes after every element that was read.
    report = check(
        [
            txn("T1", r(X), r(Y), a(X, 1)),
            txn("T2", r(X), r(Y), a(Y, 2)),
        ]
    )
    assert report.kinds() == {"G2": 1}
    assert only(report, "G2") == ("T1", "T2")


def test_component_with_a_g_single_cycle_does_not_also_report_g2() -> None:
    # T1 and T2 write-skew (two rw edges), and T2 -wr-> T3 -rw-> T2 is a G-single, all in
    # one strongly connected component: Elle reports the G-single only.
    report = check(
        [
            txn("T1", r(X), r(Y), a(X, 1)),
            txn("T2", r(X), r(Y), a(Y, 2), a(Z, 3)),
            txn("T3", r(Y, 2), r(Z)),
            txn("T4", r(X, 1), r(Y, 2), r(Z, 3)),
        ]
    )
    assert report.kinds() == {"G-single": 1}
    assert only(report, "G-single") == ("T2", "T3")


def dependency_history(names: list[str], edges: list[tuple[str, str, str]]) -> list[Txn]:
    """Transactions ``names``, in that order, whose dependency graph has exactly ``edges``.

    Each edge (from, type, to) gets a key of its own: for ww both append to it and a final
    reader "R" reads the two appends in order; for wr "to" reads the one append of "from";
    for rw "from" reads the key empty and "to" appends to it. R only receives edges.
    """
    ops: dict[str, list[Read | Append]] = {name: [] for name in names}
    seen: list[Read | Append] = []
    for key, (src, kind, dst) in enumerate(edges):
        if kind == "ww":
            ops[src].append(a(key, 1))
            ops[dst].append(a(key, 2))
            seen.append(r(key, 1, 2))
        elif kind == "wr":
            ops[src].append(a(key, 1))
            ops[dst].append(r(key, 1))
        else:
            ops[src].append(r(key))
            ops[dst].append(a(key, 1))
    return [txn(name, *ops[name]) for name in names] + [txn("R", *seen)]


def ring(names: list[str], kind: str) -> list[tuple[str, str, str]]:
    return [(t, kind, u) for t, u in zip(names, names[1:] + names[:1], strict=True)]


def cycle_of(report: Report, kind: str) -> str:
    """The first line of the single anomaly of ``kind``: its cycle, edge by edge."""
    only(report, kind)
    found = next(anomaly for anomaly in report.anomalies if anomaly.kind == kind)
    return found.explanation.splitlines()[0]


LONG = [f"T{i}" for i in range(12)]


@pytest.mark.parametrize(
    ("kind", "edge", "expected"),
    [
        ("G0", "ww", "A -ww(k{0})-> B -ww(k{1})-> A"),
        ("G1c", "wr", "A -wr(k{0})-> B -wr(k{1})-> A"),
        ("G2", "rw", "A -rw(k{0})-> B -rw(k{1})-> A"),
    ],
)
def test_the_shortest_cycle_of_a_component_is_reported(kind: str, edge: str, expected: str) -> None:
    # A ring of twelve, whose every edge is a candidate searched before A's, and, tied into
    # the same component by T0 -> A and B -> T1, A and B in a cycle of two.
    edges = ring(LONG, edge) + [("T0", edge, "A"), ("B", edge, "T1")]
    edges += [("A", edge, "B"), ("B", edge, "A")]
    report = check(dependency_history([*LONG, "A", "B"], edges))
    assert report.kinds() == {kind: 1}, report.summary()
    assert only(report, kind) == ("A", "B")
    assert cycle_of(report, kind) == expected.format(len(edges) - 2, len(edges) - 1)


def test_the_shortest_g_single_cycle_of_a_component_is_reported() -> None:
    # A ww chain T0 -> ... -> T11 and nine rw edges back from its end, searched before A's:
    # each closes a cycle of eight edges or more. Later A -rw-> B -wr-> A, in the same
    # component through T0 -ww-> A and B -ww-> T1.
    chain = ring(LONG, "ww")[:-1]
    back = [(f"T{i}", "rw", f"T{j}") for i in (9, 10, 11) for j in (0, 1, 2)]
    edges = chain + back + [("T0", "ww", "A"), ("B", "ww", "T1")]
    edges += [("A", "rw", "B"), ("B", "wr", "A")]
    report = check(dependency_history([*LONG, "A", "B"], edges))
    assert report.kinds() == {"G-single": 1}, report.summary()
    assert only(report, "G-single") == ("A", "B")
    n = len(edges)
    assert cycle_of(report, "G-single") == f"A -rw(k{n - 2})-> B -wr(k{n - 1})-> A"


def test_a_three_edge_cycle_beats_longer_ones_when_there_is_no_two_edge_cycle() -> None:
    edges = ring(LONG, "ww") + [("T0", "ww", "A"), ("C", "ww", "T1")] + ring(["A", "B", "C"], "ww")
    report = check(dependency_history([*LONG, "A", "B", "C"], edges))
    assert report.kinds() == {"G0": 1}, report.summary()
    assert only(report, "G0") == ("A", "B", "C")


def test_a_component_of_thousands_gets_two_edge_cycles() -> None:
    # Thousands of transactions in one component, with cycles of two edges of each kind
    # among many longer ones (searching from the first few candidates only gave cycles of
    # seven, five and four edges).
    report = check(no_isolation_history(seed=1, n=5000, keys=5))
    for kind in ("G0", "G1c", "G-single"):
        assert len(only(report, kind)) == 2, report.summary()


# --- anomalies without cycles ----------------------------------------------------------------


def test_read_of_an_aborted_append_is_reported_as_g1a() -> None:
    report = check(
        [
            txn("T1", a(X, 1), outcome="fail"),
            txn("T2", r(X, 1)),
        ]
    )
    assert report.kinds() == {"G1a": 1}
    assert only(report, "G1a") == ("T1", "T2")


def test_intermediate_read_is_reported_as_g1b() -> None:
    report = check(
        [
            txn("T1", a(X, 1), a(X, 2)),
            txn("T2", r(X, 1)),
            txn("T3", r(X, 1, 2)),
        ]
    )
    # T2 read T1's state (wr) that T1 then overwrote (rw): a G-single as well, as in Elle.
    assert report.kinds() == {"G1b": 1, "G-single": 1}
    assert only(report, "G1b") == ("T1", "T2")


def test_reads_that_are_not_prefixes_of_one_order_are_reported_as_incompatible_order() -> None:
    report = check(
        [
            txn("T1", a(X, 1)),
            txn("T2", a(X, 2)),
            txn("T3", r(X, 1, 2)),
            txn("T4", r(X, 2)),
        ]
    )
    assert report.kinds() == {"incompatible-order": 1}
    assert only(report, "incompatible-order") == ("T4", "T3")


def test_an_element_read_twice_is_reported_as_duplicate_elements() -> None:
    report = check(
        [
            txn("T1", a(X, 1)),
            txn("T2", a(X, 2)),
            txn("T3", r(X, 1, 2, 1)),
        ]
    )
    assert report.kinds() == {"duplicate-elements": 1}
    assert only(report, "duplicate-elements") == ("T3", "T1")


def test_read_missing_its_own_append_is_reported_as_internal() -> None:
    report = check([txn("T1", a(X, 1), r(X))])
    assert report.kinds() == {"internal": 1}
    assert only(report, "internal") == ("T1",)


def test_non_repeatable_read_is_reported_as_internal() -> None:
    report = check(
        [
            txn("T1", a(X, 1)),
            txn("T2", a(X, 2)),
            txn("T3", r(X, 1), r(X, 1, 2)),
        ]
    )
    # Its first read precedes T2's append and its second follows it: a G-single too.
    assert report.kinds() == {"internal": 1, "G-single": 1}
    assert only(report, "internal") == ("T3",)


def test_reading_an_element_before_appending_it_is_reported_as_future_read() -> None:
    report = check([txn("T1", r(X, 1), a(X, 1))])
    assert report.kinds() == {"future-read": 1}
    assert only(report, "future-read") == ("T1",)


def test_element_nobody_appended_is_reported_as_garbage_read() -> None:
    report = check([txn("T1", a(X, 1)), txn("T2", r(X, 1, 7))])
    assert report.kinds() == {"garbage-read": 1}
    assert only(report, "garbage-read") == ("T2",)


# --- outcomes ------------------------------------------------------------------------------


def test_info_transactions_whose_appends_are_seen_count_as_committed() -> None:
    history = [
        txn("I", a(X, 1), a(Y, 1), outcome="info"),
        txn("T2", a(X, 2), a(Y, 2)),
        txn("T3", r(X, 1, 2), r(Y, 2, 1)),
    ]
    report = check(history)
    assert report.kinds() == {"G0": 1}
    assert only(report, "G0") == ("I", "T2")
    # the same observations of a transaction known to have failed are aborted reads
    failed = check([txn("I", a(X, 1), a(Y, 1), outcome="fail"), *history[1:]])
    assert failed.kinds() == {"G1a": 2}


def test_info_transactions_whose_appends_are_never_seen_are_ignored() -> None:
    # Were I committed, T1 -rw(x)-> I -rw(y)-> T1 would be write skew.
    report = check(
        [
            txn("I", r(Y), a(X, 5), outcome="info"),
            txn("T1", r(X), a(Y, 1)),
            txn("T2", r(Y, 1)),
        ]
    )
    assert report.ok, report.summary()
    assert report.transactions == 3


def test_reads_of_info_and_failed_transactions_are_not_trusted() -> None:
    report = check(
        [
            txn("F", r(X, 9, 8, 7), a(Y, 5), outcome="fail"),
            txn("I", r(X, 42), Read(Y, None), outcome="info"),
            txn("T1", a(X, 1)),
            txn("T2", r(X, 1), r(Y)),
        ]
    )
    assert report.ok, report.summary()
    assert report.transactions == 3


def test_a_value_appended_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="appended to key 0 twice"):
        check([txn("T1", a(X, 1)), txn("T2", a(X, 1))])


# --- the report ----------------------------------------------------------------------------


def test_summary_counts_every_kind_and_shows_a_few_examples() -> None:
    history = [txn(f"F{i}", a(X, i), outcome="fail") for i in range(5)]
    history.append(txn("T", r(X, 0, 1, 2, 3, 4)))
    report = check(history)
    assert report.kinds() == {"G1a": 5}
    assert not report.ok
    summary = report.summary()
    assert summary.splitlines()[0] == "checked 1 transactions: 5 anomalies (G1a: 5)"
    assert "G1a (5):" in summary
    assert summary.count("aborted read") == 3
    assert "... and 2 more" in summary
    assert check([]).summary() == "checked 0 transactions: no anomalies"


# --- JSON lines ----------------------------------------------------------------------------


def test_jsonl_round_trip_appends_batches(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    history = serial_history(seed=4, n=200)
    write_jsonl(path, history[:120])
    write_jsonl(path, history[120:])
    assert read_jsonl(path) == history
    first = path.read_text().splitlines()[0]
    assert first.startswith('{"id": "c0-0", "process": "c0", "outcome": ')


def test_jsonl_line_format_is_the_documented_one(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    write_jsonl(path, [Txn("n2-c1-17", "n2-c1", (r(3, 1, 2), Read(4, None), a(3, 7)), "ok")])
    assert path.read_text() == (
        '{"id": "n2-c1-17", "process": "n2-c1", "outcome": "ok", '
        '"ops": [["r", 3, [1, 2]], ["r", 4, null], ["append", 3, 7]]}\n'
    )


def test_jsonl_drops_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    history = serial_history(seed=6, n=50)
    write_jsonl(path, history)
    with path.open("ab") as f:  # a writer killed in the middle of its line
        f.write(b'{"id": "c9-99", "process": "c9", "outcome": "ok", "ops": [["r", 3, [1, ')
    assert read_jsonl(path) == history


def test_jsonl_refuses_a_malformed_line_before_the_end(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    write_jsonl(path, serial_history(seed=7, n=3))
    text = path.read_text().splitlines(keepends=True)
    path.write_text(text[0] + '{"id": "torn\n' + "".join(text[1:]))
    with pytest.raises(ValueError, match=":2: malformed history line"):
        read_jsonl(path)


def test_jsonl_writers_appending_at_once_keep_their_lines_whole(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    batches = [
        [
            Txn(f"w{w}-{i}", f"w{w}", (r(X, *range(i % 50)), a(Y, w * 1000 + i)), "ok")
            for i in range(300)
        ]
        for w in range(4)
    ]

    def write_one_by_one(batch: list[Txn]) -> None:
        for t in batch:
            write_jsonl(path, [t])

    writers = [threading.Thread(target=write_one_by_one, args=(batch,)) for batch in batches]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    back = read_jsonl(path)
    assert sorted(back, key=lambda t: t.id) == sorted(sum(batches, []), key=lambda t: t.id)
    for w, batch in enumerate(batches):  # each writer's own lines stay in its order
        assert [t for t in back if t.process == f"w{w}"] == batch

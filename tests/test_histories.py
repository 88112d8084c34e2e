"""Jepsen-style evidence: concurrent histories checked for anomalies, with faults.

Clients (tests/jepsen_worker.py) run Elle's list-append, a bank and a uniqueness race,
recording what they saw; :mod:`history_checker` infers the dependency graph of the
list-append history and reports G0, G1a, G1b, G1c, G-single and G2. Beyond the graph,
every run checks what a client was promised: every acknowledged append is in the final
lists, no transaction is partly visible, every total read saw the invariant, each claimed
key was won exactly once, and all nodes (and a replica rebuilt from the log) agree.

- On both backends, in-process threads (two nodes in one process on Kafka): SERIALIZABLE
  histories have no anomaly; SNAPSHOT histories have no anomaly but G2 (write skew);
  with certification weakened by the test-only switch, the checker reports anomalies.
- Node processes under faults: kill -9 at random instants and restart, on both
  backends; on Kafka also the broker stalled (SIGSTOP/SIGCONT) and a node cut off
  (SIGSTOP/SIGCONT of the node).

The default run is scaled down; ``-m slow`` runs the long versions.
"""

from __future__ import annotations

import functools
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jepsen_worker
import pytest
from history_checker import Append, Report, Txn, check, read_jsonl
from jepsen_worker import ACCOUNTS, TOTAL
from kafka_broker import Broker
from netns import Network

import offsetdb
from offsetdb.materializers.applier import UNSAFE_SKIP_CHECKS_ENV
from offsetdb.query.database import replay

WORKER = Path(__file__).with_name("jepsen_worker.py")
BACKENDS = ["embedded", "kafka"]


# --- where a run's nodes live ------------------------------------------------------------


@dataclass
class Cluster:
    """A database and its nodes' targets: one embedded directory, or one Kafka topic with
    a replica directory per node."""

    backend: str
    base: str  # the embedded directory, or the kafka:// URL without a data directory
    tmp_path: Path

    def target(self, node: str) -> str:
        """What ``offsetdb.connect`` takes for ``node`` (every node is the one directory
        on the embedded backend)."""
        if self.backend == "embedded":
            return self.base
        return f"{self.base}?data_dir={self.tmp_path / ('replica-' + node)}"

    def settings(self) -> dict[str, Any]:
        return {"kafka_timeout": 3.0} if self.backend == "kafka" else {}

    def connect(self, node: str, **options: Any) -> Any:
        return offsetdb.connect(self.target(node), **self.settings(), **options)


@pytest.fixture(params=BACKENDS)
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Cluster:
    if request.param == "embedded":
        return Cluster("embedded", str(tmp_path / "db"), tmp_path)
    broker: Broker = request.getfixturevalue("kafka_broker")
    request.getfixturevalue("kafka_settings")
    return Cluster("kafka", f"kafka://{broker.bootstrap}/t{uuid.uuid4().hex[:12]}", tmp_path)


@pytest.fixture
def out(tmp_path: Path) -> Path:
    directory = tmp_path / "history"
    directory.mkdir()
    return directory


# --- what a finished run must show ---------------------------------------------------------


@dataclass
class Outcome:
    """What the clients recorded and what the nodes hold at the end."""

    history: list[Txn]
    report: Report
    final_lists: dict[int, tuple[int, ...]]
    totals: list[dict[str, Any]]  # what each total-balance read saw
    claims: dict[str, list[tuple[int, str]]]  # per claiming client: (key, outcome) lines
    claim_rows: dict[int, str]  # the final claims table: key -> owner


def recorded_history(out: Path) -> list[Txn]:
    """Every client's transactions; a transaction's last line (its outcome) wins."""
    latest: dict[str, Txn] = {}
    for path in sorted(out.glob("*.jsonl")):
        for txn in read_jsonl(path):
            latest[txn.id] = txn
    return list(latest.values())


def recorded_lines(out: Path, suffix: str) -> dict[str, list[dict[str, Any]]]:
    lines: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(out.glob(f"*{suffix}")):
        entries = []
        for line in path.read_text().splitlines():
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # the torn last line of a killed process
        lines[path.name.removesuffix(suffix)] = entries
    return lines


def final_state(conn: Any) -> tuple[dict[int, tuple[int, ...]], dict[int, str], tuple[int, int]]:
    cur = conn.cursor()
    lists = {
        k: tuple(int(x) for x in v.split())
        for k, v in cur.execute("SELECT k, v FROM lists").fetchall()
    }
    claims = dict(cur.execute("SELECT k, owner FROM claims").fetchall())
    count, total = cur.execute("SELECT count(*), sum(balance) FROM accounts").fetchone()
    conn.rollback()
    return lists, claims, (count, int(total))


def collect(out: Path, conn: Any) -> Outcome:
    """Read the recorded history and the final state through ``conn``, and check both."""
    history = recorded_history(out)
    lists, claim_rows, bank = final_state(conn)
    assert bank == (ACCOUNTS, TOTAL), f"the bank's final total is off: {bank}"
    return Outcome(
        history,
        check(history),
        lists,
        totals=[e for entries in recorded_lines(out, ".totals").values() for e in entries],
        claims={
            process: [(e["k"], e["outcome"]) for e in entries]
            for process, entries in recorded_lines(out, ".claims").items()
        },
        claim_rows=claim_rows,
    )


def assert_promises_kept(outcome: Outcome) -> None:
    """Everything a client was told holds in the final state."""
    history, final = outcome.history, outcome.final_lists
    committed = [t for t in history if t.outcome == "ok"]
    assert any(any(isinstance(op, Append) for op in t.ops) for t in committed), (
        "no append was acknowledged: the run proved nothing"
    )
    for txn in history:
        appends = [op for op in txn.ops if isinstance(op, Append)]
        present = [op.value in final.get(op.key, ()) for op in appends]
        if txn.outcome == "ok":
            assert all(present), f"{txn.id} was acknowledged but lost appends: {txn.ops}"
        elif txn.outcome == "fail":
            assert not any(present), f"{txn.id} failed but its appends are visible: {txn.ops}"
        else:
            assert all(present) or not any(present), f"{txn.id} is partly visible: {txn.ops}"
    for key, values in final.items():
        assert len(values) == len(set(values)), f"key {key} holds a value twice: {values}"

    reads = [t for t in outcome.totals if "error" not in t]
    assert reads, "no total was read"
    broken = [t for t in reads if (t["total"], t["count"]) != (TOTAL, ACCOUNTS)]
    assert not broken, f"reads saw a broken invariant: {broken[:5]}"

    winners: dict[int, list[str]] = defaultdict(list)
    unknown: dict[int, list[str]] = defaultdict(list)
    for process, claims in outcome.claims.items():
        last = dict(claims)  # a claim's last line is its outcome
        for key, result in last.items():
            if result == "ok":
                winners[key].append(process)
            elif result == "info":
                unknown[key].append(process)
    assert outcome.claims, "no claim was made"
    claimants = Counter(key for claims in outcome.claims.values() for key in dict(claims))
    if len(outcome.claims) > 1:
        assert max(claimants.values()) > 1, "no key was contested: the race proved nothing"
    for key, processes in winners.items():
        assert len(processes) == 1, f"claim {key} was won by {processes}"
        assert outcome.claim_rows.get(key) == processes[0], (key, processes, outcome.claim_rows.get(key))
    for key, owner in outcome.claim_rows.items():
        assert owner in winners.get(key, []) + unknown.get(key, []), (
            f"claim {key} is held by {owner}, which was not told it won"
        )


def assert_no_anomalies(outcome: Outcome) -> None:
    assert outcome.report.ok, outcome.report.summary()
    assert_promises_kept(outcome)


# --- in-process runs: threads ----------------------------------------------------------------


def run_threads(
    cluster: Cluster,
    out: Path,
    *,
    nodes: list[str],
    mix: dict[str, int],
    budget: int,
    isolation: str = "SERIALIZABLE",
    seed: int = 1,
) -> Any:
    """Set up, run ``mix`` on every node with threads until each client's budget is
    spent, and return a connection (to the first node) that has applied everything."""
    first = cluster.connect(nodes[0])
    jepsen_worker.setup(first)
    threads = []
    for incarnation, name in enumerate(nodes, start=1):
        threads += jepsen_worker.start_clients(
            functools.partial(cluster.connect, name), name, incarnation, out, mix,
            seed=seed + incarnation, isolation=isolation, budget=budget,
        )  # fmt: skip
    for thread in threads:
        thread.join()
    if cluster.backend == "kafka":
        first.sync()
    return first


MIX = {"list": 4, "transfer": 1, "total": 1, "claim": 2}


def test_list_append_history_is_serializable(cluster: Cluster, out: Path) -> None:
    nodes = ["a"] if cluster.backend == "embedded" else ["a", "b"]
    mix = MIX if cluster.backend == "embedded" else {"list": 2, "transfer": 1, "total": 1, "claim": 1}
    conn = run_threads(cluster, out, nodes=nodes, mix=mix, budget=60)
    outcome = collect(out, conn)
    conn.close()
    assert_no_anomalies(outcome)
    # Not vacuous: clients did collide, and certification aborted some of them.
    outcomes = Counter(t.outcome for t in outcome.history)
    assert outcomes["ok"] > 50 and outcomes["fail"] > 0, outcomes
    assert outcome.report.transactions >= outcomes["ok"]


@pytest.mark.slow
def test_long_list_append_history_is_serializable(tmp_path: Path, out: Path) -> None:
    cluster = Cluster("embedded", str(tmp_path / "db"), tmp_path)
    conn = run_threads(cluster, out, nodes=["a"], mix={**MIX, "list": 8}, budget=1500)
    outcome = collect(out, conn)
    conn.close()
    print(outcome.report.summary(), Counter(t.outcome for t in outcome.history))  # -s
    assert_no_anomalies(outcome)


def test_snapshot_history_shows_write_skew_and_nothing_worse(cluster: Cluster, out: Path) -> None:
    nodes = ["a"] if cluster.backend == "embedded" else ["a", "b"]
    conn = run_threads(
        cluster, out, nodes=nodes, mix={"list": 4, "total": 1}, budget=60, isolation="SNAPSHOT"
    )
    report = collect(out, conn).report
    conn.close()
    # Snapshot isolation admits G2 (write skew), and the checker finds it; and nothing
    # else: reads come from one snapshot (no G-single), and of two concurrent writers of
    # a key one aborts (no lost append, no G0 or G1).
    assert set(report.kinds()) == {"G2"}, report.summary()


@pytest.mark.parametrize(
    ("isolation", "skipped"),
    [("SERIALIZABLE", "read-write"), ("SNAPSHOT", "write-write")],
)
def test_checker_reports_anomalies_when_certification_is_weakened(
    cluster: Cluster, out: Path, isolation: str, skipped: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(UNSAFE_SKIP_CHECKS_ENV, skipped)
    nodes = ["a"] if cluster.backend == "embedded" else ["a", "b"]
    conn = run_threads(cluster, out, nodes=nodes, mix={"list": 6}, budget=80, isolation=isolation)
    conn.close()
    report = check(recorded_history(out))
    assert not report.ok, "certification was weakened, yet the checker found nothing"
    print(report.summary())  # shown with -s
    kinds = set(report.kinds())
    if skipped == "read-write":
        # SERIALIZABLE without its read-write check is snapshot isolation: write skew.
        assert "G2" in kinds, report.summary()
    else:
        # No check at all: concurrent appends overwrite each other, so reads disagree
        # on a key's order, and cycles run through the lost writes.
        assert "incompatible-order" in kinds, report.summary()
        assert kinds - {"incompatible-order", "G2"}, report.summary()


# --- node processes under faults -------------------------------------------------------------


class Nodes:
    """Node processes running tests/jepsen_worker.py, and the faults done to them."""

    def __init__(
        self,
        cluster: Cluster,
        out: Path,
        env: dict[str, str],
        mix: str,
        budget: int,
        pace: float,
        network: Network | None,
    ) -> None:
        self.cluster, self.out, self.env, self.mix = cluster, out, env, mix
        self.budget, self.pace, self.network = budget, pace, network
        self.procs: dict[str, subprocess.Popen[str]] = {}
        self.incarnations = 0
        self.faults: list[str] = []
        self._stderr = out.parent / "nodes.stderr"  # kept for a post-mortem
        self._stderr_file = self._stderr.open("a")

    def start(self, name: str) -> None:
        self.incarnations += 1
        argv = [
            sys.executable, str(WORKER), "--url", self.cluster.target(name), "--node", name,
            "--incarnation", str(self.incarnations), "--out", str(self.out),
            "--seed", str(self.incarnations), "--mix", self.mix, "--budget", str(self.budget),
            "--pace", str(self.pace),
        ]  # fmt: skip
        if self.network is not None:  # the node runs in its own network namespace
            argv = self.network.namespaces[name].command(argv)
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=self._stderr_file, text=True, env=self.env
        )
        assert proc.stdout is not None
        first = proc.stdout.readline()
        if first.strip() != "ready":
            proc.kill()
            raise AssertionError(f"node {name} did not start: {first!r}; see {self._stderr}")
        self.procs[name] = proc

    def running(self) -> list[str]:
        return sorted(name for name, proc in self.procs.items() if proc.poll() is None)

    def kill_and_restart(self, name: str) -> None:
        proc = self.procs[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        self.faults.append(f"kill -9 {name}")
        self.start(name)

    def stall(self, name: str, seconds: float) -> None:
        proc = self.procs[name]
        proc.send_signal(signal.SIGSTOP)  # cut off: no traffic to or from the broker
        time.sleep(seconds)
        proc.send_signal(signal.SIGCONT)
        self.faults.append(f"SIGSTOP {name} for {seconds:.1f}s")

    def partition(self, name: str, seconds: float) -> None:
        assert self.network is not None
        link = self.network.namespaces[name]
        link.cut()  # the node runs on, unable to reach the broker or anyone
        time.sleep(seconds)
        link.heal()
        self.faults.append(f"partition {name} for {seconds:.1f}s")

    def finish(self, timeout: float) -> None:
        """Ask every client to stop, and wait for the nodes to exit cleanly."""
        (self.out / "stop").touch()
        deadline = time.monotonic() + timeout
        for name, proc in self.procs.items():
            try:
                code = proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                raise AssertionError(f"node {name} did not stop; see {self._stderr}") from None
            assert code == 0, f"node {name} exited with {code}; see {self._stderr}"

    def kill_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
                proc.wait()
        self._stderr_file.close()


def run_with_faults(
    cluster: Cluster,
    out: Path,
    rng: random.Random,
    *,
    nodes: list[str],
    faults: dict[str, Callable[[Nodes], None]],
    schedule: list[str],
    mix: str,
    budget: int,
    env: dict[str, str],
    pace: float = 0.0,
    network: Network | None = None,
) -> list[str]:
    """Start ``nodes``, do the faults of ``schedule`` at random moments while they work,
    then let them finish; returns the faults done, in order."""
    setup = cluster.connect(nodes[0])
    jepsen_worker.setup(setup)
    setup.close()
    running = Nodes(cluster, out, env, mix, budget, pace, network)
    try:
        for name in nodes:
            running.start(name)
        for fault in schedule:
            time.sleep(rng.uniform(0.3, 1.5))
            faults[fault](running)
        running.finish(timeout=90)
    finally:
        running.kill_all()
    return running.faults


def check_every_node(cluster: Cluster, out: Path, nodes: list[str]) -> None:
    """Each node, and a replica rebuilt from the log (a replay on the embedded backend),
    holds the same state; the history has no anomaly and every promise was kept."""
    print(run_summary(out))  # shown with -s: what the faults did to the clients
    if cluster.backend == "embedded":
        conn = cluster.connect(nodes[0])
        assert_no_anomalies(collect(out, conn))
        original = conn.state_digest()
        conn.close()
        assert replay(cluster.base, str(cluster.tmp_path / "replayed")) == original
        return
    digests = {}
    final = None  # the first node's sync marker: nothing is appended after it
    for name in [*nodes, "rebuilt"]:
        conn = cluster.connect(name)
        final = conn.sync() if final is None else conn.sync(final)
        outcome = collect(out, conn)
        assert_no_anomalies(outcome)
        digests[name] = conn.state_digest()
        conn.close()
    assert {d.applied_offset for d in digests.values()} == {final}, digests
    assert len(set(digests.values())) == 1, digests


def run_summary(out: Path) -> str:
    """One line on a run: transactions by outcome, unknown commits, re-reads at holes."""
    outcomes = Counter(t.outcome for t in recorded_history(out))
    stderr = (out.parent / "nodes.stderr").read_text(errors="replace")
    unknown = Counter(
        line.rsplit("settled: ", 1)[1]
        for line in stderr.splitlines()
        if "commit outcome unknown" in line
    )
    return (
        f"{out.parent.name}: list-append {dict(outcomes)}; 08007 settled {dict(unknown)}; "
        f"re-reads at a hole: {stderr.count('reading again from')}"
    )


def worker_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    return env


def kill_a_node(rng: random.Random) -> Callable[[Nodes], None]:
    return lambda nodes: nodes.kill_and_restart(rng.choice(nodes.running() or sorted(nodes.procs)))


def embedded_node_under_kills(tmp_path: Path, out: Path, seed: int, kills: int) -> None:
    cluster = Cluster("embedded", str(tmp_path / "db"), tmp_path)
    rng = random.Random(seed)
    done = run_with_faults(
        cluster, out, rng, nodes=["n0"], faults={"kill": kill_a_node(rng)},
        schedule=["kill"] * kills, mix="list=3,transfer=1,total=1,claim=2", budget=100_000,
        env=worker_env(),
    )  # fmt: skip
    assert done.count("kill -9 n0") == kills
    check_every_node(cluster, out, ["n0"])


def test_embedded_node_killed_at_random_moments_keeps_history_serializable(
    tmp_path: Path, out: Path
) -> None:
    embedded_node_under_kills(tmp_path, out, seed=7, kills=3)


@pytest.mark.slow
@pytest.mark.parametrize("round_", range(5))
def test_embedded_node_kill_soak(tmp_path: Path, out: Path, round_: int) -> None:
    embedded_node_under_kills(tmp_path, out, seed=100 + round_, kills=15)


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Broker]:
    """A broker of this test's own: stalling the shared one would stall other tests."""
    from kafka_broker import start_tansu

    broker = start_tansu(tmp_path)
    yield broker
    broker.stop()


def kafka_faults(
    rng: random.Random, broker: Broker, network: Network | None = None
) -> dict[str, Callable[[Nodes], None]]:
    def broker_stall(nodes: Nodes) -> None:
        seconds = rng.uniform(2.0, 5.0)
        broker.pause()
        time.sleep(seconds)
        broker.resume()
        nodes.faults.append(f"SIGSTOP broker for {seconds:.1f}s")

    def node_cut_off(nodes: Nodes) -> None:
        nodes.stall(rng.choice(nodes.running() or sorted(nodes.procs)), rng.uniform(2.0, 5.0))

    def partition(nodes: Nodes) -> None:
        nodes.partition(rng.choice(nodes.running() or sorted(nodes.procs)), rng.uniform(2.0, 6.0))

    faults = {"kill": kill_a_node(rng), "broker-stall": broker_stall, "node-cut-off": node_cut_off}
    if network is not None:
        faults["partition"] = partition
    return faults


def kafka_cluster(broker: Broker, tmp_path: Path) -> tuple[Cluster, dict[str, str]]:
    cluster = Cluster("kafka", f"kafka://{broker.bootstrap}/jepsen", tmp_path)
    env = worker_env(**{
        "OFFSETDB_KAFKA_" + name.upper().replace(".", "_"): value
        for name, value in broker.client_settings.items()
    })  # fmt: skip
    return cluster, env


def kafka_nodes_under_faults(
    broker: Broker,
    tmp_path: Path,
    out: Path,
    monkeypatch: pytest.MonkeyPatch,
    seed: int,
    extra: int,
    network: Network | None = None,
) -> None:
    """Three nodes; one fault of each kind in a random order, then ``extra`` more."""
    cluster, env = kafka_cluster(broker, tmp_path)
    for name, value in env.items():
        if name.startswith("OFFSETDB_KAFKA_"):
            monkeypatch.setenv(name, value)
    rng = random.Random(seed)
    faults = kafka_faults(rng, broker, network)
    nodes = ["n0", "n1", "n2"]
    if network is not None:
        for name in nodes:
            network.add_node(name)
    schedule = rng.sample(sorted(faults), len(faults)) + rng.choices(sorted(faults), k=extra)
    # The clients run until the schedule is done, paced and capped so that the log stays
    # within the ~1,000 records the test broker serves well (docs/kafka-compatibility.md).
    done = run_with_faults(
        cluster, out, rng, nodes=nodes, faults=faults, schedule=schedule,
        mix="list=2,transfer=1,total=1,claim=1", budget=120, pace=0.15, env=env,
        network=network,
    )  # fmt: skip
    assert len(done) == len(schedule), done
    check_every_node(cluster, out, nodes)


def test_kafka_nodes_under_kills_broker_stalls_and_cut_offs_keep_history_serializable(
    own_broker: Broker, tmp_path: Path, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kafka_nodes_under_faults(own_broker, tmp_path, out, monkeypatch, seed=11, extra=1)


@pytest.mark.slow
@pytest.mark.parametrize("round_", range(5))
def test_kafka_nodes_fault_soak(
    own_broker: Broker, tmp_path: Path, out: Path, monkeypatch: pytest.MonkeyPatch, round_: int
) -> None:
    kafka_nodes_under_faults(own_broker, tmp_path, out, monkeypatch, seed=200 + round_, extra=5)


@pytest.fixture
def network_and_broker(tmp_path: Path) -> Iterator[tuple[Network, Broker]]:
    """Network namespaces for the nodes, and a broker of this test's own they all reach."""
    from kafka_broker import start_tansu

    try:
        network = Network().create()
    except RuntimeError as e:
        pytest.fail(f"cannot partition nodes on this machine: {e}", pytrace=False)
    try:
        broker = start_tansu(tmp_path, advertised_host=Network.broker_ip)
        try:
            yield network, broker
        finally:
            broker.stop()
    finally:
        network.remove()


@pytest.mark.slow
@pytest.mark.parametrize("round_", range(3))
def test_kafka_nodes_partitioned_from_the_network_keep_history_serializable(
    network_and_broker: tuple[Network, Broker],
    tmp_path: Path,
    out: Path,
    monkeypatch: pytest.MonkeyPatch,
    round_: int,
) -> None:
    """Each node in its own network namespace; besides the other faults, a node's link
    is taken down for seconds while it runs on, then brought back."""
    network, broker = network_and_broker
    kafka_nodes_under_faults(
        broker, tmp_path, out, monkeypatch, seed=300 + round_, extra=4, network=network
    )

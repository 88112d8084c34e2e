"""Network namespaces for node processes, joined to the host by links that can be cut.

:class:`Network` puts the broker's address, ``10.213.255.1``, on the host's loopback
interface (no link of a node carries it, so cutting one leaves it reachable), and gives each node a namespace (``ip netns``) joined to the host by a veth pair:
host end ``10.213.<n>.1``, node end ``10.213.<n>.2``, the node's default route through
the host end. A broker that listens on every interface and advertises the broker address
(``kafka_broker.start_tansu(dir, advertised_host=network.broker_ip)``) is reachable from
every namespace and from the host.

Taking a node's host end down is a network partition as that node sees it: packets
vanish, no connection is reset, and nothing tells the node until its timeouts run out;
bringing it up heals it. Needs root (CAP_NET_ADMIN) and iproute2; :func:`require_netns`
says so clearly when they are missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid


def require_netns() -> None:
    """Fail with the reason when this machine cannot make network namespaces."""
    if shutil.which("ip") is None:
        raise RuntimeError("network partitions need iproute2's `ip` command, which is not installed")
    if os.geteuid() != 0:
        raise RuntimeError("network partitions need root (CAP_NET_ADMIN) for `ip netns`")


def _ip(*args: str) -> None:
    completed = subprocess.run(["ip", *args], capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"`ip {' '.join(args)}` failed: {completed.stderr.strip()}")


class NetworkNamespace:
    """One node's namespace and its veth link to the host."""

    def __init__(self, name: str, host_link: str, number: int) -> None:
        self.name = name
        self.host_link = host_link
        self.host_ip = f"10.213.{number}.1"
        self.node_ip = f"10.213.{number}.2"

    def _create(self) -> None:
        node_link = "odbn" + self.host_link[4:]  # interface names: at most 15 characters
        _ip("netns", "add", self.name)
        _ip("link", "add", self.host_link, "type", "veth", "peer", "name", node_link)
        _ip("link", "set", node_link, "netns", self.name)
        _ip("addr", "add", f"{self.host_ip}/30", "dev", self.host_link)
        _ip("link", "set", self.host_link, "up")
        inside = ("netns", "exec", self.name, "ip")
        _ip(*inside, "addr", "add", f"{self.node_ip}/30", "dev", node_link)
        _ip(*inside, "link", "set", node_link, "up")
        _ip(*inside, "link", "set", "lo", "up")
        _ip(*inside, "route", "add", "default", "via", self.host_ip)

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run inside the namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    def cut(self) -> None:
        """Partition the node from everything else: its link goes down."""
        _ip("link", "set", self.host_link, "down")

    def heal(self) -> None:
        """End the partition."""
        _ip("link", "set", self.host_link, "up")


class Network:
    """The broker's address on the host, and a namespace per node."""

    broker_ip = "10.213.255.1"

    def __init__(self) -> None:
        self._tag = uuid.uuid4().hex[:6]
        self._address_added = False
        self.namespaces: dict[str, NetworkNamespace] = {}

    def create(self) -> Network:
        """Put the broker's address on the host."""
        require_netns()
        _ip("addr", "add", f"{self.broker_ip}/32", "dev", "lo")
        self._address_added = True
        return self

    def add_node(self, node: str) -> NetworkNamespace:
        """A namespace of its own for ``node``."""
        number = len(self.namespaces)
        namespace = NetworkNamespace(
            f"odb-{self._tag}-{number}", f"odbh{self._tag}{number}", number
        )
        self.namespaces[node] = namespace
        namespace._create()
        return namespace

    def remove(self) -> None:
        """Delete every namespace (their veth pairs go with them) and the broker's address."""
        for namespace in self.namespaces.values():
            subprocess.run(["ip", "netns", "del", namespace.name], capture_output=True)
        self.namespaces.clear()
        if self._address_added:
            subprocess.run(["ip", "addr", "del", f"{self.broker_ip}/32", "dev", "lo"], capture_output=True)
            self._address_added = False

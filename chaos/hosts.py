"""Worker hosts for `make chaos --hosts N`: one Linux network namespace per worker group.

Host N is the namespace `chaos-hN`, joined to the machine by a veth pair: `chaos-hN` on the
machine's side with 10.77.N.1/24, `eth0` inside with 10.77.N.2/24 and its default route
through 10.77.N.1. A namespace has a loopback of its own, so its workers reach the services
only through that link: PostgreSQL through a TCP relay on 10.77.N.1 (the machine's server
listens on 127.0.0.1 and is left alone), the run's private Redis, RabbitMQ and simulator by
listening on the gateway addresses too.

Cutting a host off: a static neighbour entry on both ends of its link points at a MAC
address nobody has, so every frame either side sends is dropped by the other end, as in a
network partition: connections hang instead of failing, and new ones time out. Routes and
addresses stay as they are, so the other hosts are untouched. (iptables and tc drop rules are
not available on every kernel; this needs only iproute2.) Healing deletes the entries and
ARP finds the real addresses again.

Root is needed; everything created is removed by `Network.down()`, also after a failure.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

SUBNET = "10.77"
NOWHERE_MAC = "02:00:00:00:77:01"  # locally administered, owned by no interface
# Connections of a worker host give up on a silent peer within seconds instead of the kernel's
# fifteen minutes of retransmissions: libpq options (the relay's sockets get the same).
KEEPALIVE = {"idle": 5, "interval": 2, "count": 3}
USER_TIMEOUT_MS = 10_000
PG_OPTIONS = (
    f"connect_timeout=5&keepalives=1&keepalives_idle={KEEPALIVE['idle']}"
    f"&keepalives_interval={KEEPALIVE['interval']}&keepalives_count={KEEPALIVE['count']}"
    f"&tcp_user_timeout={USER_TIMEOUT_MS}"
)


@dataclass(frozen=True)
class Host:
    """One worker host: its namespace, the machine-side link and both addresses."""

    n: int

    @property
    def name(self) -> str:
        return f"host{self.n}"

    @property
    def netns(self) -> str:
        return f"chaos-h{self.n}"

    @property
    def link(self) -> str:  # the machine's end of the veth pair (the namespace's end is eth0)
        return f"chaos-h{self.n}"

    @property
    def gateway(self) -> str:
        return f"{SUBNET}.{self.n}.1"

    @property
    def address(self) -> str:
        return f"{SUBNET}.{self.n}.2"

    def exec_argv(self, argv: Sequence[str]) -> list[str]:
        """`argv` run inside the namespace (ip execs it: same pid, same process group)."""
        return ["ip", "netns", "exec", self.netns, *argv]


def hosts(count: int) -> list[Host]:
    if not 1 <= count <= 9:
        raise ValueError("between 1 and 9 hosts")
    return [Host(n) for n in range(1, count + 1)]


def up_commands(host: Host) -> list[list[str]]:
    ns = host.netns
    return [
        ["ip", "netns", "add", ns],
        ["ip", "link", "add", host.link, "type", "veth", "peer", "name", "eth0", "netns", ns],
        ["ip", "addr", "add", f"{host.gateway}/24", "dev", host.link],
        ["ip", "link", "set", host.link, "up"],
        ["ip", "-n", ns, "link", "set", "lo", "up"],
        ["ip", "-n", ns, "addr", "add", f"{host.address}/24", "dev", "eth0"],
        ["ip", "-n", ns, "link", "set", "eth0", "up"],
        ["ip", "-n", ns, "route", "add", "default", "via", host.gateway],
    ]


def down_commands(host: Host) -> list[list[str]]:
    # Deleting one end of a veth pair deletes both; the namespace goes with its last process.
    return [["ip", "link", "del", host.link], ["ip", "netns", "del", host.netns]]


def cut_commands(host: Host) -> list[list[str]]:
    nowhere = ["lladdr", NOWHERE_MAC, "nud", "permanent"]
    return [
        ["ip", "neigh", "replace", host.address, *nowhere, "dev", host.link],
        ["ip", "-n", host.netns, "neigh", "replace", host.gateway, *nowhere, "dev", "eth0"],
    ]


def heal_commands(host: Host) -> list[list[str]]:
    return [
        ["ip", "neigh", "del", host.address, "dev", host.link],
        ["ip", "-n", host.netns, "neigh", "del", host.gateway, "dev", "eth0"],
    ]


def rewrite_url(url: str, address: str, *, port: int | None = None) -> str:
    """`url` with its host replaced by `address` (and its port by `port`), user and path kept."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{address}:{port or parts.port}" if (port or parts.port) else address
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{netloc}" if userinfo else netloc))


def host_env(env: Mapping[str, str], host: Host, *, pg_port: int) -> dict[str, str]:
    """The environment of a process on `host`: every service URL through its gateway, and the
    database connection with keepalives and a user timeout (a cut link must not hang it)."""
    out = dict(env)
    db = rewrite_url(env["DATABASE_URL"], host.gateway, port=pg_port)
    out["DATABASE_URL"] = db + ("&" if "?" in db else "?") + PG_OPTIONS
    for key in ("CELERY_BROKER_URL", "CACHE_URL"):
        out[key] = rewrite_url(env[key], host.gateway)
    out["CHAOS_HOST"] = host.name
    return out


def relay_argv(host: Host, *, listen_port: int, target: tuple[str, int]) -> list[str]:
    """socat forwarding the gateway's `listen_port` to a server of this machine (PostgreSQL on
    127.0.0.1, the private RabbitMQ node), one child per connection; keepalives and a user
    timeout on the host's side, so a connection to a cut host ends (and the server rolls its
    transaction back, or requeues its messages) instead of holding on."""
    tcp = (
        f"keepalive,keepidle={KEEPALIVE['idle']},keepintvl={KEEPALIVE['interval']},keepcnt={KEEPALIVE['count']},"
        f"setsockopt-int={socket.IPPROTO_TCP}:{socket.TCP_USER_TIMEOUT}:{USER_TIMEOUT_MS},nodelay"
    )
    listen = f"TCP4-LISTEN:{listen_port},bind={host.gateway},reuseaddr,fork,{tcp}"
    return ["socat", listen, f"TCP4:{target[0]}:{target[1]},nodelay"]


def run(argv: Sequence[str], *, check: bool = True) -> None:
    result = subprocess.run(list(argv), capture_output=True, text=True, timeout=30, check=False)  # noqa: S603
    if check and result.returncode:
        raise RuntimeError(f"{' '.join(argv)}: {result.stderr.strip() or result.returncode}")


@dataclass
class HostCut:
    """What the host cut fault did, for its check."""

    host: str
    worker: str
    in_flight: list[int]  # orders whose submit task the worker was running when cut off
    started: float  # wall clock
    ended: float  # reconnected and answering again (or given up waiting)


class Network:
    """The namespaces and links of the run's hosts; `down()` removes whatever exists of them."""

    def __init__(self, count: int) -> None:
        self.hosts = hosts(count)

    def up(self) -> None:
        self.down()  # what a killed earlier run may have left
        for host in self.hosts:
            for argv in up_commands(host):
                run(argv)

    def down(self) -> None:
        for host in self.hosts:
            for argv in down_commands(host):
                with contextlib.suppress(Exception):
                    run(argv, check=False)

    def cut(self, host: Host) -> None:
        for argv in cut_commands(host):
            run(argv)

    def heal(self, host: Host) -> None:
        for argv in heal_commands(host):
            run(argv, check=False)

"""The outbound-URL guard: the panel calls only public addresses, and connects to the one it checked.

Provider URLs are typed by staff, and a provider's DNS is controlled by the provider, so
both could point the panel's requests inside its own network (SSRF). Two rules:

- An address is public only if it is globally routable and does not embed a loopback,
  private, link-local, reserved, multicast or unspecified IPv4 address: IPv4-mapped,
  IPv4-compatible (`::127.0.0.1`), IPv4-translated, NAT64 (`64:ff9b::/96`, and the
  local-use `64:ff9b:1::/48` entirely), 6to4 (`2002::/16`), Teredo and ISATAP forms are
  unpacked and checked too. IPv4 hosts in the old numeric notations (`2130706433`,
  `0177.0.0.1`, `0x7f.1`, `127.1`) are read the way the C library reads them.
- A host name is resolved once per connection, every answer is checked, and the socket
  is opened to a checked answer: resolving again to connect would let a short-lived DNS
  record answer a public address to the check and a private one to the connection
  (rebinding). TLS still verifies the certificate for, and sends SNI and Host with, the
  name in the URL.

Framework-free (no Django): `GuardedAdapter` is mounted on a requests session.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import create_connection

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
# Not globally reachable by definition, whatever Python's tables say.
_ALWAYS_REFUSED = (
    ipaddress.IPv6Network("64:ff9b:1::/48"),  # local-use NAT64 (RFC 8215)
    ipaddress.IPv4Network("0.0.0.0/8"),
    ipaddress.IPv4Network("100.64.0.0/10"),  # carrier-grade NAT
)
_NUMERIC_IPV4_CHARS = frozenset("0123456789abcdefxABCDEFX.")


class AddressRefused(Exception):
    """The host is, or resolves to, an address the panel must not call."""


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    value = int(address)
    low32 = ipaddress.IPv4Address(value & 0xFFFFFFFF)
    found: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    if value >> 32 == 0 or value >> 32 == 0xFFFF0000:
        found.append(low32)  # IPv4-compatible, IPv4-translated
    if (value >> 32) & 0xFDFFFFFF == 0x00005EFE:
        found.append(low32)  # ISATAP interface identifier
    return found


def address_refusal(address: IPAddress) -> str | None:
    """Why the panel must not call this address, or None when it is public."""
    if isinstance(address, ipaddress.IPv6Address) and address in _NAT64_WELL_KNOWN:
        # An IPv6-only host reaches IPv4 providers through NAT64: the IPv4 address decides.
        inner = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        why = address_refusal(inner)
        return None if why is None else f"an IPv6 address embedding {inner}, {why}"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private:
        return "a private address"
    if address.is_reserved:
        return "a reserved address"
    if any(address in network for network in _ALWAYS_REFUSED) or not address.is_global:
        return "an address that is not public"
    if isinstance(address, ipaddress.IPv6Address):
        for inner in _embedded_ipv4(address):
            why = address_refusal(inner)
            if why is not None:
                return f"an IPv6 address embedding {inner}, {why}"
    return None


def host_address(host: str) -> IPAddress | None:
    """The address a host names literally (any notation the C library accepts), or None for a name."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and set(host) <= _NUMERIC_IPV4_CHARS and any(ch.isdigit() for ch in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def resolve_checked(host: str, port: int, *, allow_private: bool) -> list[tuple[int, IPAddress]]:
    """Resolve `host` once and return (family, address) answers to connect to, in order.

    Raises AddressRefused when any answer is not public (unless `allow_private`): a name
    that mixes public and private answers is refused as a whole. Raises socket.gaierror
    when the name does not resolve.
    """
    literal = host_address(host)
    if literal is not None:
        answers: list[tuple[int, IPAddress]] = [(socket.AF_INET6 if literal.version == 6 else socket.AF_INET, literal)]
    else:
        answers = []
        for family, _type, _proto, _canon, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
            address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            if (family, address) not in answers:
                answers.append((family, address))
    if not answers:
        raise socket.gaierror(socket.EAI_NONAME, "no address")
    if not allow_private:
        for _family, address in answers:
            why = address_refusal(address)
            if why is not None:
                raise AddressRefused(f"{host} is {why}" if literal is not None else f"{host} resolves to {why}")
    return answers


class AddressRefusedError(NewConnectionError):
    """urllib3's form of AddressRefused: the connection was never attempted."""

    def __init__(self, conn: Any, refusal: str) -> None:
        self.refusal = refusal
        super().__init__(conn, f"refused by the outbound address guard: {refusal}")


class _GuardedConnectionMixin:
    allow_private = False
    # Provided by urllib3's HTTPConnection.
    _dns_host: str
    host: str
    port: int
    timeout: Any
    source_address: Any
    socket_options: Any

    def _new_conn(self) -> socket.socket:
        try:
            answers = resolve_checked(self._dns_host, self.port, allow_private=self.allow_private)
        except AddressRefused as exc:
            raise AddressRefusedError(self, str(exc)) from exc
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc  # type: ignore[arg-type]
        error: OSError | None = None
        for _family, address in answers:
            try:
                # A literal address: create_connection makes no DNS query for it.
                return create_connection(
                    (str(address), self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except TimeoutError as exc:
                raise ConnectTimeoutError(
                    self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
                ) from exc
            except OSError as exc:
                error = exc
        raise NewConnectionError(self, f"Failed to establish a new connection: {error}")  # type: ignore[arg-type]


class GuardedAdapter(HTTPAdapter):
    """A requests transport that calls only checked public addresses (see the module's doc)."""

    def __init__(self, *, allow_private: bool = False, **kwargs: Any) -> None:
        self.allow_private = allow_private
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        attrs = {"allow_private": self.allow_private}
        http_conn = type("GuardedHTTPConnection", (_GuardedConnectionMixin, HTTPConnection), attrs)
        https_conn = type("GuardedHTTPSConnection", (_GuardedConnectionMixin, HTTPSConnection), attrs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("GuardedHTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
            "https": type("GuardedHTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}),
        }

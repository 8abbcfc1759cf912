"""Tests reach only this machine: loopback and unix sockets, never an outside address or name."""

from __future__ import annotations

import re
import socket
import tempfile
import threading
from pathlib import Path

import pytest
import requests
from pytest_socket import SocketBlockedError, SocketConnectBlockedError

from providers.client import ProviderClient

pytestmark = pytest.mark.filterwarnings("ignore:A test tried to:UserWarning")  # pytest-socket warns as it refuses

TEST_NET = "192.0.2.1"  # TEST-NET-1 (RFC 5737): never routed


def test_a_connection_to_an_outside_address_is_refused():
    with socket.socket() as sock, pytest.raises(SocketConnectBlockedError, match=re.escape(TEST_NET)):
        sock.connect((TEST_NET, 80))


def test_an_http_request_to_an_outside_address_is_refused():
    with pytest.raises(SocketConnectBlockedError, match=re.escape(TEST_NET)):
        requests.get(f"http://{TEST_NET}/", timeout=1)


def test_resolving_a_public_name_is_refused():
    with pytest.raises(SocketBlockedError, match=re.escape("example.com")):
        socket.getaddrinfo("example.com", 443)
    with pytest.raises(SocketBlockedError, match=re.escape("example.com")):
        socket.gethostbyname("example.com")


def test_an_http_request_to_a_public_name_is_refused_before_any_lookup():
    with pytest.raises(SocketBlockedError, match=re.escape("example.com")):
        requests.get("https://example.com/", timeout=1)


def test_the_provider_client_cannot_reach_an_outside_provider():
    client = ProviderClient(url="https://provider.example.com/api/v2", key="k", connect_timeout=1, read_timeout=1)
    with pytest.raises(SocketBlockedError, match=re.escape("provider.example.com")):
        client.balance()


def _serve_once(server: socket.socket) -> threading.Thread:
    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(b"ok")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize(("family", "host"), [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET, "localhost")])
def test_loopback_connections_are_allowed(family, host):
    with socket.socket(family) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        thread = _serve_once(server)
        with socket.create_connection((host, server.getsockname()[1]), timeout=5) as client:
            assert client.recv(2) == b"ok"
        thread.join(5)


def test_ipv6_loopback_connections_are_allowed():
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        server = socket.socket(socket.AF_INET6)
        server.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    with server:
        server.listen(1)
        thread = _serve_once(server)
        with socket.create_connection(("::1", server.getsockname()[1]), timeout=5) as client:
            assert client.recv(2) == b"ok"
        thread.join(5)


def test_unix_socket_connections_are_allowed():
    with tempfile.TemporaryDirectory() as folder, socket.socket(socket.AF_UNIX) as server:
        path = str(Path(folder) / "s")
        server.bind(path)
        server.listen(1)
        thread = _serve_once(server)
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(5)
            client.connect(path)
            assert client.recv(2) == b"ok"
        thread.join(5)

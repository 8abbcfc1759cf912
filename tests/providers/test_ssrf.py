import ipaddress
import re
import socket
from urllib.parse import urlsplit

import pytest
from django.core.exceptions import ValidationError

from kernel import outbound
from providers.client import NotSent, ProviderClient
from providers.models import ProviderCall
from providers.services import provider_client, provider_url_validate
from tests.factories import ProviderFactory


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8900/api/v2",
        "http://localhost/api/v2",
        "http://10.0.0.5/api/v2",
        "http://192.168.1.1/api/v2",
        "http://172.16.0.1/api/v2",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/api/v2",
        "http://0.0.0.0/api/v2",
    ],
)
def test_private_addresses_are_refused_in_production(url):
    with pytest.raises(ValidationError):
        provider_url_validate(url=url, allow_private=False)


@pytest.mark.parametrize("url", ["ftp://provider.example/api", "file:///etc/passwd", "gopher://x", "http:///nohost"])
def test_only_http_and_https_are_accepted(url):
    with pytest.raises(ValidationError):
        provider_url_validate(url=url, allow_private=True)


def test_public_address_is_accepted():
    provider_url_validate(url="http://93.184.216.34/api/v2", allow_private=False)


def test_development_setting_allows_the_local_simulator():
    provider_url_validate(url="http://127.0.0.1:8900/api/v2", allow_private=True)


def test_client_factory_refuses_private_url_in_production(settings, db):
    from providers.services import provider_client
    from tests.factories import ProviderFactory

    settings.PROVIDERS_ALLOW_PRIVATE_URLS = False
    with pytest.raises(ValidationError):
        provider_client(provider=ProviderFactory(api_url="http://127.0.0.1:8900/api/v2"))


# --- addresses in every disguise ---------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "http://[::127.0.0.1]/api/v2",  # IPv4-compatible
        "http://[::ffff:127.0.0.1]/api/v2",  # IPv4-mapped
        "http://[::ffff:0:7f00:1]/api/v2",  # IPv4-translated
        "http://[::ffff:10.0.0.5]/api/v2",
        "http://[64:ff9b::7f00:1]/api/v2",  # NAT64 of 127.0.0.1
        "http://[64:ff9b::a9fe:a9fe]/api/v2",  # NAT64 of 169.254.169.254
        "http://[64:ff9b:1::5db8:d822]/api/v2",  # local-use NAT64
        "http://[2002:7f00:1::]/api/v2",  # 6to4 of 127.0.0.1
        "http://[2002:c0a8:101::1]/api/v2",  # 6to4 of 192.168.1.1
        "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/api/v2",  # Teredo, client 127.0.0.1
        "http://[fe80::1%25eth0]/api/v2",
        "http://[fc00::1]/api/v2",
        "http://[ff02::1]/api/v2",
        "http://[::]/api/v2",
        "http://2130706433/api/v2",  # 127.0.0.1 in decimal
        "http://0177.0.0.1/api/v2",  # octal
        "http://0x7f.1/api/v2",  # hexadecimal, short
        "http://127.1/api/v2",  # short
        "http://0/api/v2",
        "http://100.64.0.1/api/v2",  # carrier-grade NAT
        "http://224.0.0.1/api/v2",
        "http://240.0.0.1/api/v2",
    ],
)
def test_disguised_private_addresses_are_refused(url):
    with pytest.raises(ValidationError):
        provider_url_validate(url=url, allow_private=False)


@pytest.mark.parametrize(
    "address",
    ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "64:ff9b::5db8:d822", "2002:5db8:d822::1"],
)
def test_public_addresses_in_every_form_pass(address):
    assert outbound.address_refusal(ipaddress.ip_address(address)) is None


# --- one resolution, and the connection goes where the check looked ----------------------------
class FakeResolver:
    """Answers a public address first and 127.0.0.1 after (DNS rebinding)."""

    def __init__(self, answers: list[str]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def __call__(self, host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        if outbound.host_address(str(host)) is not None:
            return REAL_GETADDRINFO(host, port, *args, **kwargs)
        self.asked.append(host)
        address = self.answers[min(len(self.asked), len(self.answers)) - 1]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]


REAL_GETADDRINFO = socket.getaddrinfo


@pytest.fixture
def connects(monkeypatch):
    """Where the transport opens sockets; nothing leaves the machine."""
    seen: list[tuple[str, int]] = []

    def fake_create_connection(address, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(address)
        raise ConnectionRefusedError("test: no network")

    monkeypatch.setattr(outbound, "create_connection", fake_create_connection)
    return seen


def _client(url: str, **kwargs) -> ProviderClient:  # type: ignore[no-untyped-def]
    return ProviderClient(url=url, key="k", connect_timeout=1, read_timeout=1, **kwargs)


def test_the_connection_goes_to_the_address_that_was_checked(monkeypatch, connects):
    resolver = FakeResolver(["93.184.216.34", "127.0.0.1"])
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    with pytest.raises(NotSent):
        _client("http://rebind.example/api/v2").balance()
    assert resolver.asked == ["rebind.example"]  # resolved once
    assert connects == [("93.184.216.34", 80)]


def test_a_name_rebound_to_loopback_after_the_check_is_refused_at_call_time(monkeypatch, connects, settings, db):
    settings.PROVIDERS_ALLOW_PRIVATE_URLS = False
    resolver = FakeResolver(["93.184.216.34", "127.0.0.1"])
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    provider = ProviderFactory(api_url="http://rebind.example/api/v2")
    provider_url_validate(url=provider.api_url)  # staff saved it: the first answer was public
    with pytest.raises(NotSent, match=re.escape("address refused: rebind.example resolves to a loopback address")):
        provider_client(provider=provider).balance()
    assert connects == []
    call = ProviderCall.objects.get(provider=provider)
    assert call.outcome == "not_sent" and "address refused" in call.error


def test_a_name_with_any_private_answer_is_refused(monkeypatch, connects):
    def resolver(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::ffff:127.0.0.1", port, 0, 0)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    with pytest.raises(NotSent, match="address refused"):
        _client("https://mixed.example/api/v2").balance()
    assert connects == []


def test_the_pinned_connection_keeps_the_host_name_in_the_url(monkeypatch, simulator):
    # The simulator listens on 127.0.0.1; a name that resolves there reaches it by that name.
    port = urlsplit(simulator.url).port
    resolver = FakeResolver(["127.0.0.1"])
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    client = ProviderClient(url=f"http://provider.example:{port}/api/v2", key="test-key", allow_private_addresses=True)
    assert client.balance().currency
    assert resolver.asked == ["provider.example"]


def test_the_client_refuses_private_addresses_unless_told_otherwise(connects):
    with pytest.raises(NotSent, match=re.escape("address refused: 127.0.0.1 is a loopback address")):
        _client("http://127.0.0.1:9/api/v2").balance()
    assert connects == []

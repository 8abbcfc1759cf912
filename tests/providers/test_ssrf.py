import pytest
from django.core.exceptions import ValidationError

from providers.services import provider_url_validate


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

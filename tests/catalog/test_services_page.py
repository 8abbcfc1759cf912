"""The services page: grouped by category with platform icons, an order button per service,
and each customer's own favourites (POST with CSRF, only services on sale)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from django.test import Client
from django.urls import reverse

from catalog.models import Favourite
from catalog.platforms import platform_of
from tests.factories import CategoryFactory, ServiceFactory

pytestmark = pytest.mark.django_db


def test_services_are_grouped_by_category_with_icons_and_order_buttons(client):
    insta = CategoryFactory(name="Instagram Followers")
    tok = CategoryFactory(name="TikTok")
    a = ServiceFactory(name="Real followers", category=insta, price=D("2.134560"))
    b = ServiceFactory(name="Views", category=tok, price=D("0.004100"))
    package = ServiceFactory(name="Badge", category=tok, type="Package", price=D("18.876000"))
    body = client.get(reverse("catalog:services")).content.decode()
    assert body.index(f'id="group-{insta.pk}"') < body.index(f'id="group-{tok.pk}"')
    assert "bi-instagram" in body and "bi-tiktok" in body
    for service in (a, b, package):
        assert f'href="{reverse("orders:new")}?service={service.pk}"' in body
    # Money by the display rule, and what each price is for.
    assert ">2.13 USD</span>" in body and ">0.0041 USD</span>" in body
    assert '>18.88 USD</span> <span class="price-unit">per package</span>' in body


@pytest.mark.parametrize(
    ("names", "platform"),
    [
        (("Instagram Likes", ""), "instagram"),
        (("Misc", "TikTok views"), "tiktok"),
        (("YouTube", ""), "youtube"),
        (("Twitter / X", ""), "twitter-x"),
        (("Website traffic", ""), "globe"),
    ],
)
def test_platform_icons_come_from_the_category_then_the_service(names, platform):
    assert platform_of(*names) == platform


def test_a_favourite_is_starred_listed_first_and_unstarred(client, customer):
    first = ServiceFactory(name="First", category=CategoryFactory(name="A"))
    starred = ServiceFactory(name="Starred one", category=CategoryFactory(name="B"))
    client.force_login(customer)
    url = reverse("catalog:favourite", args=[starred.pk])
    response = client.post(url)
    assert response.status_code == 302
    assert list(Favourite.objects.filter(user=customer).values_list("service_id", flat=True)) == [starred.pk]
    body = client.get(reverse("catalog:services")).content.decode()
    assert body.index('id="group-favourites"') < body.index(first.name) < body.rindex(starred.name)
    assert f'data-favourite="{starred.pk}"' in body and 'aria-pressed="true"' in body
    assert f'form="favourite-form" formaction="{url}"' in body
    client.post(url)
    assert not Favourite.objects.filter(user=customer).exists()
    assert 'id="group-favourites"' not in client.get(reverse("catalog:services")).content.decode()


def test_favourites_are_each_customers_own(client, customer, other_customer):
    service = ServiceFactory()
    Favourite.objects.create(user=other_customer, service=service)
    client.force_login(customer)
    body = client.get(reverse("catalog:services")).content.decode()
    assert 'id="group-favourites"' not in body and 'aria-pressed="true"' not in body
    # Unstarring (the same toggle) touches only the caller's own row.
    client.post(reverse("catalog:favourite", args=[service.pk]))
    client.post(reverse("catalog:favourite", args=[service.pk]))
    assert Favourite.objects.filter(user=other_customer, service=service).exists()


def test_favourite_needs_post_login_csrf_and_a_service_on_sale(client, customer):
    service = ServiceFactory()
    hidden = ServiceFactory(is_enabled=False)
    url = reverse("catalog:favourite", args=[service.pk])
    assert client.post(url).status_code == 302 and "login" in client.post(url)["Location"]
    client.force_login(customer)
    assert client.get(url).status_code == 405
    assert client.post(reverse("catalog:favourite", args=[hidden.pk])).status_code == 404
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(customer)
    assert strict.post(url).status_code == 403
    assert not Favourite.objects.exists()


def test_favourite_redirects_only_to_this_site(client, customer):
    service = ServiceFactory()
    client.force_login(customer)
    response = client.post(reverse("catalog:favourite", args=[service.pk]), {"next": "https://evil.example/"})
    assert response["Location"] == reverse("catalog:services") + f"#service-{service.pk}"

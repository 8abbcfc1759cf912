from decimal import Decimal as D

import pytest
from django.urls import reverse

from tests.factories import CategoryFactory, ServiceFactory

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.mark.django_db
def test_healthz_ok_when_database_and_broker_answer(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": True, "broker": True}


@pytest.mark.django_db
def test_healthz_503_when_broker_is_down(client, monkeypatch):
    from smmpanel.celery import app

    real = app.connection_for_write
    # Nothing listens on port 1: the broker is unreachable.
    monkeypatch.setattr(app, "connection_for_write", lambda: real(url="redis://127.0.0.1:1/0"))
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["broker"] is False


@pytest.mark.django_db
def test_healthz_refuses_post(client):
    assert client.post("/healthz").status_code == 405


@pytest.mark.django_db
def test_services_page_lists_enabled_services_with_discounted_rate(client, customer):
    shown = ServiceFactory(name="Real followers", price=D("2.000000"), refill=True)
    ServiceFactory(name="Hidden one", is_enabled=False)
    response = client.get(reverse("catalog:services"))
    body = response.content.decode()
    assert "Real followers" in body and "Hidden one" not in body
    # Money for reading: two decimals, the currency, and what the rate is for.
    assert ">2.00 USD</span>" in body and "per 1000" in body
    customer.discount_percent = D("10")
    customer.save()
    client.force_login(customer)
    body = client.get(reverse("catalog:services")).content.decode()
    assert ">1.80 USD</span>" in body and ">2.00 USD</span>" not in body
    assert f">{shown.pk}<" in body.replace(" ", "").replace("\n", "")
    assert "Refill" in body


@pytest.mark.django_db
def test_services_page_search_and_category_filter(client):
    a = CategoryFactory(name="Instagram")
    b = CategoryFactory(name="TikTok")
    ServiceFactory(name="Insta likes", category=a)
    ServiceFactory(name="Tok views", category=b)
    body = client.get(reverse("catalog:services"), {"q": "likes"}).content.decode()
    assert "Insta likes" in body and "Tok views" not in body
    body = client.get(reverse("catalog:services"), {"category": b.pk}).content.decode()
    assert "Tok views" in body and "Insta likes" not in body


@pytest.mark.django_db
def test_hostile_upstream_text_is_escaped_on_the_services_page(client):
    ServiceFactory(name=HOSTILE, description=HOSTILE, category=CategoryFactory(name=HOSTILE))
    body = client.get(reverse("catalog:services")).content.decode()
    assert "<script>alert" not in body
    assert "<img src=x" not in body
    assert "&lt;script&gt;alert" in body


@pytest.mark.django_db
def test_hostile_upstream_text_is_escaped_in_the_admin(client, staff):
    from tests.factories import UpstreamServiceFactory

    upstream = UpstreamServiceFactory(name=HOSTILE, category=HOSTILE, description=HOSTILE)
    service = ServiceFactory(name=HOSTILE, description=HOSTILE)
    client.force_login(staff)
    for url in (
        reverse("admin:providers_upstreamservice_changelist"),
        reverse("admin:providers_upstreamservice_change", args=[upstream.pk]),
        reverse("admin:catalog_service_changelist"),
        reverse("admin:catalog_service_change", args=[service.pk]),
    ):
        body = client.get(url).content.decode()
        assert "<script>alert" not in body, url
        assert "<img src=x" not in body, url


@pytest.mark.django_db
def test_pages_send_security_headers(client):
    response = client.get("/")
    assert "default-src 'self'" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.django_db
def test_home_and_services_pages_render_without_cdn(client):
    body = client.get("/").content.decode() + client.get(reverse("catalog:services")).content.decode()
    assert "cdn" not in body.lower()
    assert "/static/bootstrap/css/bootstrap.min.css" in body

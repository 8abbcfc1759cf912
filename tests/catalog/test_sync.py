from decimal import Decimal as D

import pytest

from catalog.models import Category, PanelSettings, PriceChange, Route, Service
from catalog.services import REASON_NO_ROUTE, catalog_import_upstream, service_price_approve, upstream_services_mirror
from catalog.services import services_reprice as reprice
from providers.client import ServiceInfo
from providers.models import UpstreamService
from tests.factories import ProviderFactory

pytestmark = pytest.mark.django_db


def info(sid, rate="1.0", **kw):
    values = dict(
        service_id=str(sid),
        name=f"Service {sid}",
        type="Default",
        category="Instagram Followers",
        rate=D(rate),
        min_quantity=10,
        max_quantity=1000,
        refill=False,
        cancel=False,
        dripfeed=False,
    )
    values.update(kw)
    return ServiceInfo(**values)


@pytest.fixture
def provider():
    return ProviderFactory(name="Upstream")


def sync(provider, infos):
    result = upstream_services_mirror(provider=provider, services=infos)
    priced = reprice(services=Service.objects.filter(routes__upstream__provider=provider).distinct(), reason="test")
    return result, priced


def import_all(provider, **kw):
    ids = UpstreamService.objects.filter(provider=provider).values_list("pk", flat=True)
    return catalog_import_upstream(upstream_ids=list(ids), **kw)


def test_new_services_are_mirrored_and_imported_at_default_markup(provider):
    result, _ = sync(provider, [info(1, "0.9"), info(2, "2", category="TikTok Views", type="Package")])
    assert (result.created, result.updated, result.removed) == (2, 0, 0)
    assert UpstreamService.objects.get(provider=provider, external_id="2").type == "Package"
    created = import_all(provider)
    assert len(created) == 2
    followers = Service.objects.get(routes__upstream__external_id="1")
    assert followers.category.name == "Instagram Followers"
    assert followers.cost == D("0.900000")
    assert followers.price == D("1.170000")  # default markup 30%
    assert PriceChange.objects.filter(service=followers, status="applied").count() == 1
    # Importing again skips what is already sold.
    assert import_all(provider) == []


def test_import_into_chosen_category_with_markup(provider):
    sync(provider, [info(1, "2")])
    target = Category.objects.create(name="Mine")
    (service,) = import_all(provider, category=target, markup_percent=D("50"))
    assert service.category == target
    assert service.price == D("3.000000")


def test_changed_rate_is_followed_and_recorded(provider):
    sync(provider, [info(1, "1.0")])
    (service,) = import_all(provider)
    result, priced = sync(provider, [info(1, "1.2", name="Renamed")])
    assert (result.created, result.updated, result.unchanged) == (0, 1, 0)
    assert priced.repriced == 1
    service.refresh_from_db()
    assert (service.cost, service.price) == (D("1.200000"), D("1.560000"))
    assert UpstreamService.objects.get(external_id="1").name == "Renamed"
    change = PriceChange.objects.filter(service=service).first()
    assert (change.old_price, change.new_price, change.status) == (D("1.300000"), D("1.560000"), "applied")


def test_unchanged_sync_writes_nothing(provider):
    sync(provider, [info(1)])
    import_all(provider)
    before = PriceChange.objects.count()
    result, priced = sync(provider, [info(1)])
    assert (result.created, result.updated, result.unchanged) == (0, 0, 1)
    assert priced.repriced == 0
    assert PriceChange.objects.count() == before


def test_spike_above_threshold_is_held_and_service_paused_below_cost(provider):
    sync(provider, [info(1, "1.0")])
    (service,) = import_all(provider)
    _, priced = sync(provider, [info(1, "50.0")])  # a 4,900% jump
    assert priced.held == 1
    service.refresh_from_db()
    assert service.price == D("1.300000")  # still the old price…
    assert service.held_price == D("65.000000")
    assert service.is_enabled is False  # …but not sold below its new cost
    staff = service.price_changes.model._meta.get_field("actor").related_model.objects.create(
        username="boss", email="b@x.io"
    )
    service_price_approve(service=service, actor=staff)
    service.refresh_from_db()
    assert (service.price, service.cost, service.held_price, service.is_enabled) == (
        D("65.000000"),
        D("50.000000"),
        None,
        True,
    )


def test_spike_threshold_is_configurable(provider):
    PanelSettings.objects.create(default_markup_percent=D("30"), price_jump_threshold_percent=D("10000"))
    sync(provider, [info(1, "1.0")])
    (service,) = import_all(provider)
    _, priced = sync(provider, [info(1, "50.0")])
    assert priced.repriced == 1 and priced.held == 0


def test_fixed_price_survives_sync_and_disables_below_cost(provider):
    sync(provider, [info(1, "1.0")])
    (service,) = import_all(provider)
    service.fixed_price = D("2.5")
    service.save()
    reprice(services=Service.objects.filter(pk=service.pk), reason="test")
    sync(provider, [info(1, "2.0")])
    service.refresh_from_db()
    assert service.price == D("2.500000") and service.is_enabled
    sync(provider, [info(1, "3.0")])
    service.refresh_from_db()
    assert service.is_enabled is False
    assert "below cost" in service.disabled_reason


def test_removed_upstream_disables_route_and_service(provider):
    sync(provider, [info(1), info(2)])
    import_all(provider)
    result, priced = sync(provider, [info(2)])
    assert result.removed == 1
    assert UpstreamService.objects.get(external_id="1").is_removed
    assert not Route.objects.get(upstream__external_id="1").is_enabled
    lost = Service.objects.get(routes__upstream__external_id="1")
    assert (lost.is_enabled, lost.disabled_reason) == (False, REASON_NO_ROUTE)
    assert Service.objects.get(routes__upstream__external_id="2").is_enabled


def test_fallback_route_keeps_service_alive_and_takes_over_pricing(provider):
    other = ProviderFactory(name="Backup")
    sync(provider, [info(1, "1.0")])
    sync(other, [info(77, "1.2")])
    (service,) = import_all(provider)
    Route.objects.create(service=service, upstream=UpstreamService.objects.get(provider=other), priority=2)
    sync(provider, [])  # the primary provider dropped it
    service.refresh_from_db()
    assert service.is_enabled
    assert service.cost == D("1.200000")


def test_fallback_far_more_expensive_is_held_not_sold_at_a_loss(provider):
    other = ProviderFactory(name="Backup")
    sync(provider, [info(1, "1.0")])
    sync(other, [info(77, "2.0")])
    (service,) = import_all(provider)
    Route.objects.create(service=service, upstream=UpstreamService.objects.get(provider=other), priority=2)
    sync(provider, [])
    service.refresh_from_db()
    assert (service.is_enabled, service.held_cost) == (False, D("2.000000"))

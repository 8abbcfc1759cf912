from django.contrib import admin
from django.urls import include, path

from . import views

urlpatterns = [
    path("", include("panel.urls")),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("account/", include("accounts.urls")),
    path("currency/", include("currencies.urls")),
    path("services/", include("catalog.urls")),
    path("wallet/", include("wallets.urls")),
    path("orders/", include("orders.urls")),
    path("api/", include("api.urls")),
    path("webhooks/", include("webhooks.urls")),
    path("tickets/", include("support.urls")),
    path("site/", include("siteconf.urls")),
    # Django's set_language (POST `language`, `next`), wrapped to keep the choice on the account.
    path("i18n/", include("accounts.language_urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("content.urls")),
]

from django.urls import path

from . import views

app_name = "wallets"
urlpatterns = [
    path("", views.add_funds, name="add_funds"),
    path("add-funds/<slug:gateway>/", views.deposit, name="deposit"),
    # The addresses before there was one per gateway; forms and bookmarks may still post here.
    path("deposit/manual/", views.deposit, {"gateway": "manual"}, name="deposit_manual"),
    path("deposit/stripe/", views.deposit, {"gateway": "stripe"}, name="deposit_stripe"),
    path("bonus-preview/", views.bonus_preview, name="bonus_preview"),
    path("payments/<int:pk>/", views.payment_detail, name="payment_detail"),
    path("payments/<int:pk>/cancel/", views.payment_cancel, name="payment_cancel"),
    path("transactions/", views.transactions, name="transactions"),
    path("affiliates/", views.affiliates, name="affiliates"),
    path("ref/<slug:code>/", views.referral, name="referral"),
    path("webhooks/<slug:gateway>/", views.webhook, name="webhook"),
    # The address configured in Stripe's dashboard before there was one per gateway.
    path("stripe/webhook/", views.webhook, {"gateway": "stripe"}, name="stripe_webhook"),
]

from django.urls import path

from . import views

app_name = "wallets"
urlpatterns = [
    path("", views.add_funds, name="add_funds"),
    path("deposit/manual/", views.deposit_manual, name="deposit_manual"),
    path("deposit/stripe/", views.deposit_stripe, name="deposit_stripe"),
    path("bonus-preview/", views.bonus_preview, name="bonus_preview"),
    path("payments/<int:pk>/", views.payment_detail, name="payment_detail"),
    path("payments/<int:pk>/cancel/", views.payment_cancel, name="payment_cancel"),
    path("transactions/", views.transactions, name="transactions"),
    path("affiliates/", views.affiliates, name="affiliates"),
    path("ref/<slug:code>/", views.referral, name="referral"),
    path("stripe/webhook/", views.stripe_webhook, name="stripe_webhook"),
]

from django.urls import path

from . import views

app_name = "accounts"
urlpatterns = [
    path("", views.account, name="account"),
    path("timezone/", views.timezone_update, name="timezone"),
    path("impersonate/stop/", views.impersonate_stop, name="impersonate_stop"),
]

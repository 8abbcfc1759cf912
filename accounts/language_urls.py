"""/i18n/setlang/: Django's set_language, wrapped so that a signed-in customer's choice is
kept on the account. Mounted before django.conf.urls.i18n, under the same name."""

from django.urls import path

from .language import set_language

urlpatterns = [
    path("setlang/", set_language, name="set_language"),
]

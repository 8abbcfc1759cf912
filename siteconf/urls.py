from django.urls import path

from . import views

app_name = "siteconf"
urlpatterns = [path("logo/<str:version>/", views.logo, name="logo")]

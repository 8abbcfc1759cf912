from django.urls import path

from . import views

app_name = "catalog"
urlpatterns = [
    path("", views.services, name="services"),
    path("<int:pk>/favourite/", views.favourite, name="favourite"),
]

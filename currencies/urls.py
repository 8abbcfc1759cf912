from django.urls import path

from . import views

app_name = "currencies"

urlpatterns = [path("choose/", views.choose, name="choose")]

from django.urls import path

from . import views

app_name = "orders"
urlpatterns = [
    path("", views.order_list, name="list"),
    path("new/", views.new, name="new"),
    path("mass/", views.mass, name="mass"),
    path("refills/", views.refills, name="refills"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/refill/", views.refill, name="refill"),
    path("<int:pk>/cancel/", views.cancel, name="cancel"),
]

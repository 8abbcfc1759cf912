from django.urls import path

from . import views

app_name = "webhooks"
urlpatterns = [
    path("", views.log, name="log"),
    path("endpoint/", views.endpoint_save, name="endpoint_save"),
    path("endpoint/rotate/", views.endpoint_rotate, name="endpoint_rotate"),
    path("endpoint/delete/", views.endpoint_delete, name="endpoint_delete"),
    path("events/<str:event_id>/replay/", views.event_replay, name="event_replay"),
]

from django.urls import path

from . import views

app_name = "api"
urlpatterns = [
    # Both spellings answer directly: the standard PHP client follows redirects, which
    # would turn its POST into a body-less GET.
    path("v2", views.endpoint, name="endpoint"),
    path("v2/", views.endpoint, name="endpoint_slash"),
    path("openapi.json", views.openapi, name="openapi"),
    path("", views.page, name="page"),
    path("key/issue/", views.key_issue, name="key_issue"),
    path("key/revoke/", views.key_revoke, name="key_revoke"),
]

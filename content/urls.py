from django.urls import path

from . import views

app_name = "content"
urlpatterns = [
    path("terms/", views.terms, name="terms"),
    path("faq/", views.faq, name="faq"),
    path("contact/", views.contact, name="contact"),
    path("news/", views.news, name="news"),
    path("news/<int:pk>/", views.news_detail, name="news_detail"),
    path("updates/", views.updates, name="updates"),
]

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def services(request: HttpRequest) -> HttpResponse:
    return render(request, "catalog/services.html", {})

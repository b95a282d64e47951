"""The plain-Django anchor's only URL: the floor view (bench.plain_settings)."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from bench.views import floor_message


def health(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("health", health),
    path("bench/floor/<uuid:session_id>/messages/", floor_message, name="bench-floor"),
]

"""The product's URLs plus the floor view, for the benchmark only (bench.settings)."""

from django.urls import path

from bench.views import floor_message
from leadchat.urls import urlpatterns as product_urlpatterns

urlpatterns = [
    path("bench/floor/<uuid:session_id>/messages/", floor_message, name="bench-floor"),
    *product_urlpatterns,
]

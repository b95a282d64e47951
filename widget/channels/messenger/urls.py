from django.urls import path

from widget.channels.messenger.views import messenger_webhook

app_name = "messenger"

urlpatterns = [
    path("webhook/", messenger_webhook, name="webhook"),
]

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView

from accounts import views as accounts_views
from leadchat import views

admin.site.site_header = "leadchat QA console"
admin.site.site_title = "leadchat QA console"
admin.site.index_title = "Review AI conversations"

urlpatterns = [
    path("", views.root, name="root"),
    path("health", views.health, name="health"),
    path("health/ready", views.health_ready, name="health-ready"),
    path("metrics", views.MetricsView.as_view(), name="metrics"),
    # Browsers ask for /favicon.ico on pages that name no icon (the admin, the API docs).
    path(
        "favicon.ico",
        RedirectView.as_view(url=f"{settings.STATIC_URL}dashboard/favicon.svg", permanent=True),
    ),
    path("accounts/", include("accounts.urls")),
    # The admin's own password change, with the old-password check behind the sign-in throttle.
    path("admin/password_change/", accounts_views.admin_password_change),
    path("admin/", admin.site.urls),
    # Public widget: embed script, iframe page, demo landing page, /api/widget/...
    path("", include("widget.urls")),
    # Facebook Messenger: Meta's webhook.
    path("channels/messenger/", include("widget.channels.messenger.urls")),
    # n8n's error workflow.
    path("api/automation/", include("sessions_app.api.automation")),
    # Transcripts of conversations an AI agent runs elsewhere (n8n on WhatsApp, Telegram...).
    path("api/ingest/", include("sessions_app.api.ingest")),
    # Staff API (dashboard and scripts).
    path("api/", include("sessions_app.api.urls")),
    path("dashboard/", include("sessions_app.dashboard.urls")),
    # /api/docs/ is served by the staff API's URLconf (the split Swagger view: no inline script).
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
]

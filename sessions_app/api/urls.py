"""Staff API, under /api/ (namespace staff-api). See sessions_app.api.views."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularSwaggerSplitView

from sessions_app.api import views

app_name = "staff-api"

urlpatterns = [
    path("sessions/", views.SessionListView.as_view(), name="sessions"),
    path("sessions/changes/", views.SessionChangesView.as_view(), name="sessions-changes"),
    path("sessions/bulk/", views.SessionBulkView.as_view(), name="sessions-bulk"),
    path("sessions/<uuid:public_id>/", views.SessionDetailView.as_view(), name="session"),
    path(
        "sessions/<uuid:public_id>/archive/",
        views.SessionArchiveView.as_view(),
        name="session-archive",
    ),
    path(
        "sessions/<uuid:public_id>/unarchive/",
        views.SessionUnarchiveView.as_view(),
        name="session-unarchive",
    ),
    path(
        "sessions/<uuid:public_id>/delete/",
        views.SessionDeleteView.as_view(),
        name="session-delete",
    ),
    path(
        "sessions/<uuid:public_id>/restore/",
        views.SessionRestoreView.as_view(),
        name="session-restore",
    ),
    path("stats/", views.StatsView.as_view(), name="stats"),
    path("automation-errors/", views.ErrorListView.as_view(), name="errors"),
    path(
        "automation-errors/<int:pk>/resolve/",
        views.ErrorResolveView.as_view(),
        name="error-resolve",
    ),
    path("exports/sessions.csv", views.SessionExportCSVView.as_view(), name="export-csv"),
    path("exports/sessions.jsonl", views.SessionExportJSONLView.as_view(), name="export-jsonl"),
    # Malformed ids under these prefixes: a JSON 404 rather than Django's HTML page.
    re_path(r"^sessions/(?P<rest>[\s\S]+)$", views.unknown_endpoint),
    re_path(r"^automation-errors/(?P<rest>[\s\S]+)$", views.unknown_endpoint),
    re_path(r"^exports/(?P<rest>[\s\S]+)$", views.unknown_endpoint),
    # Shadows the project's /api/docs/ route (this include comes first in leadchat/urls.py):
    # the split view loads its init script from a URL instead of an inline <script>, which the
    # default CSP (script-src 'self') would block.
    path(
        "docs/",
        SpectacularSwaggerSplitView.as_view(url_name="api-schema"),
        name="docs",
    ),
]

"""Staff API, under /api/ (namespace staff-api). See sessions_app.api.views."""

from django.urls import path, re_path, register_converter
from drf_spectacular.views import SpectacularSwaggerSplitView

from sessions_app import exports
from sessions_app.api import leads, takeover, views
from sessions_app.leads_selectors import LEAD_KEY_PATTERN

app_name = "staff-api"


class SessionMoveConverter:
    """The name of a session move (sessions_app.api.views.MOVES). Any other word does not match,
    so it falls through to the JSON 404 below."""

    regex = "|".join(views.MOVES)

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        if value not in views.MOVES:
            raise ValueError(f"{value!r} is not a session move")  # reverse(): NoReverseMatch
        return value


register_converter(SessionMoveConverter, "session_move")


class LeadKeyConverter:
    """A person's key (sessions_app.leads.lead_key): 64 lower-case hex digits."""

    regex = LEAD_KEY_PATTERN

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(LeadKeyConverter, "lead_key")

urlpatterns = [
    path("sessions/", views.SessionListApi.as_view(), name="sessions"),
    path("sessions/changes/", views.SessionChangesApi.as_view(), name="sessions-changes"),
    path("sessions/bulk/", views.SessionBulkApi.as_view(), name="sessions-bulk"),
    path("sessions/<uuid:public_id>/", views.SessionDetailApi.as_view(), name="session"),
    path(
        "sessions/<uuid:public_id>/human-request/dismiss/",
        views.HumanRequestDismissApi.as_view(),
        name="session-human-dismiss",
    ),
    # /archive/, /unarchive/, /delete/ and /restore/; reverse with the move as second argument.
    path(
        "sessions/<uuid:public_id>/<session_move:action>/",
        views.SessionMoveApi.as_view(),
        name="session-move",
    ),
    # Takeover (sessions_app.api.takeover): not session moves, each has its own input/output.
    path(
        "sessions/<uuid:public_id>/takeover/",
        takeover.SessionTakeoverApi.as_view(),
        name="session-takeover",
    ),
    path(
        "sessions/<uuid:public_id>/handback/",
        takeover.SessionHandbackApi.as_view(),
        name="session-handback",
    ),
    path(
        "sessions/<uuid:public_id>/messages/",
        takeover.SessionMessagesApi.as_view(),
        name="session-messages",
    ),
    path("leads/", leads.LeadListApi.as_view(), name="leads"),
    path("leads/<lead_key:lead_id>/", leads.LeadDetailApi.as_view(), name="lead"),
    path(
        "exports/leads.csv",
        leads.LeadExportApi.as_view(file_format=exports.CSV),
        name="export-leads-csv",
    ),
    path(
        "exports/leads.jsonl",
        leads.LeadExportApi.as_view(file_format=exports.JSONL),
        name="export-leads-jsonl",
    ),
    path("stats/", views.StatsApi.as_view(), name="stats"),
    path("automation-errors/", views.AutomationErrorListApi.as_view(), name="errors"),
    path(
        "automation-errors/<int:pk>/resolve/",
        views.AutomationErrorResolveApi.as_view(),
        name="error-resolve",
    ),
    path(
        "exports/sessions.csv",
        views.SessionExportApi.as_view(file_format=exports.CSV),
        name="export-csv",
    ),
    path(
        "exports/sessions.jsonl",
        views.SessionExportApi.as_view(file_format=exports.JSONL),
        name="export-jsonl",
    ),
    # Malformed ids under these prefixes: a JSON 404 rather than Django's HTML page.
    re_path(r"^sessions/(?P<rest>[\s\S]+)$", views.unknown_endpoint),
    re_path(r"^automation-errors/(?P<rest>[\s\S]+)$", views.unknown_endpoint),
    re_path(r"^leads/(?P<rest>[\s\S]+)$", views.unknown_endpoint),
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

"""Dashboard pages, under /dashboard/."""

from django.urls import path, re_path

from sessions_app.dashboard import views
from sessions_app.leads_selectors import LEAD_KEY_PATTERN

app_name = "dashboard"

urlpatterns = [
    path("", views.OverviewPage.as_view(), name="overview"),
    path("sessions/", views.SessionListPage.as_view(), name="sessions"),
    path("sessions/<uuid:public_id>/", views.SessionDetailPage.as_view(), name="session"),
    path("leads/", views.LeadListPage.as_view(), name="leads"),
    re_path(
        rf"^leads/(?P<lead_id>{LEAD_KEY_PATTERN})/$", views.LeadDetailPage.as_view(), name="lead"
    ),
    path("trash/", views.TrashPage.as_view(), name="trash"),
    path("errors/", views.ErrorListPage.as_view(), name="errors"),
]

"""Dashboard pages, under /dashboard/."""

from django.urls import path

from sessions_app.dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.OverviewView.as_view(), name="overview"),
    path("sessions/", views.SessionListView.as_view(), name="sessions"),
    path("sessions/<uuid:public_id>/", views.SessionDetailView.as_view(), name="session"),
    path("trash/", views.TrashView.as_view(), name="trash"),
    path("errors/", views.ErrorListView.as_view(), name="errors"),
]

"""Dashboard pages, under /dashboard/."""

from django.urls import path

from sessions_app.dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.OverviewPage.as_view(), name="overview"),
    path("sessions/", views.SessionListPage.as_view(), name="sessions"),
    path("sessions/<uuid:public_id>/", views.SessionDetailPage.as_view(), name="session"),
    path("trash/", views.TrashPage.as_view(), name="trash"),
    path("errors/", views.ErrorListPage.as_view(), name="errors"),
]

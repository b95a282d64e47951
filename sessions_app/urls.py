"""Dashboard pages, under /dashboard/."""

app_name = "dashboard"

urlpatterns: list = []

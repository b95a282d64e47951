"""Staff API, under /api/."""

app_name = "staff-api"

urlpatterns: list = []

"""Automation error API for n8n's error workflow, under /api/automation/."""

app_name = "automation-api"

urlpatterns: list = []

"""The project's URLs with the dashboard mounted elsewhere: the lead link must follow it."""

from django.urls import URLResolver, path

from leadchat.urls import urlpatterns as project_urlpatterns


def _moved(pattern):
    if isinstance(pattern, URLResolver) and pattern.namespace == "dashboard":
        return path("staff/board/", (pattern.urlconf_name, pattern.app_name, pattern.namespace))
    return pattern


urlpatterns = [_moved(pattern) for pattern in project_urlpatterns]

"""The authentication backend: Django's ModelBackend behind the sign-in throttle.

Throttling here, rather than only in the dashboard's sign-in view, covers every password form
that calls `authenticate()`: the dashboard's and the admin's (/admin/login/) alike.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from accounts import throttle

# Set on the request when the throttle refused the attempt, so the sign-in view can answer 429
# with the reason instead of AuthenticationForm's "incorrect password".
THROTTLED_ATTR = "leadchat_login_throttled"


class ThrottledModelBackend(ModelBackend):
    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if request is None or username is None:
            return super().authenticate(request, username=username, password=password, **kwargs)
        # Reserve before checking: the count is what decides, so racing attempts cannot all
        # pass a check made before any of them was counted.
        if not throttle.attempt_reserve(request, username):
            setattr(request, THROTTLED_ATTR, True)
            # Stops every backend: the form answers with its generic "incorrect" message.
            raise PermissionDenied("Too many sign-in attempts.")
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is not None:
            throttle.attempt_succeeded(request, username)
        return user

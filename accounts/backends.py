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
        if throttle.login_blocked(request, username):
            # Stops every backend: the form answers with its generic "incorrect" message.
            raise PermissionDenied("Too many sign-in attempts.")
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            throttle.login_failed(request, username)
        else:
            throttle.login_succeeded(request, username)
        return user

"""Sign in (throttled), sign out and password change, in the dashboard's look."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.urls import reverse_lazy

from accounts import throttle

THROTTLED_MESSAGE = "Too many sign-in attempts. Please wait {minutes} minutes and try again."


class LoginView(auth_views.LoginView):
    """Django's sign-in with a throttle in front.

    Unknown usernames and wrong passwords already get the same message and status from
    AuthenticationForm (and Django runs the hasher for unknown users, so the timing matches);
    the throttle answers identically for both as well. Failures are counted by the
    authentication backend (accounts.backends), which also guards the admin's sign-in; this
    view only answers a throttled attempt with a clear 429 instead of "incorrect password".
    """

    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        username = request.POST.get("username", "")
        if throttle.login_blocked(request, username):
            form = self.get_form()
            minutes = max(1, settings.LOGIN_THROTTLE_WINDOW_SECONDS // 60)
            form.errors.clear()
            form.add_error(None, ValidationError(THROTTLED_MESSAGE.format(minutes=minutes)))
            response = self.render_to_response(self.get_context_data(form=form))
            response.status_code = 429
            return response
        return super().post(request, *args, **kwargs)


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "registration/password_change_form.html"
    success_url = reverse_lazy("accounts:password_change_done")


class PasswordChangeDoneView(auth_views.PasswordChangeDoneView):
    template_name = "registration/password_change_done.html"

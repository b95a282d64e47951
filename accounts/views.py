"""Sign in (throttled), sign out and password change (throttled), in the dashboard's look."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminPasswordChangeForm
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import views as auth_views
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.urls import reverse, reverse_lazy

from accounts import throttle
from accounts.backends import THROTTLED_ATTR

THROTTLED_MESSAGE = "Too many sign-in attempts. Please wait {minutes} minutes and try again."
CHANGE_THROTTLED_MESSAGE = "Too many attempts. Please wait {minutes} minutes and try again."


def _minutes() -> int:
    return max(1, settings.LOGIN_THROTTLE_WINDOW_SECONDS // 60)


class LoginView(auth_views.LoginView):
    """Django's sign-in with a throttle in front.

    Unknown usernames and wrong passwords already get the same message and status from
    AuthenticationForm (and Django runs the hasher for unknown users, so the timing matches);
    the throttle answers identically for both as well. Attempts are counted by the
    authentication backend (accounts.backends), which also guards the admin's sign-in; this
    view only answers a throttled attempt with a clear 429 instead of "incorrect password".
    """

    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def form_invalid(self, form: Any) -> HttpResponse:
        if not getattr(self.request, THROTTLED_ATTR, False):
            return super().form_invalid(form)
        form.errors.clear()
        form.add_error(None, ValidationError(THROTTLED_MESSAGE.format(minutes=_minutes())))
        response = self.render_to_response(self.get_context_data(form=form))
        response.status_code = 429
        return response


if TYPE_CHECKING:
    # The forms this is mixed into, so the type checker knows the super() calls.
    _PasswordChangeFormBase = auth_forms.PasswordChangeForm
else:
    _PasswordChangeFormBase = object


class ThrottledOldPasswordMixin(_PasswordChangeFormBase):
    """The old-password check of a password change, behind the same throttle as sign-in.

    A stolen session (or an unlocked screen) must not become an unlimited password oracle:
    each check reserves an attempt on the account's username and the client IP before
    `check_password` runs, exactly as a sign-in does, and shares their counts.
    """

    request: HttpRequest
    user: Any
    throttled = False

    def clean_old_password(self) -> str:
        username = self.user.get_username()
        if not throttle.attempt_reserve(self.request, username):
            self.throttled = True
            raise ValidationError(
                CHANGE_THROTTLED_MESSAGE.format(minutes=_minutes()), code="throttled"
            )
        old_password = super().clean_old_password()  # raises on a wrong one: the attempt stays
        throttle.attempt_succeeded(self.request, username)
        return old_password

    def __init__(self, user: Any, *args: Any, request: HttpRequest, **kwargs: Any) -> None:
        self.request = request
        super().__init__(user, *args, **kwargs)


class ThrottledPasswordChangeForm(ThrottledOldPasswordMixin, auth_forms.PasswordChangeForm):
    pass


class ThrottledAdminPasswordChangeForm(ThrottledOldPasswordMixin, AdminPasswordChangeForm):
    pass


class _ThrottledPasswordChange(auth_views.PasswordChangeView):
    def get_form_kwargs(self) -> dict[str, Any]:
        return {**super().get_form_kwargs(), "request": self.request}

    def form_invalid(self, form: Any) -> HttpResponse:
        response = super().form_invalid(form)
        if form.throttled:
            response.status_code = 429
        return response


class PasswordChangeView(_ThrottledPasswordChange):
    template_name = "registration/password_change_form.html"
    success_url = reverse_lazy("accounts:password_change_done")
    form_class = ThrottledPasswordChangeForm


class PasswordChangeDoneView(auth_views.PasswordChangeDoneView):
    template_name = "registration/password_change_done.html"


def admin_password_change(request: HttpRequest) -> HttpResponseBase:
    """AdminSite.password_change with the throttled form (the admin hard-codes its form class).

    Mounted at /admin/password_change/ ahead of the admin's URLs (leadchat/urls.py); everything
    else is as AdminSite.password_change does it.
    """
    site = admin.site

    def view(request: HttpRequest) -> HttpResponseBase:
        defaults: dict[str, Any] = {
            "form_class": ThrottledAdminPasswordChangeForm,
            "success_url": reverse("admin:password_change_done", current_app=site.name),
            "extra_context": site.each_context(request),
        }
        if site.password_change_template is not None:
            defaults["template_name"] = site.password_change_template
        request.current_app = site.name
        return _ThrottledPasswordChange.as_view(**defaults)(request)

    return site.admin_view(view)(request)

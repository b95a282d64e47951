import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory

from accounts.auth import signed_in_user
from accounts.models import User


def test_signed_in_user_is_the_request_user():
    request = RequestFactory().get("/")
    request.user = user = User(username="qa")
    assert signed_in_user(request) is user


def test_signed_in_user_refuses_an_anonymous_request():
    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    with pytest.raises(PermissionDenied):
        signed_in_user(request)

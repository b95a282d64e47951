"""The signed-in user of a request, as the `User` the services record as the actor."""

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from rest_framework.request import Request

from accounts.models import User


def signed_in_user(request: HttpRequest | Request) -> User:
    """`request.user` behind a login or permission check (the admin, the staff API).

    Those checks already turned anonymous visitors away; should a view ever be wired without
    one, this refuses (403) instead of handing an AnonymousUser to a service as the actor.
    """
    user = request.user
    if not isinstance(user, User):
        raise PermissionDenied
    return user

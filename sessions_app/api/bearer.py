"""What n8n's APIs (automation errors, transcript ingest) share: a bearer key of their own from
the environment, checked in constant time, and a body cap checked before the JSON is parsed.

Neither API has session or token auth, so no CSRF either; nor a rate limit: the key is the only
credential, and a client holding it is the operator's own workflow.
"""

import secrets
from dataclasses import dataclass

from django.conf import settings
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response


@dataclass(frozen=True)
class KeyedApi:
    """An API opened by the bearer key in setting `setting` (closed while it is empty)."""

    setting: str
    name: str
    realm: str
    closed_status: int
    max_body_bytes: int
    max_body_text: str  # the cap as the refusal says it ("64 KB")

    def refusal(self, request: Request) -> Response | None:
        """The answer refusing `request` (no key, the wrong key, closed, too large), or None."""
        problem = bearer_key_problem(
            request,
            expected=getattr(settings, self.setting),
            setting=self.setting,
            api=self.name,
            realm=self.realm,
            closed_status=self.closed_status,
        )
        if problem is not None:
            return problem
        if body_too_large(request, self.max_body_bytes):
            return Response(
                {"error": f"The body is larger than {self.max_body_text}."},
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        return None


def bearer_key_problem(
    request: Request, *, expected: str, setting: str, api: str, realm: str, closed_status: int
) -> Response | None:
    """The answer refusing `request`, or None when it carries `expected` as its bearer key.

    `expected` empty means the API is closed (`setting` is not set): `closed_status` says so.
    """
    header = request.headers.get("Authorization", "")
    if not header:
        return Response(
            {"error": "Authorization header missing: send 'Authorization: Bearer <key>'."},
            status=status.HTTP_401_UNAUTHORIZED,
            headers={"WWW-Authenticate": f'Bearer realm="{realm}"'},
        )
    scheme, _, token = header.partition(" ")
    if not expected:
        return Response(
            {"error": f"The {api} is closed: {setting} is not set."}, status=closed_status
        )
    # compare_digest: the time taken does not tell how much of a guessed key was right.
    if scheme.lower() != "bearer" or not secrets.compare_digest(
        token.strip().encode(), expected.encode()
    ):
        return Response({"error": "Invalid API key."}, status=status.HTTP_403_FORBIDDEN)
    return None


def body_too_large(request: Request, limit: int) -> bool:
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    # Refuse on the declared length before reading anything; the read length is checked too,
    # for a client whose Content-Length understates its body.
    return declared > limit or len(request.body) > limit

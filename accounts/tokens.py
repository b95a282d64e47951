"""Staff API token authentication: django-rest-knox, hardened at its edges.

knox stores only a SHA-512 digest of each token (plus its first 15 characters, to find the
row), gives every token an expiry (REST_KNOX["TOKEN_TTL"], from API_TOKEN_TTL_DAYS), deletes
expired tokens as it meets them and refuses inactive users. Tokens are issued and revoked by
accounts.services (`api_token_issue`, `api_tokens_revoke`); receivers revoke them on a password
change or a deactivation.
"""

from __future__ import annotations

import re

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from rest_framework import exceptions

# Tokens issued here are 64 hex characters; keys carried over from DRF's authtoken (migration
# accounts.0002) are 40. Anything else cannot be a token, so it is refused before knox decodes
# it (a non-UTF-8 header made knox raise UnicodeDecodeError, a 500) or queries with it (a NUL
# is an error on PostgreSQL).
TOKEN_SHAPE = re.compile(rb"^[0-9a-fA-F]{40,128}$")


class TokenAuthentication(KnoxTokenAuthentication):
    """`Authorization: Token <token>`; 401 for a malformed, unknown or expired token."""

    def authenticate_credentials(self, token: bytes):
        if not TOKEN_SHAPE.match(token):
            raise exceptions.AuthenticationFailed("Invalid token.")
        return super().authenticate_credentials(token)


class TokenScheme(OpenApiAuthenticationExtension):
    """How the schema documents this authentication (drf-spectacular's knox scheme, for our
    subclass): `Authorization: Token <token>`."""

    target_class = "accounts.tokens.TokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return build_bearer_security_scheme_object(
            header_name="Authorization", token_prefix=self.target.authenticate_header(None)
        )

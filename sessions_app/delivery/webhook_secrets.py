"""Standard Webhooks signing secrets: `whsec_` + base64 of random bytes.

Pure functions with no Django imports, so settings (at start-up) and the model (in forms) check
a secret the same way.
"""

import base64
import binascii
import secrets

MIN_SECRET_BYTES = 24
GENERATE_HINT = (
    'python -c "import base64, secrets; '
    "print('whsec_' + base64.b64encode(secrets.token_bytes(32)).decode())\""
)


def generate_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def is_valid_webhook_secret(value: str) -> bool:
    if not value.startswith("whsec_"):
        return False
    body = value.removeprefix("whsec_")
    try:
        return (
            len(base64.b64decode(body + "=" * (-len(body) % 4), validate=True)) >= MIN_SECRET_BYTES
        )
    except (binascii.Error, ValueError):
        return False

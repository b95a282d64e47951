"""anymail's Resend backend, plus Resend's Idempotency-Key.

Resend deduplicates on the `Idempotency-Key` *HTTP request* header (24 hours). anymail puts
`extra_headers` into the email's own headers (JSON `headers`) and `esp_extra` into the JSON body,
so neither reaches it; this backend copies `message.idempotency_key` onto the request.
"""

from anymail.backends.resend import EmailBackend as AnymailResendBackend


class EmailBackend(AnymailResendBackend):
    def build_message_payload(self, message, defaults):
        payload = super().build_message_payload(message, defaults)
        key = getattr(message, "idempotency_key", "")
        if key:
            payload.headers["Idempotency-Key"] = str(key)[:256]
        return payload

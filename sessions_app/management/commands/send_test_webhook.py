from django.core.management.base import CommandError

from leadchat.commands import LeadchatCommand
from sessions_app.delivery import EndpointUnavailable, endpoint_from_settings, webhook_ping_send
from sessions_app.management.endpoints import endpoint_named
from sessions_app.models import DeliveryStatus, WebhookEndpoint


class Command(LeadchatCommand):
    help = (
        "Send one signed test event (type webhook.test) to an endpoint now and print the "
        "outcome. The attempt is logged like any delivery; a test event is never retried."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--endpoint",
            default=None,
            help="Endpoint id or name (default: the LEAD_WEBHOOK_URL one, or the only one).",
        )

    def handle(self, *args, endpoint: str | None, **options) -> None:
        target = self._endpoint(endpoint)
        try:
            row, result = webhook_ping_send(endpoint=target)
        except EndpointUnavailable as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Endpoint: {target.name} ({target.url})")
        self.stdout.write(f"Event id: {row.event_id}")
        status = f"HTTP {result.status_code}" if result.status_code else "no response"
        self.stdout.write(f"Outcome: {status} in {result.duration_ms} ms")
        if result.response_body:
            self.stdout.write(f"Response: {result.response_body[:500]}")
        if row.status != DeliveryStatus.DELIVERED:
            raise CommandError(f"Test webhook not delivered: {result.error or status}")
        self.stdout.write(self.style.SUCCESS("Delivered."))

    def _endpoint(self, wanted: str | None) -> WebhookEndpoint:
        endpoint_from_settings()
        endpoints = WebhookEndpoint.objects.all()
        if wanted:
            return endpoint_named(wanted)
        default = endpoints.filter(from_settings=True, is_active=True).first()
        if default:
            return default
        active = list(endpoints.filter(is_active=True)[:2])
        if len(active) == 1:
            return active[0]
        if not active:
            raise CommandError(
                "No active webhook endpoint: set LEAD_WEBHOOK_URL or add one in the admin."
            )
        raise CommandError("Several endpoints are active: choose one with --endpoint ID|NAME.")

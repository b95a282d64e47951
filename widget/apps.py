from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class WidgetConfig(AppConfig):
    name = "widget"
    verbose_name = "Widget sites"

    def ready(self) -> None:
        from corsheaders.signals import check_request_enabled

        from widget.origins import active_site_origins_forget, cors_allows_request

        check_request_enabled.connect(cors_allows_request, dispatch_uid="widget-cors")
        self._messenger_ready()
        self._handoff_ready()
        site = self.get_model("Site")
        for signal in (post_save, post_delete):
            signal.connect(active_site_origins_forget, sender=site, dispatch_uid="widget-origins")

    def _handoff_ready(self) -> None:
        # The email about a visitor nobody answered needs the site's notify list (widget's),
        # so widget owns the job; the delivery worker runs it and sends the outbox row.
        from sessions_app.delivery import register_worker_job
        from widget import handoff

        register_worker_job(name=handoff.JOB_NAME, run=handoff.handoff_emails_run)

    def _messenger_ready(self) -> None:
        # One worker process serves every channel: sessions_app's delivery worker runs the
        # inbox job and sends the replies through this sender (sessions_app imports no widget).
        from sessions_app.delivery import register_delivery_sender, register_worker_job
        from sessions_app.models import AutomationError, DeliveryKind
        from sessions_app.signals import sessions_erasing
        from widget.channels.messenger import checks, graph, processing  # noqa: F401 (checks)
        from widget.channels.messenger.receivers import erase_messenger_rows

        register_worker_job(name=processing.JOB_NAME, run=processing.messenger_inbox_run)
        register_delivery_sender(
            kind=DeliveryKind.MESSENGER,
            send=graph.messenger_reply_send,
            error_source=AutomationError.Source.MESSENGER,
            label="Messenger reply",
            # Meta's Send API has no idempotency key: a reply cut short by a killed worker is
            # failed for a person to redeliver, never sent twice.
            resend_after_interruption=False,
        )
        sessions_erasing.connect(erase_messenger_rows, dispatch_uid="widget.messenger.erase")
        # Agents who take a Messenger conversation over answer through the Send API too.
        from sessions_app.models import Channel
        from sessions_app.takeover import register_reply_channel
        from widget.channels.messenger import agent_replies

        register_reply_channel(
            Channel.MESSENGER, blocked=agent_replies.reply_blocked, send=agent_replies.reply_send
        )

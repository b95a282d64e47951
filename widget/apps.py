from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class WidgetConfig(AppConfig):
    name = "widget"
    verbose_name = "Widget sites"

    def ready(self) -> None:
        from corsheaders.signals import check_request_enabled

        from widget.origins import active_site_origins_forget, cors_allows_request

        check_request_enabled.connect(cors_allows_request, dispatch_uid="widget-cors")
        site = self.get_model("Site")
        for signal in (post_save, post_delete):
            signal.connect(active_site_origins_forget, sender=site, dispatch_uid="widget-origins")

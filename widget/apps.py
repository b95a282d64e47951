from django.apps import AppConfig


class WidgetConfig(AppConfig):
    name = "widget"
    verbose_name = "Widget sites"

    def ready(self) -> None:
        from corsheaders.signals import check_request_enabled

        from widget.origins import cors_allows_request

        check_request_enabled.connect(cors_allows_request, dispatch_uid="widget-cors")

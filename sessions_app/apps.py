from django.apps import AppConfig


class SessionsAppConfig(AppConfig):
    name = "sessions_app"
    verbose_name = "Chat sessions"

    def ready(self) -> None:
        from leadchat import checks as leadchat_checks  # noqa: F401 (registers them)
        from sessions_app.delivery import checks, receivers  # noqa: F401

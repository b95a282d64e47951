from django.apps import AppConfig


class QaConfig(AppConfig):
    name = "qa"
    verbose_name = "QA review"

    def ready(self) -> None:
        from qa import receivers  # noqa: F401

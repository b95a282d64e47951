from django.apps import AppConfig


class QaConfig(AppConfig):
    name = "qa"
    verbose_name = "QA review"

    def ready(self) -> None:
        from qa import receivers  # noqa: F401
        from qa.history import qa_history_entries
        from qa.scorecards import receivers as scorecard_receivers  # noqa: F401
        from sessions_app.history import register_history_source

        register_history_source(qa_history_entries)

from django.apps import AppConfig


class SessionsAppConfig(AppConfig):
    name = "sessions_app"
    verbose_name = "Chat sessions"

    def ready(self) -> None:
        from leadchat import checks as leadchat_checks  # noqa: F401 (registers them)
        from sessions_app.delivery import checks, receivers  # noqa: F401

        self._rollups_ready()

    def _rollups_ready(self) -> None:
        from django.db.models.signals import post_migrate

        from sessions_app.delivery import register_worker_job
        from sessions_app.rollups import JOB_NAME, rollups_clear_if_no_sessions, rollups_compact

        # The triggers keep the rollups exact; the worker folds their delta rows (sessions_app.
        # rollups) so the stats read about one row per key.
        register_worker_job(name=JOB_NAME, run=rollups_compact, housekeeping=True)
        post_migrate.connect(
            rollups_clear_if_no_sessions, sender=self, dispatch_uid="rollups-clear-if-empty"
        )

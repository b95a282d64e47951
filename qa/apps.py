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

        from qa.replay import receivers as replay_receivers  # noqa: F401
        from qa.replay.services import JOB_NAME as REPLAY_JOB
        from qa.replay.services import replay_job_run
        from qa.sampling.services import JOB_NAME as SAMPLING_JOB
        from qa.sampling.services import sampling_job_run
        from sessions_app.delivery import register_worker_job

        register_worker_job(name=REPLAY_JOB, run=replay_job_run)
        register_worker_job(name=SAMPLING_JOB, run=sampling_job_run)

        from qa.digest.services import JOB_NAME as DIGEST_JOB
        from qa.digest.services import digest_job_run

        register_worker_job(name=DIGEST_JOB, run=digest_job_run)

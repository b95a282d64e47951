"""`manage.py send_qa_digest`: queue today's QA digest now (the worker does it at QA_DIGEST_HOUR).

For cron instead of the worker's schedule, or to send it by hand. Today's digest is queued at
most once (the worker's and this command's share the day's row); `--dry-run` prints it and
queues nothing.
"""

from typing import Any

from django.core.management.base import CommandError, CommandParser

from leadchat.commands import LeadchatCommand
from qa.digest.selectors import qa_digest
from qa.digest.services import (
    NO_RECIPIENTS_MESSAGE,
    DigestAlreadyQueued,
    DigestNoRecipients,
    digest_recipients,
    digest_render,
    qa_digest_queue,
)


class Command(LeadchatCommand):
    help = "Queue today's QA digest to QA_NOTIFY_EMAILS (the delivery worker sends it)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Print the digest (subject and text) and queue nothing.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["dry_run"]:
            rendered = digest_render(qa_digest())
            recipients = digest_recipients()
            self.stdout.write(
                f"To: {', '.join(recipients) or '(nobody: ' + NO_RECIPIENTS_MESSAGE + ')'}"
            )
            self.stdout.write(f"Subject: {rendered.subject}\n")
            self.stdout.write(rendered.text.strip())
            return
        try:
            row = qa_digest_queue(queued_by="command")
        except DigestNoRecipients as error:
            raise CommandError(str(error)) from None
        except DigestAlreadyQueued as error:
            # Not a failure for cron: the day's digest is on its way.
            self.stdout.write(str(error))
            return
        self.stdout.write(
            f"QA digest of {row.day} queued to {', '.join(row.recipients)} "
            "(the delivery worker sends it)."
        )

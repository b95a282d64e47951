import sys
from pathlib import Path

from django.core.management.base import CommandError

from leadchat.commands import LeadchatCommand
from sessions_app import exports, selectors
from sessions_app.api.params import ExportParams, session_filters
from sessions_app.models import Channel

# Command options -> the API's query parameters, validated by the same serializer.
FILTER_OPTIONS = {
    "completion": "completion",
    "archive": "archive",
    "trash": "trash",
    "qa_status": "qa_status",
    "site": "site",
    "channel": "channel",
    "date_from": "date_from",
    "date_to": "date_to",
    "has_lead": "has_lead",
    "search": "q",
    "ordering": "ordering",
    "tz": "tz",
    "transcript": "transcript",
}


class Command(LeadchatCommand):
    help = (
        "Export sessions to a file as CSV or JSON Lines, with the staff API's filters "
        "(streamed: flat memory at any size)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--output", "-o", required=True, help="File to write, or - for standard output."
        )
        parser.add_argument("--format", choices=[exports.CSV, exports.JSONL], default=exports.CSV)
        parser.add_argument("--completion", help="in_progress,complete,incomplete (any of)")
        parser.add_argument("--archive", help="active (default), archived or all")
        parser.add_argument("--trash", action="store_true", help="only sessions in the trash")
        parser.add_argument("--qa-status", help="unchecked,passed,issue,fixed (any of)")
        parser.add_argument("--site", help="site id")
        parser.add_argument("--channel", help=f"{','.join(Channel.values)} (any of)")
        parser.add_argument("--date-from", help="first day YYYY-MM-DD (started_at)")
        parser.add_argument("--date-to", help="last day YYYY-MM-DD (started_at)")
        parser.add_argument("--has-lead", choices=["true", "false"])
        parser.add_argument("--search", help="lead name, email or transcript text")
        parser.add_argument("--ordering", help="e.g. -started_at (default)")
        parser.add_argument("--tz", help="IANA time zone for dates (default TIME_ZONE)")
        parser.add_argument("--transcript", action="store_true", help="include the messages")

    def handle(self, *args, **options) -> None:
        query = {
            param: options[option]
            for option, param in FILTER_OPTIONS.items()
            if options.get(option) not in (None, False, "")
        }
        params = ExportParams(
            data={k: str(v).lower() if v is True else v for k, v in query.items()}
        )
        if not params.is_valid():
            field, errors = next(iter(params.errors.items()))
            message = errors[0] if isinstance(errors, list) else errors
            raise CommandError(f"--{field.replace('_', '-')}: {message}")
        filters = session_filters(params.validated_data)
        lines = exports.export_lines(
            selectors.sessions_filter(filters),
            file_format=options["format"],
            tz=filters.tz,
            transcript=params.validated_data["transcript"],
        )
        target = options["output"]
        if target == "-":
            for line in lines:
                sys.stdout.write(line)
            return
        path = Path(target)
        if not path.parent.is_dir():
            raise CommandError(f"No such directory: {path.parent}")
        written = 0  # one chunk per row (a CSV row with a transcript spans lines but is one)
        with path.open("w", encoding="utf-8", newline="") as handle:
            for line in lines:
                handle.write(line)
                written += 1
        sessions = written - 1 if options["format"] == exports.CSV else written
        self.stdout.write(f"Exported {sessions} sessions to {path}.")
